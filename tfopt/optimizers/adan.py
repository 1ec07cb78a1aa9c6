"""Adan: adaptive Nesterov momentum without the extra gradient evaluation (Xie et al. 2022)."""

import math

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class Adan(_base.Optimizer):
    """Adan: Adam with a Nesterov momentum estimated from the difference of successive gradients.

    Nesterov momentum evaluates the gradient at an extrapolated point; Adan obtains the same look-ahead from the
    change between consecutive gradients, kept as a third moving average, so each step costs one gradient. The
    paper reports faster training than AdamW and LAMB on vision transformers, CNNs, BERT and GPT-2, often in half
    the epochs, and that it tolerates large batches. Use it where you would use AdamW, with a learning rate a few
    times larger (the paper uses 1.5e-2 for ViTs at batch 2048) and weight decay around 0.02.

    With `g_k` the gradient, `k` the step (1 first), `lr` the learning rate, `b1`, `b2`, `b3` the betas and
    `lambda` the weight decay (Algorithm 1 of the paper, with its restart-free form):

        d_k   = g_k - g_{k-1}           (0 on the first step)
        m     <- b1 m + (1 - b1) g_k
        v     <- b2 v + (1 - b2) d_k
        n     <- b3 n + (1 - b3) (g_k + b2 d_k)^2
        u     = m / (1 - b1^k) + b2 v / (1 - b2^k)
        w     <- (w - lr * u / (sqrt(n / (1 - b3^k)) + epsilon)) / (1 + lr * lambda)

    Conventions: our betas are one minus the paper's, as in the authors' code: the paper's `beta_1 = 0.02,
    beta_2 = 0.08, beta_3 = 0.01` are `0.98, 0.92, 0.99` here, so the paper's `(1 - beta_2)` weighting the
    gradient difference is our `b2`. Bias correction and `epsilon` (added after it) follow the authors' code.
    The weight decay is the paper's proximal step (divide by `1 + lr * lambda` after the update), applied here
    rather than by the Keras base class; `exclude_from_weight_decay` works as usual. optax's `adan` (0.2.8) weights
    the gradient difference by `1 - b2` instead of `b2` and decays before the step; the two agree when
    `b2 = 0.5` and `weight_decay = 0`.

    Storage: Adan keeps four slots per weight (48 bytes read and written per float32 weight and step, against
    Adam's 28). So that a step costs few passes over them where TensorFlow runs each operation separately (`fit`
    on CPU), the three moving averages are kept lazily decayed: a slot holds its average divided by `beta^j`,
    `j` the steps since it was last renormalized, so a step only adds the scaled new term. Every `R` steps,
    `beta^-(R - 1) <= 2^20`, the slot is renormalized to the average itself. The update is the same.

    Args:
        learning_rate: a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule` or a callable.
            Default 0.001.
        beta_1: decay of the gradient average, in [0, 1). Default 0.98.
        beta_2: decay of the gradient-difference average, and the difference's weight, in [0, 1). Default 0.92.
        beta_3: decay of the squared-term average, in [0, 1). Default 0.99.
        epsilon: added to the denominator, a number >= 0. Default 1e-8.
        weight_decay: proximal weight decay `lambda`, None or a number >= 0. Default None.
        **kwargs: the base optimizer options (`clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
            `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`, `gradient_accumulation_steps`,
            `name`), passed to `keras.optimizers.Optimizer` untouched.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(Adan(learning_rate=0.01, weight_decay=0.02), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)

    References:
        - Xie, Zhou, Li, Lin and Yan, 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
          Deep Models", https://arxiv.org/abs/2208.06677
        - The authors' implementation: https://github.com/sail-sg/Adan
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.98,
        beta_2=0.92,
        beta_3=0.99,
        epsilon=1e-8,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate=_checks.learning_rate(learning_rate),
            weight_decay=_checks.weight_decay(weight_decay),
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        self.beta_1 = _checks.number("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _checks.number("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.beta_3 = _checks.number("beta_3", beta_3, 0.0, 1.0, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0.0)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._differences, self._squares, self._previous_gradients = self.add_optimizer_variables(
            var_list, ["momentum", "difference", "square", "previous_gradient"])

    def _apply_weight_decay(self, variables):
        # The decay is Adan's proximal step, taken in `update_step` after the update, not Keras's decoupled
        # decay before it.
        return

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = _common.dense_gradient(gradient, variable)
        index = self._get_variable_index(variable)
        m, v, n = self._momentums[index], self._differences[index], self._squares[index]
        previous = self._previous_gradients[index]
        t = ops.cast(self.iterations + 1, dtype)
        beta_2 = ops.cast(self.beta_2, dtype)

        # d = g - g_prev, 0 on the first step (the previous gradient is taken to be the gradient itself).
        previous_value, _ = _common.first_step_value(self, previous, gradient)
        difference = gradient - previous_value
        # The slots hold the moments divided by beta^j (see `_lazy_average`); scale_i = beta_i^j.
        scale_1 = _lazy_average(self, m, gradient, self.beta_1, dtype)
        scale_2 = _lazy_average(self, v, difference, self.beta_2, dtype)
        scale_3 = _lazy_average(self, n, ops.square(gradient + beta_2 * difference), self.beta_3, dtype)
        self.assign(previous, gradient)
        # lr (m / c1 + b2 v / c2) / (sqrt(n / c3) + eps) with c_i = 1 - b_i^k and the moments scale_i times the
        # slots, the scalars folded: (a1 m_slot + a2 v_slot) / (sqrt(n_slot) + eps / q), q = sqrt(scale_3 / c3),
        # a1 = lr scale_1 / (c1 q), a2 = lr b2 scale_2 / (c2 q).
        q = ops.sqrt(scale_3 / _common.one_minus_power(self.beta_3, t, dtype))
        a1 = lr * scale_1 / (_common.one_minus_power(self.beta_1, t, dtype) * q)
        a2 = lr * beta_2 * scale_2 / (_common.one_minus_power(self.beta_2, t, dtype) * q)
        step = (m * a1 + v * a2) / (ops.sqrt(n) + ops.cast(self.epsilon, dtype) / q)
        if self.weight_decay is not None and self._use_weight_decay(variable):
            self.assign(variable, (variable - step) / (1.0 + lr * ops.cast(self.weight_decay, dtype)))
        else:
            self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "beta_3": self.beta_3, "epsilon": self.epsilon})
        return config


# How far a lazily decayed slot may grow past its moment (beta^-j <= 2^20) before it is renormalized.
_SCALE_LIMIT = 2.0**20


def _renormalization_period(beta, dtype):
    """Steps between renormalizations of a slot averaging at `beta`: the most with beta^-(R - 1) <= 2^20.

    1 (an ordinary moving average every step) for beta = 0 and for float16 variables, whose range (65504) leaves
    no room to grow.
    """
    if beta == 0.0 or dtype == "float16":
        return 1
    return max(1, int(math.log(_SCALE_LIMIT) / -math.log(beta)) + 1)


def _lazy_average(optimizer, slot, value, beta, dtype):
    """Advances the moving average `a <- beta a + (1 - beta) value` held lazily in `slot`; returns beta^j.

    The slot holds `a / beta^j`, with `j = iterations mod R` the steps since the last renormalization, so a step
    adds `(1 - beta) / beta^j * value` to it (one pass over the weights, where the plain update takes two more:
    `a + (1 - beta)(value - a)` subtracts before it adds), and `a = beta^j * slot`. Every R steps (j = 0) the slot
    is renormalized: `slot <- beta^R slot + (1 - beta) value` is the plain average again. With R from
    `_renormalization_period` the slot stays within 2^20 times the average's magnitude. The two cases are a
    conditional on TensorFlow and a select under XLA (`_common.assign_when`).
    """
    period = _renormalization_period(beta, dtype)
    j = optimizer.iterations % period
    restart = ops.equal(j, 0)
    beta_t = ops.cast(beta, dtype)
    scale = ops.power(beta_t, ops.cast(j, dtype))
    term = value * (ops.cast(1.0 - beta, dtype) / scale)  # (1 - beta) / beta^j * value; (1 - beta) value at j = 0
    decay = ops.power(beta_t, float(period))
    _common.assign_when(optimizer, restart, lambda: [(slot, slot * decay + term)],
                        otherwise=lambda: [(slot, slot + term)])
    return scale
