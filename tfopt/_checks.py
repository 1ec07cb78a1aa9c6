"""Argument checks shared by tfopt's schedules, callbacks and optimizer wrappers.

Each error names the argument, the allowed range and the value received: a `TypeError` for a value of the wrong
type, a `ValueError` for one out of range.
"""

import math
import numbers
import os

import keras


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def finite_number(name, value, positive=False):
    """A finite real number, > 0 when `positive`, else >= 0 (a learning rate, a factor, a delta), as a float."""
    allowed = "a finite number > 0" if positive else "a finite number >= 0"
    if not _is_real(value):
        raise TypeError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")
    return float(value)


def integer(name, value, minimum):
    """An integer >= `minimum`, returned as a Python int."""
    if not _is_integer(value):
        raise TypeError(f"Argument `{name}` must be an integer >= {minimum}. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    if value < minimum:
        raise ValueError(f"Argument `{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def number_in(name, value, low, high, low_open=True, high_open=True, condition=""):
    """A real number in the interval from `low` to `high`, each end open or closed; returned as a float.

    `condition` (e.g. "when `three_phase=True`") follows the interval in the message.
    """
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if condition:
        interval = f"{interval} {condition}"
    if not _is_real(value):
        raise TypeError(f"Argument `{name}` must be a number in {interval}. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if not math.isfinite(value) or below or above:
        raise ValueError(f"Argument `{name}` must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def choice(name, value, allowed):
    """One of the strings in `allowed`."""
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"Argument `{name}` must be one of {listed}. Received: {name}={value!r}")
    return value


def schedule_or_rate(name, value):
    """A `LearningRateSchedule`, or a number >= 0 that stands for a constant learning rate (returned as float)."""
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return value
    if _is_real(value):
        return finite_number(name, value)
    raise TypeError(f"Argument `{name}` must be a keras.optimizers.schedules.LearningRateSchedule or a number "
                    f">= 0. Received: {name}={value!r} of type {type(value).__name__}")


def log_dir(value, optional=False):
    """A non-empty path (str or os.PathLike) as a string; None passes through when `optional`."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        allowed = "a non-empty path (str or os.PathLike)" + (" or None" if optional else "")
        raise TypeError(f"Argument `log_dir` must be {allowed}. Received: log_dir={value!r} of type "
                        f"{type(value).__name__}")
    return os.fspath(value)
