"""AdaBelief: Adam whose step adapts to the belief in the gradient, not its size (Zhuang et al. 2020)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class AdaBelief(_base.Optimizer):
    """AdaBelief: Adam with the squared gradient replaced by the squared deviation from its running mean.

    Adam divides by the running mean of `g^2`; AdaBelief divides by the running mean of `(g - m)^2`, how far the
    gradient strays from its prediction `m`. Where gradients agree with the momentum (a smooth, steep valley) the
    step grows towards SGD's; where they disagree it shrinks. The paper reports Adam's fast convergence with SGD's
    generalization on image classification, and stable GAN training. Use it in place of Adam at the same learning
    rate. With `weight_decay` it is decoupled (AdamW-style), as the authors' `weight_decouple=True` default.

    With `g` the gradient, `t` the step (1 first), `lr` the learning rate and `b1`, `b2` the betas (Algorithm 2 of
    the paper, epsilon inside the second moment):

        w      <- w - lr * weight_decay * w                   (decoupled decay, before the step)
        m      <- b1 m + (1 - b1) g
        s      <- b2 s + (1 - b2) (g - m)^2 + epsilon
        w      <- w - lr * (m / (1 - b1^t)) / (sqrt(s / (1 - b2^t)) + epsilon)

    `epsilon` is added to `s` at every step (it accumulates in the stored `s`) and again outside the square root,
    after bias correction, as in the paper's Algorithm 2, the authors' PyTorch package and optax's
    `adabelief(eps=epsilon, eps_root=epsilon)`. Bias correction is always on. With `rectify=True` (TensorFlow
    Addons' default) the step is rectified as RAdam's: with `rho_inf = 2 / (1 - b2) - 1` and
    `rho_t = rho_inf - 2 t b2^t / (1 - b2^t)`, the step above is scaled by
    `r_t = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))` when `rho_t >= 5`, and is
    the plain momentum step `lr m / (1 - b1^t)` before. With `total_steps > 0` the rate warms up and decays as
    TensorFlow Addons' (see `RAdam`), and the weight decay follows the warmed rate. The AMSGrad option of the
    authors' package is not offered.

    Args:
        learning_rate: a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule` or a callable.
            Default 0.001.
        beta_1: decay of the gradient average, in [0, 1). Default 0.9.
        beta_2: decay of the average of `(g - m)^2`, in [0, 1). Default 0.999.
        epsilon: added inside and outside the square root, a number >= 0. Default 1e-16 (the paper's and the
            authors' package's for image classification; they use 1e-12 for some tasks and 1e-8 in TensorFlow).
        weight_decay: decoupled weight decay, None or a number >= 0. Default None. Exclude variables with
            `optimizer.exclude_from_weight_decay(var_list=..., var_names=...)`.
        rectify: whether to rectify the step as RAdam (TensorFlow Addons' default). Default False.
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
    >>> model.compile(AdaBelief(learning_rate=0.01), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)

    References:
        - Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris and Duncan, 2020, "AdaBelief Optimizer: Adapting
          Stepsizes by the Belief in Observed Gradients", https://arxiv.org/abs/2010.07468
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-16,
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
        rectify=False,
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
        self.rectify = _checks.boolean("rectify", rectify)
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
        self._momentums, self._beliefs = self.add_optimizer_variables(var_list, ["momentum", "belief"])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = _common.dense_gradient(gradient, variable)
        m = self._momentums[self._get_variable_index(variable)]
        s = self._beliefs[self._get_variable_index(variable)]
        t = ops.cast(self.iterations + 1, dtype)
        epsilon = ops.cast(self.epsilon, dtype)
        lr = _common.warmup_then_linear_decay(lr, t, self.total_steps, self.warmup_proportion, self.min_lr, dtype)
        if self.total_steps and self.weight_decay is not None and self._use_weight_decay(variable):
            self.assign_sub(variable, variable * lr * ops.cast(self.weight_decay, dtype))

        # In place, and the bias corrections folded into two scalars (one pass for the step, as Keras's Adam):
        #   w -= (lr sqrt(c2) / c1) m / (sqrt(s) + epsilon sqrt(c2))
        self.assign_add(m, (gradient - m) * ops.cast(1.0 - self.beta_1, dtype))
        self.assign_add(s, (ops.square(gradient - m) - s) * ops.cast(1.0 - self.beta_2, dtype) + epsilon)
        root_2 = ops.sqrt(_common.one_minus_power(self.beta_2, t, dtype))
        correction_1 = _common.one_minus_power(self.beta_1, t, dtype)
        if not self.rectify:
            self.assign_sub(variable, lr * root_2 / correction_1 * m / (ops.sqrt(s) + epsilon * root_2))
            return
        # TFA's rectification: r_t times the step once rho_t >= 5, the momentum step lr m / c1 before.
        correction_2 = root_2 * root_2
        rho_inf = 2.0 / (1.0 - self.beta_2) - 1.0
        rho_t = rho_inf - 2.0 * t * (1.0 - correction_2) / correction_2
        rectified = rho_t >= 5.0
        rho_safe = ops.where(rectified, rho_t, ops.cast(6.0, dtype))
        r_t = ops.sqrt((rho_safe - 4.0) * (rho_safe - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_safe))
        adaptive = r_t * root_2 * m / (ops.sqrt(s) + epsilon * root_2)
        self.assign_sub(variable, lr / correction_1 * ops.where(rectified, adaptive, m.value))

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon, "rectify": self.rectify,
                       "total_steps": self.total_steps, "warmup_proportion": self.warmup_proportion,
                       "min_lr": self.min_lr})
        return config
