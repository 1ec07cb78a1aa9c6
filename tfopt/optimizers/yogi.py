"""Yogi: Adam with an additive second-moment update that cannot forget past gradients too fast (Zaheer et al.
2018)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class Yogi(_base.Optimizer):
    """Yogi: Adam whose second moment moves additively towards `g^2`, by at most `(1 - b2) g^2` a step.

    Adam's `v <- v + (1 - b2)(g^2 - v)` lets a run of small gradients shrink `v` geometrically, so the effective
    learning rate can jump up and the method diverge. Yogi changes `v` by `(1 - b2) g^2` in the direction of
    `g^2`: `v` still tracks the gradients' size but never shrinks faster than they say. Use it where Adam is
    unstable, with a larger epsilon than Adam's (1e-3 in the paper) and a learning rate around 1e-2. With
    `weight_decay` it is decoupled (AdamW-style).

    With `g` the gradient, `t` the step (1 first), `lr` the learning rate and `b1`, `b2` the betas:

        w      <- w - lr * weight_decay * w                   (decoupled decay, before the step)
        m      <- b1 m + (1 - b1) g
        v      <- v - (1 - b2) sign(v - g^2) g^2
        w      <- w - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + epsilon)

    `m` starts at 0 and `v` at `initial_accumulator_value` (1e-6 in the paper and TensorFlow Addons). `epsilon`
    is added after bias correction, as in optax (TensorFlow Addons adds it before, like Keras's `Adam`). optax
    also starts `m` at `initial_accumulator_value`; with a zero `m` the two are equal.

    Args:
        learning_rate: a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule` or a callable.
            Default 0.01 (the paper's).
        beta_1: decay of the gradient average, in [0, 1). Default 0.9.
        beta_2: rate of the second-moment update, in [0, 1). Default 0.999.
        epsilon: added to the denominator, a number >= 0. Default 1e-3 (the paper's).
        initial_accumulator_value: the starting value of `v`, a number >= 0. Default 1e-6.
        epsilon_before_correction: add `epsilon` to `sqrt(v)` before the bias correction, as TensorFlow Addons
            and Keras's `Adam` do (`w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)`), instead
            of after it. Default False.
        weight_decay: decoupled weight decay, None or a number >= 0. Default None. Exclude variables with
            `optimizer.exclude_from_weight_decay(var_list=..., var_names=...)`.
        **kwargs: the base optimizer options (`clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
            `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`, `gradient_accumulation_steps`,
            `name`), passed to `keras.optimizers.Optimizer` untouched.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(Yogi(learning_rate=0.01), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)

    References:
        - Zaheer, Reddi, Sachan, Kale and Kumar, 2018, "Adaptive Methods for Nonconvex Optimization", NeurIPS,
          https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization
    """

    def __init__(
        self,
        learning_rate=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-3,
        initial_accumulator_value=1e-6,
        epsilon_before_correction=False,
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
        self.epsilon = _checks.number("epsilon", epsilon, low=0.0)
        self.initial_accumulator_value = _checks.number("initial_accumulator_value", initial_accumulator_value,
                                                        low=0.0)
        self.epsilon_before_correction = _checks.boolean("epsilon_before_correction", epsilon_before_correction)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._velocities = self.add_optimizer_variables(
            var_list, "velocity", initializer=keras.initializers.Constant(self.initial_accumulator_value))

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = _common.dense_gradient(gradient, variable)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        t = ops.cast(self.iterations + 1, dtype)

        squared = ops.square(gradient)
        # In place, and the bias corrections folded into two scalars (one pass for the step, as Keras's Adam):
        #   w -= (lr sqrt(c2) / c1) m / (sqrt(v) + epsilon sqrt(c2))
        self.assign_add(m, (gradient - m) * ops.cast(1.0 - self.beta_1, dtype))
        self.assign_sub(v, ops.sign(v - squared) * squared * ops.cast(1.0 - self.beta_2, dtype))
        root_2 = ops.sqrt(_common.one_minus_power(self.beta_2, t, dtype))
        step = lr * root_2 / _common.one_minus_power(self.beta_1, t, dtype)
        offset = ops.cast(self.epsilon, dtype) * (1.0 if self.epsilon_before_correction else root_2)
        self.assign_sub(variable, step * m / (ops.sqrt(v) + offset))

    def get_config(self):
        config = super().get_config()
        config.update({
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon_before_correction": self.epsilon_before_correction,
        })
        return config
