"""What the learning-rate callbacks need to know about a Keras optimizer, in one place.

Keras keeps an optimizer's learning rate in a private attribute: a non-trainable variable when the optimizer was
created with a float, the schedule object when it was created with a `LearningRateSchedule`. The public
`learning_rate` property gives the variable itself in the first case and the schedule's value in the second,
which is how `is_settable` tells them apart; only `learning_rate_object` reads the private attribute, to reach
the schedule object that `ReduceLROnPlateau` wraps.
"""

import keras
from keras import ops


def unwrap(optimizer):
    """The optimizer that does the updates: follows `inner_optimizer` (LossScaleOptimizer and wrappers)."""
    while getattr(optimizer, "inner_optimizer", None) is not None:
        optimizer = optimizer.inner_optimizer
    return optimizer


def is_settable(optimizer):
    """True when the learning rate is a variable (the optimizer was created with a float)."""
    return isinstance(unwrap(optimizer).learning_rate, keras.Variable)


def learning_rate_object(optimizer):
    """The variable, schedule or callable the optimizer computes its learning rate from."""
    return unwrap(optimizer)._learning_rate


def current_learning_rate(optimizer):
    """The learning rate at the optimizer's current `iterations`, as a Python float."""
    return float(ops.convert_to_numpy(unwrap(optimizer).learning_rate))


def learning_rate_at(optimizer, step):
    """The learning rate the optimizer uses at optimizer step `step`, as a Python float."""
    rate = learning_rate_object(optimizer)
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return float(ops.convert_to_numpy(rate(step)))
    return current_learning_rate(optimizer)


def iterations(optimizer):
    """The optimizer's step counter as a Python int."""
    return int(ops.convert_to_numpy(unwrap(optimizer).iterations))


def describe(optimizer):
    """A short description of how the optimizer holds its learning rate, for error messages."""
    rate = learning_rate_object(optimizer)
    return f"{type(unwrap(optimizer)).__name__}(learning_rate={type(rate).__name__})"
