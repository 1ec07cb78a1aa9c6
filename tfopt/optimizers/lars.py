"""LARS: momentum SGD with a per-layer learning rate set by the ratio of weight norm to gradient norm (You et al.
2017)."""

import re

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class LARS(_base.Optimizer):
    """Layer-wise Adaptive Rate Scaling: momentum SGD whose step for each layer is proportional to its weights.

    With very large batches one global learning rate is too large for some layers and too small for others, and
    training diverges early unless warmed up for long. LARS gives each variable (layer) a local learning rate, the
    trust ratio `eta ||w|| / (||g|| + lambda ||w||)`, so every layer's weights change by about the same fraction
    per step. Use it to train CNNs with batches in the thousands (ResNet-50 at batch 32k in the paper), with a
    polynomial-decay or warmup-cosine schedule and a learning rate that scales with the batch size. Biases and
    normalization weights (1-D variables, by default) take plain momentum SGD steps without decay, as in the
    large-batch literature after the paper.

    With `g` the gradient of variable `w`, `lr` the learning rate, `lambda` the weight decay, `eta` the trust
    coefficient and `mu` the momentum (Algorithm 1 of the paper):

        adapted:   u = ratio * (g + lambda w),   ratio = eta ||w|| / (||g|| + lambda ||w|| + epsilon)
                   (ratio = 1 where ||w|| = 0 or the denominator is 0)
        excluded:  u = g
        v        <- mu v + lr u
        w        <- w - v                       (nesterov: w <- w - (mu v + lr u))

    The decay is coupled, inside the trust ratio as in the paper, and applied once: by this `update_step`, not by
    the Keras base class's decoupled decay. Variables excluded with `exclude_from_weight_decay` keep the trust
    ratio without `lambda` (`ratio = eta ||w|| / (||g|| + epsilon)`). optax's `lars` divides by `||g + lambda w||`
    instead of `||g|| + lambda ||w||`; the two agree when `weight_decay` is 0.

    Args:
        learning_rate: a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule` or a callable.
            Default 1.0 (the trust coefficient already scales steps down by about 1000).
        momentum: `mu`, in [0, 1). Default 0.9.
        weight_decay: `lambda`, None or a number >= 0. Default None. The paper uses 5e-4 for ImageNet.
        trust_coefficient: `eta`, a number > 0. Default 0.001.
        epsilon: added to the trust ratio's denominator, a number >= 0. Default 0.0.
        nesterov: bool, Nesterov momentum. Default False.
        exclude_from_layer_adaptation: which variables take plain momentum steps, with no trust ratio and no
            decay. None (the default): variables with at most one dimension (biases, normalization scales and
            offsets). A list of regular expressions: variables whose path (`variable.path`, e.g.
            `"dense_1/bias"`) contains a match of one of them (an empty list adapts every variable). A callable
            `f(variable) -> bool` of a `keras.Variable`: the variables for which it returns True; register it
            with `keras.saving.register_keras_serializable` for the optimizer to save and load. Decided when the
            optimizer is built.
        **kwargs: the base optimizer options (`clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
            `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`, `gradient_accumulation_steps`,
            `name`), passed to `keras.optimizers.Optimizer` untouched.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(LARS(learning_rate=1.0, weight_decay=5e-4), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)

    References:
        - You, Gitman and Ginsburg, 2017, "Large Batch Training of Convolutional Networks",
          https://arxiv.org/abs/1708.03888
    """

    def __init__(
        self,
        learning_rate=1.0,
        momentum=0.9,
        weight_decay=None,
        trust_coefficient=0.001,
        epsilon=0.0,
        nesterov=False,
        exclude_from_layer_adaptation=None,
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
        self.momentum = _checks.number("momentum", momentum, 0.0, 1.0, high_open=True)
        self.trust_coefficient = _checks.number("trust_coefficient", trust_coefficient, low=0.0, low_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0.0)
        self.nesterov = _checks.boolean("nesterov", nesterov)
        self.exclude_from_layer_adaptation = _exclusion(exclude_from_layer_adaptation)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")
        # Decided once on the Keras variables: `update_step` may get the backend's variable (TensorFlow's, under
        # tf.distribute), whose name differs.
        self._excluded_variables = [self._excluded(variable) for variable in var_list]

    def _apply_weight_decay(self, variables):
        # LARS's decay is coupled, inside the trust ratio (`update_step`); the base class must not decay again.
        return

    def _excluded(self, variable):
        rule = self.exclude_from_layer_adaptation
        if rule is None:
            return len(variable.shape) <= 1
        if callable(rule):
            return bool(rule(variable))
        return any(re.search(pattern, variable.path) for pattern in rule)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = _common.dense_gradient(gradient, variable)
        index = self._get_variable_index(variable)
        velocity = self._velocities[index]

        if self._excluded_variables[index]:
            update = gradient
        else:
            weight_norm = ops.sqrt(ops.sum(ops.square(variable)))
            gradient_norm = ops.sqrt(ops.sum(ops.square(gradient)))
            denominator = gradient_norm + ops.cast(self.epsilon, dtype)
            update = gradient
            if self.weight_decay is not None and self._use_weight_decay(variable):
                weight_decay = ops.cast(self.weight_decay, dtype)
                denominator = denominator + weight_decay * weight_norm
                update = gradient + weight_decay * variable
            usable = ops.logical_and(weight_norm > 0.0, denominator > 0.0)
            ratio = ops.where(usable, ops.cast(self.trust_coefficient, dtype) * weight_norm
                              / ops.where(usable, denominator, 1.0), 1.0)
            update = ratio * update
        momentum = ops.cast(self.momentum, dtype)
        self.assign(velocity, momentum * velocity + lr * update)
        if self.nesterov:
            self.assign_sub(variable, momentum * velocity + lr * update)
        else:
            self.assign_sub(variable, velocity)

    def get_config(self):
        config = super().get_config()
        rule = self.exclude_from_layer_adaptation
        config.update({
            "momentum": self.momentum,
            "trust_coefficient": self.trust_coefficient,
            "epsilon": self.epsilon,
            "nesterov": self.nesterov,
            "exclude_from_layer_adaptation": keras.saving.serialize_keras_object(rule) if callable(rule) else rule,
        })
        return config


def _exclusion(rule):
    """None, a list of regular-expression strings, or a callable (a serialized one is deserialized)."""
    if isinstance(rule, dict):
        rule = keras.saving.deserialize_keras_object(rule)
    if rule is None or callable(rule):
        return rule
    if not isinstance(rule, (list, tuple)) or not all(isinstance(pattern, str) for pattern in rule):
        raise TypeError("Argument `exclude_from_layer_adaptation` must be None, a list of regular expressions or a "
                        f"callable. Received: exclude_from_layer_adaptation={rule!r}")
    for pattern in rule:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError("Argument `exclude_from_layer_adaptation` must be a list of valid regular expressions. "
                             f"Received: exclude_from_layer_adaptation={rule!r} ({error})") from None
    return list(rule)
