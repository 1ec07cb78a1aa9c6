"""Adan: adaptive Nesterov momentum without the extra gradient evaluation (Xie et al. 2022)."""

import keras
from keras import ops

from tfopt.optimizers import _common


@keras.saving.register_keras_serializable(package="tfopt")
class Adan(keras.optimizers.Optimizer):
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
            learning_rate=_common.learning_rate(learning_rate),
            weight_decay=_common.weight_decay(weight_decay),
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
        self.beta_1 = _common.number("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _common.number("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.beta_3 = _common.number("beta_3", beta_3, 0.0, 1.0, high_open=True)
        self.epsilon = _common.number("epsilon", epsilon, low=0.0)

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
        # The moments in place (m <- m + (1 - b1)(g - m) is b1 m + (1 - b1) g): without XLA each op is a pass over
        # the weights, and these forms take the fewest.
        self.assign_add(m, (gradient - m) * ops.cast(1.0 - self.beta_1, dtype))
        self.assign_add(v, (difference - v) * ops.cast(1.0 - self.beta_2, dtype))
        self.assign_add(n, (ops.square(gradient + beta_2 * difference) - n) * ops.cast(1.0 - self.beta_3, dtype))
        self.assign(previous, gradient)
        # lr (m / c1 + b2 v / c2) / (sqrt(n / c3) + eps) with c_i = 1 - b_i^k, the scalars folded:
        # (a1 m + a2 v) / (sqrt(n) + eps sqrt(c3)), a1 = lr sqrt(c3) / c1, a2 = lr b2 sqrt(c3) / c2.
        sqrt_c3 = ops.sqrt(_common.one_minus_power(self.beta_3, t, dtype))
        a1 = lr * sqrt_c3 / _common.one_minus_power(self.beta_1, t, dtype)
        a2 = lr * beta_2 * sqrt_c3 / _common.one_minus_power(self.beta_2, t, dtype)
        step = (m * a1 + v * a2) / (ops.sqrt(n) + ops.cast(self.epsilon, dtype) * sqrt_c3)
        if self.weight_decay is not None and self._use_weight_decay(variable):
            self.assign(variable, (variable - step) / (1.0 + lr * ops.cast(self.weight_decay, dtype)))
        else:
            self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "beta_3": self.beta_3, "epsilon": self.epsilon})
        return config
