"""Argument checks shared by the callbacks: each error names the argument, the allowed range and the value."""

import math
import numbers


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(name, value, minimum):
    """An integer >= `minimum`, returned as a Python int."""
    if not _is_integer(value):
        raise TypeError(
            f"Argument `{name}` must be an integer >= {minimum}. Received: {name}={value!r} of type "
            f"{type(value).__name__}"
        )
    if value < minimum:
        raise ValueError(f"Argument `{name}` must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def number_in(name, value, low, high, low_open, high_open):
    """A finite real number in the interval from `low` to `high`, each end open or closed, as a float."""
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if not _is_real(value):
        raise TypeError(
            f"Argument `{name}` must be a number in {interval}. Received: {name}={value!r} of type "
            f"{type(value).__name__}"
        )
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if math.isnan(value) or below or above:
        raise ValueError(f"Argument `{name}` must be a number in {interval}. Received: {name}={value!r}")
    return float(value)


def positive(name, value):
    """A finite real number > 0, as a float."""
    if not _is_real(value):
        raise TypeError(
            f"Argument `{name}` must be a finite number > 0. Received: {name}={value!r} of type "
            f"{type(value).__name__}"
        )
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"Argument `{name}` must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def non_negative(name, value):
    """A finite real number >= 0, as a float."""
    if not _is_real(value):
        raise TypeError(
            f"Argument `{name}` must be a finite number >= 0. Received: {name}={value!r} of type "
            f"{type(value).__name__}"
        )
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"Argument `{name}` must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


def one_of(name, value, allowed):
    """`value` if it is one of `allowed` (strings), else a ValueError listing them."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"Argument `{name}` must be one of {choices}. Received: {name}={value!r}")
    return value
