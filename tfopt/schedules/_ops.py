"""keras.ops pieces shared by the schedules: the step as float32, interpolation, nested schedules."""

import math
import numbers

import keras
from keras import ops

from tfopt import _checks


def float_step(step):
    """The optimizer step (Python int, int tensor or variable) as a float32 scalar tensor.

    float32 holds every integer up to 2**24 (about 1.7e7 steps) exactly; past that, steps round to even numbers.
    A Python number must be a step >= 0 (a schedule extrapolated to a negative step gives rates it never takes,
    e.g. `LinearDecay(0.1, 100)(-50)` would be 0.15); a tensor, which cannot be checked inside a compiled step, is
    clamped at 0.
    """
    if isinstance(step, numbers.Number):
        _checks.number("step", step, 0)
    return ops.maximum(ops.cast(step, "float32"), 0.0)


def interpolate(start, end, done, left, shape):
    """From `start` (done=0) to `end` (done=1), where `left` is 1 - done computed by the caller.

    `shape` is "linear" or "cos":
    "linear": start * left + end * done.
    "cos": start * (1 + cos(pi * done)) / 2 + end * (1 - cos(pi * done)) / 2, written as
        start * sin(pi/2 * left)**2 + end * sin(pi/2 * done)**2: the same numbers without the cancellation of
        1 + cos near pi, so values near a small end rate keep float32's relative precision.
    Both terms are non-negative for non-negative rates, so the result never leaves [min, max] of the two.
    """
    if shape == "linear":
        return start * left + end * done
    if shape != "cos":
        raise ValueError(f"Unknown interpolation shape {shape!r}; expected 'linear' or 'cos'.")
    half_pi = math.pi / 2.0
    return start * ops.square(ops.sin(half_pi * left)) + end * ops.square(ops.sin(half_pi * done))


def evaluate(schedule, step):
    """A nested schedule's value (a number stands for a constant) at an integer step, as float32."""
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return ops.cast(schedule(step), "float32")
    return ops.full_like(float_step(step), schedule)


def serialize(schedule):
    """A nested schedule's config entry: the number itself, or Keras's serialized schedule."""
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return keras.optimizers.schedules.serialize(schedule)
    return schedule


def deserialize(config):
    """The inverse of `serialize`."""
    if isinstance(config, dict):
        return keras.optimizers.schedules.deserialize(config)
    return config


def shifted_step(step, offset):
    """`max(step - offset, 0)` in the step's own integer dtype: the step a nested schedule sees from `offset` on."""
    step = ops.convert_to_tensor(step)
    if offset == 0:
        return step
    return ops.maximum(step - ops.cast(offset, step.dtype), ops.zeros((), step.dtype))


def minus(t, c):
    """`t - c` for a float32 step `t` (an exact integer) and a Python float `c`, to float32's relative precision.

    Subtracting `float32(c)` directly would carry `c`'s own rounding error (up to 2e-6 for c near 40) into a
    difference that may be much smaller than `c`; splitting `c` into its integer part (exact in float32) and its
    fraction keeps that error below 6e-8.
    """
    whole = math.floor(c)
    return (t - float(whole)) - (c - whole)


def floor_divide(t, divisor):
    """`floor(t / divisor)` and the remainder, exact for integer-valued float32 `t` below 2**24 and an int divisor.

    XLA may turn a division by a constant into a multiplication by its float32 reciprocal (61 * (1/61) is
    0.99999994), so the quotient is corrected by one where the remainder falls outside [0, divisor).
    """
    quotient = ops.floor(t / divisor)
    remainder = t - quotient * divisor
    quotient = ops.where(remainder >= divisor, quotient + 1.0, ops.where(remainder < 0, quotient - 1.0, quotient))
    return quotient, t - quotient * divisor
