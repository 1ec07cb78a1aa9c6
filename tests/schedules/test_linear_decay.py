import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfopt.schedules import LinearDecay, linear_decay

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


def reference(initial, decay_steps, end, t):
    """lr_0 + (end - lr_0) * min(t, T) / T, in float64."""
    return np.array([initial + (end - initial) * min(s, decay_steps) / decay_steps for s in t], dtype="float64")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(initial_learning_rate="0.1", decay_steps=10), TypeError,
         "Argument `initial_learning_rate` must be a finite number >= 0. Received: initial_learning_rate='0.1'"),
        (dict(initial_learning_rate=-0.1, decay_steps=10), ValueError,
         "Argument `initial_learning_rate` must be a finite number >= 0. Received: initial_learning_rate=-0.1"),
        (dict(initial_learning_rate=float("nan"), decay_steps=10), ValueError,
         "Argument `initial_learning_rate` must be a finite number >= 0. Received: initial_learning_rate=nan"),
        (dict(initial_learning_rate=0.1, decay_steps=0), ValueError,
         "Argument `decay_steps` must be an integer >= 1. Received: decay_steps=0"),
        (dict(initial_learning_rate=0.1, decay_steps=-5), ValueError,
         "Argument `decay_steps` must be an integer >= 1. Received: decay_steps=-5"),
        (dict(initial_learning_rate=0.1, decay_steps=2.5), TypeError,
         "Argument `decay_steps` must be an integer >= 1. Received: decay_steps=2.5"),
        (dict(initial_learning_rate=0.1, decay_steps=10, end_learning_rate=-1e-3), ValueError,
         "Argument `end_learning_rate` must be a finite number >= 0. Received: end_learning_rate=-0.001"),
        (dict(initial_learning_rate=0.1, decay_steps=10, end_learning_rate=None), TypeError,
         "Argument `end_learning_rate` must be a finite number >= 0. Received: end_learning_rate=None"),
    ],
)
def test_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        LinearDecay(**kwargs)


def test_config_round_trip():
    assert_config_round_trip(LinearDecay(0.3, 17, end_learning_rate=0.01), range(0, 60, 3))


def test_halfway_is_the_mean_of_start_and_end():
    schedule = LinearDecay(0.2, decay_steps=8, end_learning_rate=0.04)
    assert series(schedule, [0, 4, 8, 9]) == pytest.approx([0.2, 0.12, 0.04, 0.04], rel=1e-6)


@pytest.mark.parametrize(
    "initial, decay_steps, end",
    [(0.1, 100, 0.0), (1e-3, 37, 1e-5), (0.05, 1, 0.0), (0.01, 25, 0.2)],
)
def test_matches_formula_for_three_times_the_decay(initial, decay_steps, end):
    steps = np.arange(3 * decay_steps + 1)
    schedule = LinearDecay(initial, decay_steps, end_learning_rate=end)
    assert_matches(series(schedule, steps), reference(initial, decay_steps, end, steps))


def test_int_variable_and_jit_calls_agree():
    steps = [0, 1, 12, 36, 37, 38, 10**7]
    assert_call_contract(LinearDecay(1e-3, 37, 1e-5), steps, reference(1e-3, 37, 1e-5, steps))


@PROPERTY
@given(
    initial=st.floats(0.0, 10.0),
    end=st.floats(0.0, 10.0),
    decay_steps=st.integers(1, 10**6),
    t=st.integers(0, 10**7),
)
def test_stays_between_start_and_end(initial, end, decay_steps, t):
    assert_within(series(LinearDecay(initial, decay_steps, end), [t])[0], min(initial, end), max(initial, end))


@PROPERTY
@given(initial=st.floats(1e-4, 10.0), end=st.floats(0.0, 10.0), decay_steps=st.integers(1, 10**6))
def test_is_continuous_at_the_end_of_the_decay(initial, end, decay_steps):
    steps = [max(decay_steps - 2, 0), decay_steps - 1, decay_steps, decay_steps + 1]
    values = series(LinearDecay(initial, decay_steps, end), steps)
    assert_step_changes_at_most(values, abs(end - initial) / decay_steps, max(initial, end))
    assert values[3] == values[2] == pytest.approx(end, rel=1e-6, abs=1e-12)


def test_docstring_example_runs():
    assert_docstring_examples_pass(linear_decay)


def test_fit_steps_use_the_schedule():
    assert_fit_follows(LinearDecay(0.05, decay_steps=6, end_learning_rate=0.01), steps=9)


def test_survives_model_save_and_load(tmp_path):
    assert_save_load(LinearDecay(0.05, decay_steps=6, end_learning_rate=0.01), tmp_path)
