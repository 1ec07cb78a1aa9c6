"""LinearDecay: the learning rate falls on a straight line to an end value, then stays there."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules import _ops


@keras.saving.register_keras_serializable(package="tfopt")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear decay from `initial_learning_rate` to `end_learning_rate` over `decay_steps`, then constant.

    The simplest decay with a known end: use it when the training length is fixed and you want the rate to reach
    exactly `end_learning_rate` (often 0) on the last step, as in BERT fine-tuning (after a `Warmup`) and in
    budgeted training, where linear-to-zero matches or beats step and cosine decay for the same number of steps.
    It is `keras.optimizers.schedules.PolynomialDecay(power=1)` without the `cycle` option, with the end value held
    for every step after `decay_steps` (also 10**7 steps later).

    With `t` the optimizer step (0 for the first update), `lr_0 = initial_learning_rate`,
    `lr_end = end_learning_rate` and `T = decay_steps`:

        lr(t) = lr_0 + (lr_end - lr_0) * min(t, T) / T

    so `lr(0) = lr_0`, `lr(T) = lr_end` and `lr(t) = lr_end` for every `t >= T`. With `lr_end = 0` this is
    `lr_0 * (1 - t / T)` up to `T`.

    Args:
        initial_learning_rate: the rate at step 0, a number >= 0.
        decay_steps: `T`, the step at which the end value is reached, an integer >= 1.
        end_learning_rate: the rate from step `T` on, a number >= 0. Defaults to 0.0. It may be larger than
            `initial_learning_rate`, which gives a linear ramp up.

    Example:

    >>> schedule = LinearDecay(0.1, decay_steps=10)
    >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 1000)]
    [0.1, 0.05, 0.0, 0.0]

    References:
        - Li, Yumer and Ramanan, 2020, "Budgeted Training: Rethinking Deep Neural Network Training Under Resource
          Constraints", https://arxiv.org/abs/1905.04753
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0):
        super().__init__()
        self.initial_learning_rate = _checks.finite_number("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _checks.integer("decay_steps", decay_steps, 1)
        self.end_learning_rate = _checks.finite_number("end_learning_rate", end_learning_rate)

    def __call__(self, step):
        t = ops.minimum(_ops.float_step(step), float(self.decay_steps))
        done = t / self.decay_steps
        left = (self.decay_steps - t) / self.decay_steps
        return _ops.interpolate(self.initial_learning_rate, self.end_learning_rate, done, left, "linear")

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
        }
