"""NovoGrad: momentum SGD on gradients normalized by a per-layer second moment (Ginsburg et al. 2019)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class NovoGrad(_base.Optimizer):
    """NovoGrad: each variable's gradient is divided by the running norm of its gradients (one number per
    variable, not per element), weight decay is added to the normalized gradient, and momentum is applied.

    Its second moment is a scalar per variable, so it needs half of Adam's memory, and the normalization makes
    it insensitive to the scale of each layer's gradients; it was made for speech and language models trained
    with large batches (Jasper, BERT). Use learning rates like SGD's with momentum (0.01-0.1 for large batches).
    This is TensorFlow Addons' `tfa.optimizers.NovoGrad`, value for value.

    With `g` a variable's gradient, `t` the step (0 first), `lr` the learning rate, `b1`, `b2` the betas and
    `wd = weight_decay`:

        v  <- ||g||^2                                  if t = 0
              b2 v + (1 - b2) ||g||^2                  otherwise
        g' = g / (sqrt(v) + epsilon) + wd w
        g' <- (1 - b1) g'                             if grad_averaging and t > 0
        m  <- b1 m - lr g'                             (Keras's momentum form)
        w  <- w + m

    Here `weight_decay` is NovoGrad's own, inside the normalized gradient (it is scaled by the learning rate
    through the momentum), not Keras's decoupled decay. Exclude variables from it with
    `optimizer.exclude_from_weight_decay(...)`.

    Args:
        learning_rate: a number >= 0, a `LearningRateSchedule` or a callable. Default 0.001.
        beta_1: the momentum, in [0, 1). Default 0.9.
        beta_2: decay of the squared gradient norm, in [0, 1). Default 0.999.
        epsilon: added to `sqrt(v)`, a number >= 0. Default 1e-7.
        weight_decay: NovoGrad's weight decay, a number >= 0. Default 0.0.
        grad_averaging: whether to scale `g'` by `1 - b1` after the first step. Default False.
        **kwargs: the base optimizer options (`clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`, ...).

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(NovoGrad(learning_rate=0.01, weight_decay=1e-3), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)

    References:
        - Ginsburg, Castonguay, Hrinchuk, Kuchaiev, Lavrukhin, Leary, Li, Nguyen, Zhang and Cohen, 2019,
          "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks",
          https://arxiv.org/abs/1905.11286
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
                 grad_averaging=False, name=None, **kwargs):
        super().__init__(learning_rate=_checks.learning_rate(learning_rate),
                         weight_decay=_checks.number("weight_decay", weight_decay, low=0.0), name=name, **kwargs)
        self.beta_1 = _checks.number("beta_1", beta_1, 0.0, 1.0, high_open=True)
        self.beta_2 = _checks.number("beta_2", beta_2, 0.0, 1.0, high_open=True)
        self.epsilon = _checks.number("epsilon", epsilon, low=0.0)
        self.grad_averaging = _checks.boolean("grad_averaging", grad_averaging)

    def _apply_weight_decay(self, variables):
        return None  # NovoGrad's decay is part of its normalized gradient (`update_step`).

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums = self.add_optimizer_variables(var_list, "momentum")
        self._second_moments = [self.add_variable(shape=(), dtype=v.dtype, initializer="zeros",
                                                  name=f"{v.name}_second_moment") for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = _common.dense_gradient(gradient, variable)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._second_moments[index]
        first = ops.equal(self.iterations, 0)
        squared_norm = ops.sum(ops.square(gradient))
        new_v = ops.where(first, squared_norm, self.beta_2 * v + (1.0 - self.beta_2) * squared_norm)
        self.assign(v, new_v)
        normalized = gradient / (ops.sqrt(new_v) + ops.cast(self.epsilon, dtype))
        if self.weight_decay and self._use_weight_decay(variable):
            normalized = normalized + ops.cast(self.weight_decay, dtype) * variable
        if self.grad_averaging:
            normalized = normalized * ops.where(first, ops.ones((), dtype), ops.cast(1.0 - self.beta_1, dtype))
        self.assign(m, ops.cast(self.beta_1, dtype) * m - lr * normalized)
        self.assign_add(variable, m)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "grad_averaging": self.grad_averaging})
        return config
