"""The one argument-check home, tfopt/_checks.py: its interval convention and its error types and messages."""

import math
import subprocess
import sys

import pytest

from tfopt import _checks


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, value, expected",
    [
        ({"low": 0, "high": 1}, 0, 0.0),
        ({"low": 0, "high": 1}, 1, 1.0),
        ({"low": 0, "high": 1, "low_open": True}, 0.5, 0.5),
        ({"low": 0}, 1e30, 1e30),
        ({"low": 0, "allow_inf": True}, math.inf, math.inf),
        ({}, -3, -3.0),
    ],
)
def test_number_accepts_the_closed_ends_and_returns_a_float(kwargs, value, expected):
    result = _checks.number("x", value, **kwargs)
    assert result == expected and type(result) is float


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, value, error, message",
    [
        ({"low": 0, "high": 1, "low_open": True}, 0, ValueError,
         "Argument `x` must be a number in (0, 1]. Received: x=0"),
        ({"low": 0, "high": 1, "high_open": True}, 1.0, ValueError,
         "Argument `x` must be a number in [0, 1). Received: x=1.0"),
        ({"low": 0, "high": 1}, math.nan, ValueError, "Argument `x` must be a number in [0, 1]. Received: x=nan"),
        ({"low": 0, "low_open": True}, 0.0, ValueError, "Argument `x` must be a finite number > 0. Received: x=0.0"),
        ({"low": 0}, math.inf, ValueError, "Argument `x` must be a finite number >= 0. Received: x=inf"),
        ({"low": 0, "allow_inf": True}, -math.inf, ValueError, "Argument `x` must be a number >= 0. Received: x=-inf"),
        ({"low": 0}, "1", TypeError, "Argument `x` must be a finite number >= 0. Received: x='1' of type str"),
        ({"low": 0}, True, TypeError, "Argument `x` must be a finite number >= 0. Received: x=True of type bool"),
        ({"low": 0, "optional": True}, -1, ValueError,
         "Argument `x` must be a finite number >= 0 or None. Received: x=-1"),
        ({"low": 1, "high": 2, "condition": "when `y=True`"}, 3, ValueError,
         "Argument `x` must be a number in [1, 2] when `y=True`. Received: x=3"),
    ],
)
def test_number_refuses_with_the_error_type_the_range_and_the_value(kwargs, value, error, message):
    with pytest.raises(error) as info:
        _checks.number("x", value, **kwargs)
    assert str(info.value) == message


@pytest.mark.backend_agnostic
def test_optional_number_and_integer_pass_none_through():
    assert _checks.number("x", None, low=0, optional=True) is None
    assert _checks.integer("n", None, 1, optional=True) is None


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "args, value, error, message",
    [
        ((1,), 0, ValueError, "Argument `n` must be an integer >= 1. Received: n=0"),
        ((1, 8), 9, ValueError, "Argument `n` must be an integer in [1, 8]. Received: n=9"),
        ((1,), 2.0, TypeError, "Argument `n` must be an integer >= 1. Received: n=2.0 of type float"),
        ((0,), False, TypeError, "Argument `n` must be an integer >= 0. Received: n=False of type bool"),
    ],
)
def test_integer_refuses_with_the_error_type_the_range_and_the_value(args, value, error, message):
    with pytest.raises(error) as info:
        _checks.integer("n", value, *args)
    assert str(info.value) == message


@pytest.mark.backend_agnostic
def test_boolean_refuses_integers():
    assert _checks.boolean("flag", True) is True
    with pytest.raises(TypeError, match=r"Argument `flag` must be a bool. Received: flag=1 of type int"):
        _checks.boolean("flag", 1)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("value, expected", [("2:4", (2, 4)), ("1:8", (1, 8)), ((2, 4), (2, 4)), ([3, 5], (3, 5))])
def test_n_m_structure_parses_strings_and_pairs(value, expected):
    assert _checks.n_m_structure("structure", value) == expected


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "value, error",
    [("4:2", ValueError), ("2:2", ValueError), ("0:4", ValueError), ("2-4", ValueError), ("2:4:8", ValueError),
     ("a:4", ValueError), ((4, 2), ValueError), (24, TypeError), ((2.0, 4), TypeError), (None, TypeError)],
)
def test_n_m_structure_refuses_what_is_not_n_below_m(value, error):
    with pytest.raises(error, match=r"Argument `structure` must be .*N:M.*Received: structure="):
        _checks.n_m_structure("structure", value)


@pytest.mark.backend_agnostic
def test_importing_the_checks_does_not_load_keras():
    # The CLI checks its flags with these functions before Keras and its backend load.
    code = "import sys; import tfopt._checks; print('keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
