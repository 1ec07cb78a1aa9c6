"""ProximalAdagrad: Adagrad with an L1 / L2 proximal step, for sparse solutions (Duchi and Singer 2009)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class ProximalAdagrad(_base.Optimizer):
    """Adagrad followed by the proximal operator of `l1 |w| + l2 w^2 / 2`: L1 sets small weights exactly to zero.

    Use it for sparse linear or wide models (click prediction, bag-of-words features) where exact zeros are
    wanted; for deep networks prefer Adam-type methods. This is TensorFlow Addons' `tfa.optimizers.ProximalAdagrad`
    (TensorFlow's `ApplyProximalAdagrad` op), value for value. With `g` the gradient and `lr` the learning rate:

        a   <- a + g^2                                   (a starts at initial_accumulator_value)
        r   = lr / sqrt(a)
        p   = w - r g
        w   <- sign(p) max(|p| - r l1, 0) / (1 + r l2)

    Args:
        learning_rate: a number >= 0, a `LearningRateSchedule` or a callable. Default 0.001.
        initial_accumulator_value: the accumulator's start, a number > 0. Default 0.1.
        l1: the L1 strength, a number >= 0. Default 0.0.
        l2: the L2 strength, a number >= 0. Default 0.0.
        **kwargs: the base optimizer options.

    Example:

    >>> optimizer = ProximalAdagrad(learning_rate=1.0, initial_accumulator_value=0.0, l1=0.25)
    >>> w = keras.Variable([2.0, 0.2, 1.2])
    >>> optimizer.apply([keras.ops.convert_to_tensor([0.5, 0.5, 0.5])], [w])
    >>> [round(x, 4) for x in keras.ops.convert_to_numpy(w).tolist()]  # r = 2: p = (1, -0.8, 0.2), shrunk by 0.5
    [0.5, -0.3, 0.0]

    References:
        - Duchi and Singer, 2009, "Efficient Online and Batch Learning Using Forward Backward Splitting", JMLR 10,
          https://jmlr.org/papers/v10/duchi09a.html
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, l1=0.0, l2=0.0, name=None, **kwargs):
        super().__init__(learning_rate=_checks.learning_rate(learning_rate), name=name, **kwargs)
        self.initial_accumulator_value = _checks.number("initial_accumulator_value", initial_accumulator_value,
                                                        low=0.0)
        self.l1 = _checks.number("l1", l1, low=0.0)
        self.l2 = _checks.number("l2", l2, low=0.0)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._accumulators = self.add_optimizer_variables(
            var_list, "accumulator", initializer=keras.initializers.Constant(self.initial_accumulator_value))

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = _common.dense_gradient(gradient, variable)
        accumulator = self._accumulators[self._get_variable_index(variable)]
        self.assign_add(accumulator, ops.square(gradient))
        rate = lr / ops.sqrt(accumulator)
        proximal = variable - rate * gradient
        if self.l1 > 0:
            proximal = ops.sign(proximal) * ops.maximum(ops.abs(proximal) - rate * ops.cast(self.l1, dtype), 0.0)
        self.assign(variable, proximal / (1.0 + rate * ops.cast(self.l2, dtype)))

    def get_config(self):
        config = super().get_config()
        config.update({"initial_accumulator_value": self.initial_accumulator_value, "l1": self.l1, "l2": self.l2})
        return config
