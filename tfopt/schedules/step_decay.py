"""StepDecay: the learning rate is multiplied by `gamma` every `step_size` steps."""

import math

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules import _ops


@keras.saving.register_keras_serializable(package="tfopt")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Step decay: multiply the learning rate by `gamma` every `step_size` steps.

    The classic ResNet schedule (divide by 10 at fixed intervals), PyTorch's `StepLR` counted in optimizer steps.
    Use it to reproduce papers that train this way, or when you want a few long plateaus at known rates; for
    plateaus at arbitrary steps use `keras.optimizers.schedules.PiecewiseConstantDecay`. It is
    `keras.optimizers.schedules.ExponentialDecay(staircase=True)` with the rate stated per interval.

    With `t` the optimizer step (0 for the first update), `lr_0 = initial_learning_rate`, `s = step_size` and
    `g = gamma`:

        lr(t) = lr_0 * g ** floor(t / s)

    computed as `lr_0 * exp(floor(t / s) * log(g))` with `log(g)` in float64, so the float32 rounding of `g`
    does not compound over many intervals; far past the last useful interval the rate underflows to 0, never NaN.

    Args:
        initial_learning_rate: the rate for steps `0 .. s - 1`, a number >= 0.
        step_size: `s`, steps per interval, an integer >= 1.
        gamma: `g`, the factor applied at the start of each new interval, in (0, 1]. Defaults to 0.1.

    Example:

    >>> schedule = StepDecay(0.1, step_size=30)
    >>> [round(float(schedule(t)), 6) for t in (0, 29, 30, 60)]
    [0.1, 0.1, 0.01, 0.001]

    References:
        - He, Zhang, Ren and Sun, 2016, "Deep Residual Learning for Image Recognition",
          https://arxiv.org/abs/1512.03385
    """

    def __init__(self, initial_learning_rate, step_size, gamma=0.1):
        super().__init__()
        self.initial_learning_rate = _checks.finite_number("initial_learning_rate", initial_learning_rate)
        self.step_size = _checks.integer("step_size", step_size, 1)
        self.gamma = _checks.number("gamma", gamma, 0, 1, low_open=True)

    def __call__(self, step):
        intervals, _ = _ops.floor_divide(_ops.float_step(step), self.step_size)
        return self.initial_learning_rate * ops.exp(intervals * math.log(self.gamma))

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
        }
