import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfopt.schedules import StepDecay, step_decay

from .checks import (
    PROPERTY,
    assert_call_contract,
    assert_config_round_trip,
    assert_docstring_examples_pass,
    assert_fit_follows,
    assert_matches,
    assert_save_load,
    assert_within,
    series,
)

pytestmark = pytest.mark.backend_agnostic


def reference(initial, step_size, gamma, t):
    """lr_0 * gamma ** floor(t / step_size), in float64."""
    return np.array([initial * gamma ** (s // step_size) for s in t], dtype="float64")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(initial_learning_rate=[0.1], step_size=10), TypeError,
         "Argument `initial_learning_rate` must be a finite number >= 0. Received: initial_learning_rate=[0.1]"),
        (dict(initial_learning_rate=0.1, step_size=0), ValueError,
         "Argument `step_size` must be an integer >= 1. Received: step_size=0"),
        (dict(initial_learning_rate=0.1, step_size=True), TypeError,
         "Argument `step_size` must be an integer >= 1. Received: step_size=True"),
        (dict(initial_learning_rate=0.1, step_size=10, gamma=0.0), ValueError,
         "Argument `gamma` must be a number in (0, 1]. Received: gamma=0.0"),
        (dict(initial_learning_rate=0.1, step_size=10, gamma=1.5), ValueError,
         "Argument `gamma` must be a number in (0, 1]. Received: gamma=1.5"),
        (dict(initial_learning_rate=0.1, step_size=10, gamma="0.1"), TypeError,
         "Argument `gamma` must be a number in (0, 1]. Received: gamma='0.1'"),
    ],
)
def test_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        StepDecay(**kwargs)


def test_config_round_trip():
    assert_config_round_trip(StepDecay(0.3, 7, gamma=0.5), range(0, 60, 3))


def test_drops_by_gamma_at_each_multiple_of_the_step_size():
    schedule = StepDecay(0.1, step_size=30)
    assert series(schedule, [0, 29, 30, 59, 60, 90]) == pytest.approx([0.1, 0.1, 0.01, 0.01, 1e-3, 1e-4], rel=1e-6)


def test_drop_lands_exactly_on_each_multiple():
    # A backend may divide by multiplying with a rounded reciprocal (61 * (1/61) < 1); the drop must not move.
    for step_size in [*range(1, 70), 97, 127, 199, 1000, 4099]:
        t = [step_size - 1, step_size, 2 * step_size - 1, 2 * step_size, 100 * step_size - 1, 100 * step_size]
        assert_matches(series(StepDecay(1.0, step_size, 0.5), t), [1.0, 0.5, 0.5, 0.25, 0.5**99, 0.5**100])


@pytest.mark.parametrize(
    "initial, step_size, gamma, steps",
    [(0.1, 10, 0.1, 31), (1e-3, 7, 0.5, 200), (0.5, 1, 0.9, 300), (0.02, 13, 1.0, 100), (0.3, 3, 0.99, 3000)],
)
def test_matches_formula_over_many_drops(initial, step_size, gamma, steps):
    t = np.arange(steps)
    assert_matches(series(StepDecay(initial, step_size, gamma), t), reference(initial, step_size, gamma, t))


def test_int_variable_and_jit_calls_agree():
    steps = [0, 6, 7, 8, 70, 10**4]
    assert_call_contract(StepDecay(0.2, 7, 0.5), steps, reference(0.2, 7, 0.5, steps))


def test_far_past_the_last_drop_is_zero_not_nan():
    assert series(StepDecay(0.1, 1, 0.1), [10**7])[0] == 0.0


@PROPERTY
@given(
    initial=st.floats(0.0, 10.0),
    step_size=st.integers(1, 10**5),
    gamma=st.floats(1e-3, 1.0),
    t=st.integers(0, 10**7),
)
def test_never_rises_and_stays_in_range(initial, step_size, gamma, t):
    schedule = StepDecay(initial, step_size, gamma)
    now, later = series(schedule, [t, t + step_size])
    assert_within(now, 0.0, initial)
    assert later <= now
    # One interval later the rate is exactly gamma times smaller (until it underflows).
    if now > 1e-30:
        assert later == pytest.approx(now * gamma, rel=1e-5, abs=1e-37)


def test_interval_count_is_exact_up_to_two_to_the_24():
    # floor(t / s) of float32 integers is exact below 2**24 steps: the drop lands on the right step even there.
    schedule = StepDecay(1.0, step_size=3, gamma=0.999999)
    t = [3 * 5_000_000 - 1, 3 * 5_000_000]
    np.testing.assert_allclose(series(schedule, t), reference(1.0, 3, 0.999999, t), rtol=1e-5)


def test_docstring_example_runs():
    assert_docstring_examples_pass(step_decay)


def test_fit_steps_use_the_schedule():
    assert_fit_follows(StepDecay(0.05, step_size=3, gamma=0.5), steps=8)


def test_survives_model_save_and_load(tmp_path):
    assert_save_load(StepDecay(0.05, step_size=2, gamma=0.5), tmp_path)
