import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfopt.schedules import InverseSqrt, inverse_sqrt

from .checks import (
    PROPERTY,
    assert_call_contract,
    assert_config_round_trip,
    assert_docstring_examples_pass,
    assert_fit_follows,
    assert_matches,
    assert_save_load,
    assert_step_changes_at_most,
    assert_within,
    series,
)

pytestmark = pytest.mark.backend_agnostic


def reference(peak_learning_rate, warmup_steps, t):
    """The Transformer's d**-0.5 * min(t**-0.5, t * W**-1.5), rescaled so its value at t = W is the peak."""
    noam_at_peak = warmup_steps**-0.5
    values = []
    for step in t:
        noam = 0.0 if step == 0 else min(step**-0.5, step * warmup_steps**-1.5)
        values.append(peak_learning_rate * noam / noam_at_peak)
    return np.array(values, dtype="float64")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(peak_learning_rate=-1.0, warmup_steps=10), ValueError,
         "Argument `peak_learning_rate` must be a finite number > 0. Received: peak_learning_rate=-1.0"),
        (dict(peak_learning_rate=float("inf"), warmup_steps=10), ValueError,
         "Argument `peak_learning_rate` must be a finite number > 0. Received: peak_learning_rate=inf"),
        (dict(peak_learning_rate=1e-3, warmup_steps=0), ValueError,
         "Argument `warmup_steps` must be an integer >= 1. Received: warmup_steps=0"),
        (dict(peak_learning_rate=1e-3, warmup_steps="4000"), TypeError,
         "Argument `warmup_steps` must be an integer >= 1. Received: warmup_steps='4000'"),
    ],
)
def test_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        InverseSqrt(**kwargs)


def test_config_round_trip():
    assert_config_round_trip(InverseSqrt(7e-4, 4000), range(0, 20000, 997))


def test_step_zero_is_zero_and_the_rate_halves_when_the_step_quadruples():
    schedule = InverseSqrt(1.0, warmup_steps=4)
    assert series(schedule, [0, 1, 4, 16, 64]) == pytest.approx([0.0, 0.25, 1.0, 0.5, 0.25], rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("peak, warmup_steps", [(1e-3, 100), (0.5, 1), (7e-4, 4000), (0.1, 37)])
def test_matches_formula_for_many_warmups(peak, warmup_steps):
    steps = np.arange(3 * warmup_steps + 50)
    assert_matches(series(InverseSqrt(peak, warmup_steps), steps), reference(peak, warmup_steps, steps))


def test_matches_formula_far_out():
    steps = np.array([10**4, 10**5, 10**6, 10**7])
    assert_matches(series(InverseSqrt(1e-3, 4000), steps), reference(1e-3, 4000, steps))


def test_int_variable_and_jit_calls_agree():
    steps = [0, 1, 99, 100, 101, 400, 10**7]
    assert_call_contract(InverseSqrt(1e-3, 100), steps, reference(1e-3, 100, steps))


@PROPERTY
@given(peak=st.floats(1e-6, 10.0), warmup_steps=st.integers(1, 10**5), t=st.integers(0, 10**7))
def test_stays_between_zero_and_the_peak(peak, warmup_steps, t):
    assert_within(series(InverseSqrt(peak, warmup_steps), [t])[0], 0.0, peak)


@PROPERTY
@given(peak=st.floats(1e-6, 10.0), warmup_steps=st.integers(1, 10**5))
def test_is_continuous_at_the_peak(peak, warmup_steps):
    around = sorted({max(warmup_steps + d, 0) for d in (-2, -1, 0, 1)})
    assert_step_changes_at_most(series(InverseSqrt(peak, warmup_steps), around), peak / warmup_steps, peak)


def test_decay_keeps_the_square_root_law_after_the_peak():
    values = series(InverseSqrt(1.0, 10), [10, 40, 160, 640])
    np.testing.assert_allclose(values[1:] / values[:-1], 0.5, rtol=1e-6)
    assert math.isclose(values[0], 1.0, rel_tol=1e-6)


def test_docstring_example_runs():
    assert_docstring_examples_pass(inverse_sqrt)


def test_fit_steps_use_the_schedule():
    assert_fit_follows(InverseSqrt(0.05, 3), steps=9)


def test_survives_model_save_and_load(tmp_path):
    assert_save_load(InverseSqrt(0.05, 3), tmp_path)
