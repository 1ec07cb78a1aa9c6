"""RAdam: Adam with its adaptive learning rate rectified while the second moment is unreliable (Liu et al. 2019)."""

import math

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class RAdam(_base.Optimizer):
    """Rectified Adam: Adam that needs no learning-rate warmup.

    Early in training Adam's second-moment estimate rests on a few gradients, so its adaptive step has a large
    variance; that is why Adam usually needs a warmup. RAdam computes how many gradients the estimate effectively
    averages (`rho_t`) and, while it is too few, takes a plain momentum step; after that it takes Adam's step
    scaled by the rectification term `r_t`, which goes to 1. Use it where you would use Adam or AdamW with a
    warmup, at the same learning rate, without the warmup. With `weight_decay` it is the decoupled (AdamW-style)
    variant, as PyTorch's `RAdam(decoupled_weight_decay=True)`.

    With `g` the gradient, `t` the step (1 first), `lr` the learning rate, `b1`, `b2` the betas and
    `rho_inf = 2 / (1 - b2) - 1`:

        w       <- w - lr * weight_decay * w                (decoupled decay, before the step)
        m       <- b1 m + (1 - b1) g
        v       <- b2 v + (1 - b2) g^2
        m_hat   = m / (1 - b1^t)
        rho_t   = rho_inf - 2 t b2^t / (1 - b2^t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
            w  <- w - lr * r_t * m_hat / (sqrt(v / (1 - b2^t)) + epsilon)
        else:
            w  <- w - lr * m_hat

    With `total_steps > 0` the learning rate also warms up and decays, as in TensorFlow Addons' `RectifiedAdam`:
    with `W = total_steps * warmup_proportion` and `D = max(total_steps - W, 1)`, step `t` uses

        lr_t = lr * t / W                                     if t <= W
               lr + (min_lr - lr) * min(t - W, D) / D         otherwise

    (and the weight decay, if any, is `lr_t * weight_decay * w`).

    Conventions: the step is rectified when `rho_t > 5`, as in PyTorch (optax rectifies when `rho_t >= 5`; the
    two differ only at `rho_t == 5` exactly, which no step reaches for the usual betas; the paper's Algorithm 2
    writes `rho_t > 4`). `epsilon` is added after bias correction, as in PyTorch and optax (Keras's `Adam` adds it
    before). With the defaults the first 5 steps are momentum steps.

    Args:
        learning_rate: a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule` or a callable.
            Default 0.001.
        beta_1: decay of the gradient average, in [0, 1). Default 0.9.
        beta_2: decay of the squared-gradient average, in [0, 1); rectification needs `rho_inf > 5`, i.e.
            `beta_2 > 2/3`, to ever take an adaptive step. Default 0.999.
        epsilon: added to the denominator, a number >= 0. Default 1e-8.
        weight_decay: decoupled weight decay, None or a number >= 0. Default None. Exclude variables with
            `optimizer.exclude_from_weight_decay(var_list=..., var_names=...)`.
        total_steps: the steps of TFA's built-in warmup and linear decay, an integer >= 0; 0 (the default)
            leaves the learning rate as given.
        warmup_proportion: the share of `total_steps` spent warming up, in [0, 1]. Default 0.1.
        min_lr: the rate the decay ends at, a number >= 0. Default 0.0.
        **kwargs: the base optimizer options (`clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
            `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`, `gradient_accumulation_steps`,
            `name`), passed to `keras.optimizers.Optimizer` untouched.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(RAdam(learning_rate=0.01), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)

    References:
        - Liu, Jiang, He, Chen, Liu, Gao and Han, 2019, "On the Variance of the Adaptive Learning Rate and
          Beyond", https://arxiv.org/abs/1908.03265
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
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
        total_steps=0,
        warmup_proportion=0.1,
        min_lr=0.0,
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
        self.epsilon = _checks.number("epsilon", epsilon, low=0.0)
        self.total_steps = _checks.integer("total_steps", total_steps, 0)
        self.warmup_proportion = _checks.number("warmup_proportion", warmup_proportion, 0.0, 1.0)
        self.min_lr = _checks.number("min_lr", min_lr, low=0.0)

    def _apply_weight_decay(self, variables):
        # With the warmup the decay follows the warmed rate, so `update_step` applies it.
        if self.total_steps == 0:
            super()._apply_weight_decay(variables)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = _common.dense_gradient(gradient, variable)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        t = ops.cast(self.iterations + 1, dtype)
        lr = _common.warmup_then_linear_decay(lr, t, self.total_steps, self.warmup_proportion, self.min_lr, dtype)
        if self.total_steps and self.weight_decay is not None and self._use_weight_decay(variable):
            self.assign_sub(variable, variable * lr * ops.cast(self.weight_decay, dtype))

        # m and v in place, one pass each (as Keras's Adam); the bias corrections, r_t and the choice between the
        # rectified and the SGD-with-momentum step are folded into three scalars, so the step is one pass too:
        #   rectified:  w -= (lr r_t sqrt(c2) / c1) m / (sqrt(v) + epsilon sqrt(c2))
        #   otherwise:  w -= (lr / c1) m / (0 sqrt(v) + 1)
        self.assign_add(m, (gradient - m) * ops.cast(1.0 - self.beta_1, dtype))
        self.assign_add(v, (ops.square(gradient) - v) * ops.cast(1.0 - self.beta_2, dtype))
        correction_1 = _common.one_minus_power(self.beta_1, t, dtype)
        correction_2 = _common.one_minus_power(self.beta_2, t, dtype)
        rho_inf = 2.0 / (1.0 - self.beta_2) - 1.0
        rho_t = rho_inf - 2.0 * t * (1.0 - correction_2) / correction_2
        rectified = rho_t > 5.0
        rho_safe = ops.where(rectified, rho_t, ops.cast(6.0, dtype))
        scale = math.sqrt(rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0))) if rho_inf > 5.0 else 1.0
        r_t = ops.sqrt((rho_safe - 4.0) * (rho_safe - 2.0) / rho_safe) * scale
        root_2 = ops.sqrt(correction_2)
        one, zero = ops.ones((), dtype), ops.zeros((), dtype)
        step = ops.where(rectified, lr * r_t * root_2 / correction_1, lr / correction_1)
        sqrt_weight = ops.where(rectified, one, zero)
        offset = ops.where(rectified, ops.cast(self.epsilon, dtype) * root_2, one)
        self.assign_sub(variable, step * m / (sqrt_weight * ops.sqrt(v) + offset))

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "total_steps": self.total_steps, "warmup_proportion": self.warmup_proportion,
                       "min_lr": self.min_lr})
        return config
