"""Argument checks for the whole of tfopt: the one place they live.

Each error names the argument, the allowed range and the value received: a `TypeError` for a value of the wrong
type, a `ValueError` for one out of range.
"""

import math
import numbers
import os

# Keras is imported by the two checks that need it, on first use, so that `tfopt.cli` can check its flags with
# these functions before Keras (and its backend) loads.


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def number(name, value, low=None, high=None, *, low_open=False, high_open=False, allow_inf=False, condition="",
           optional=False):
    """A real number in the interval from `low` to `high`, returned as a Python float.

    The one interval convention of tfopt: both ends are closed unless `low_open` / `high_open` says otherwise;
    either end may be None (unbounded). NaN is always refused, and so is an infinity unless `allow_inf` (which
    admits +inf when `high` is None). `condition` (e.g. "when `three_phase=True`") follows the interval in the
    message. With `optional`, None passes through.
    """
    if optional and value is None:
        return None
    if low is not None and high is not None:
        allowed = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"a {'' if allow_inf else 'finite '}number {'>' if low_open else '>='} {low}"
    else:
        allowed = "a finite number"
    if condition:
        allowed = f"{allowed} {condition}"
    if optional:
        allowed = f"{allowed} or None"
    if not _is_real(value):
        raise TypeError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    finite = math.isfinite(value) or (allow_inf and high is None and value == math.inf)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not finite or below or above:
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")
    return float(value)


def finite_number(name, value, positive=False):
    """A finite real number, > 0 when `positive`, else >= 0 (a learning rate, a factor, a delta), as a float."""
    return number(name, value, low=0, low_open=positive)


def integer(name, value, minimum, maximum=None, *, optional=False):
    """An integer >= `minimum` (and <= `maximum` when given), returned as a Python int; with `optional`, None
    passes through."""
    if optional and value is None:
        return None
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    if optional:
        allowed = f"{allowed} or None"
    if not _is_integer(value):
        raise TypeError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")
    return int(value)


def boolean(name, value):
    """A Python bool (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"Argument `{name}` must be a bool. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    return value


def learning_rate(value, positive=False):
    """An optimizer's learning rate: a number >= 0 (> 0 when `positive`), a `LearningRateSchedule` or a callable;
    numbers become floats."""
    import keras

    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        return value
    allowed = "a finite number > 0" if positive else "a finite number >= 0"
    if not _is_real(value):
        raise TypeError(f"Argument `learning_rate` must be {allowed}, a `LearningRateSchedule` or a callable. "
                        f"Received: learning_rate={value!r} of type {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"Argument `learning_rate` must be {allowed}, a `LearningRateSchedule` or a callable. "
                         f"Received: learning_rate={value!r}")
    return float(value)


def weight_decay(value):
    """None (no decay) or a number >= 0, returned as a float."""
    if value is None:
        return None
    return number("weight_decay", value, low=0.0)


def choice(name, value, allowed):
    """One of the strings in `allowed`."""
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"Argument `{name}` must be one of {listed}. Received: {name}={value!r}")
    return value


def schedule_or_rate(name, value):
    """A `LearningRateSchedule`, or a number >= 0 that stands for a constant learning rate (returned as float)."""
    import keras

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


def n_m_structure(name, value, optional=False):
    """An N:M sparsity structure (N non-zero weights in every M): the string "N:M" or a pair of integers with
    0 < N < M, returned as the tuple `(n, m)`; with `optional`, None passes through."""
    if optional and value is None:
        return None
    if isinstance(value, str):
        parts = value.split(":")
        pair = tuple(int(p) for p in parts) if len(parts) == 2 and all(p.isdigit() for p in parts) else None
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_integer(v) for v in value):
        pair = tuple(int(v) for v in value)
    else:
        raise TypeError(f"Argument `{name}` must be a string 'N:M' or a pair (N, M) of integers, e.g. '2:4'. "
                        f"Received: {name}={value!r} of type {type(value).__name__}")
    if pair is None or not 0 < pair[0] < pair[1]:
        raise ValueError(f"Argument `{name}` must be 'N:M' with 0 < N < M, e.g. '2:4'. Received: {name}={value!r}")
    return pair
