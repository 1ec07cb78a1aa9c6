import re

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfopt.schedules import InverseSqrt, LinearDecay, Sequential, StepDecay, Warmup, sequential

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
    scalar_series,
    series,
)

pytestmark = pytest.mark.backend_agnostic


def reference(pieces, boundaries, t):
    """pieces[i](t - b_i) for b_i <= t < b_{i+1} (b_0 = 0), in float64."""
    starts = [0, *boundaries]
    values = []
    for step in t:
        index = max(i for i, start in enumerate(starts) if step >= start)
        values.append(pieces[index](step - starts[index]))
    return np.array(values, dtype="float64")


def linear(initial, decay_steps, end=0.0):
    return lambda t: initial + (end - initial) * min(t, decay_steps) / decay_steps


def constant(value):
    return lambda t: value


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(schedules=[], boundaries=[]), TypeError,
         "Argument `schedules` must be a non-empty list of LearningRateSchedule or numbers >= 0. "
         "Received: schedules=[]"),
        (dict(schedules=[0.1, "cosine"], boundaries=[10]), TypeError,
         "Argument `schedules[1]` must be a keras.optimizers.schedules.LearningRateSchedule or a number >= 0. "
         "Received: schedules[1]='cosine'"),
        (dict(schedules=[0.1, -0.01], boundaries=[10]), ValueError,
         "Argument `schedules[1]` must be a finite number >= 0. Received: schedules[1]=-0.01"),
        (dict(schedules=[0.1, 0.01], boundaries=[]), ValueError,
         "Argument `boundaries` must have len(schedules) - 1 = 1 entries. Received: boundaries=[] with 0 entries"),
        (dict(schedules=[0.1, 0.01], boundaries=[10, 20]), ValueError,
         "Argument `boundaries` must have len(schedules) - 1 = 1 entries. Received: boundaries=[10, 20] with 2 "
         "entries"),
        (dict(schedules=[0.1, 0.01, 0.001], boundaries=[20, 10]), ValueError,
         "Argument `boundaries` must be strictly increasing. Received: boundaries=[20, 10]"),
        (dict(schedules=[0.1, 0.01, 0.001], boundaries=[10, 10]), ValueError,
         "Argument `boundaries` must be strictly increasing. Received: boundaries=[10, 10]"),
        (dict(schedules=[0.1, 0.01], boundaries=[0]), ValueError,
         "Argument `boundaries[0]` must be an integer >= 1. Received: boundaries[0]=0"),
        (dict(schedules=[0.1, 0.01], boundaries=[2.5]), TypeError,
         "Argument `boundaries[0]` must be an integer >= 1. Received: boundaries[0]=2.5"),
        (dict(schedules=[0.1, 0.01], boundaries=10), TypeError,
         "Argument `boundaries` must be a list of integers. Received: boundaries=10"),
    ],
)
def test_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Sequential(**kwargs)


def test_config_round_trip_keeps_every_piece():
    schedule = Sequential(
        [Warmup(0.1, 5), keras.optimizers.schedules.CosineDecay(0.1, 50, alpha=0.1), StepDecay(0.01, 10), 1e-4],
        boundaries=[5, 55, 100],
    )
    assert_config_round_trip(schedule, range(0, 150, 4))


def test_next_schedule_starts_from_its_step_zero_on_the_boundary():
    schedule = Sequential([0.5, LinearDecay(0.4, 4), 0.01], boundaries=[3, 10])
    assert series(schedule, [0, 2, 3, 4, 7, 9, 10, 10**7]) == pytest.approx(
        [0.5, 0.5, 0.4, 0.3, 0.0, 0.0, 0.01, 0.01], rel=1e-6, abs=1e-12
    )


def test_matches_formula_for_three_times_the_last_boundary():
    pieces = [LinearDecay(0.0, 10, 0.1), 0.1, LinearDecay(0.1, 30, 0.001), StepDecay(0.001, 7, 0.5)]
    boundaries = [10, 40, 70]
    reference_pieces = [linear(0.0, 10, 0.1), constant(0.1), linear(0.1, 30, 0.001),
                        lambda t: 0.001 * 0.5 ** (t // 7)]
    steps = np.arange(3 * 70)
    assert_matches(series(Sequential(pieces, boundaries), steps), reference(reference_pieces, boundaries, steps))


def test_runs_keras_schedules_each_from_their_own_step_zero():
    cosine = keras.optimizers.schedules.CosineDecay(0.1, 20, alpha=0.1)
    exponential = keras.optimizers.schedules.ExponentialDecay(0.05, 10, 0.5)
    schedule = Sequential([cosine, exponential], boundaries=[25])
    steps = np.arange(80)
    expected = [float(cosine(int(t))) if t < 25 else float(exponential(int(t) - 25)) for t in steps]
    assert_matches(scalar_series(schedule, steps), expected)


def test_a_single_schedule_needs_no_boundaries():
    steps = np.arange(30)
    assert_matches(series(Sequential([InverseSqrt(0.1, 5)], []), steps), series(InverseSqrt(0.1, 5), steps))


def test_int_variable_and_jit_calls_agree():
    pieces = [LinearDecay(0.0, 10, 0.1), InverseSqrt(0.1, 5), 0.002]
    steps = [0, 5, 9, 10, 11, 29, 30, 31, 10**7]
    inverse_sqrt = lambda t: 0.1 * t / 5 if t < 5 else 0.1 * (5 / t) ** 0.5  # noqa: E731
    expected = reference([linear(0.0, 10, 0.1), inverse_sqrt, constant(0.002)], [10, 30], steps)
    assert_call_contract(Sequential(pieces, [10, 30]), steps, expected)


@PROPERTY
@given(
    rates=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6),
    lengths=st.lists(st.integers(1, 10**5), min_size=5, max_size=5),
    t=st.integers(0, 10**7),
)
def test_chained_linear_pieces_are_continuous_and_stay_in_range(rates, lengths, t):
    # Piece i falls linearly from rates[i] to rates[i + 1]; the last holds its value. The joined schedule is a
    # continuous polyline through the rates.
    count = len(rates) - 1
    pieces = [LinearDecay(rates[i], lengths[i], rates[i + 1]) for i in range(count)] + [rates[-1]]
    boundaries = list(np.cumsum(lengths[:count]).astype(int).tolist())
    schedule = Sequential(pieces, boundaries)
    assert_within(series(schedule, [t])[0], min(rates), max(rates))
    one_step = max(abs(rates[i + 1] - rates[i]) / lengths[i] for i in range(count))
    for boundary in boundaries:
        around = sorted({max(boundary + d, 0) for d in (-2, -1, 0, 1)})
        assert_step_changes_at_most(series(schedule, around), one_step, max(rates))


def test_docstring_example_runs():
    assert_docstring_examples_pass(sequential)


def test_fit_steps_use_the_schedule():
    schedule = Sequential([LinearDecay(0.01, 3, 0.05), 0.05, StepDecay(0.05, 2, 0.5)], boundaries=[3, 5])
    assert_fit_follows(schedule, steps=10)


def test_survives_model_save_and_load(tmp_path):
    schedule = Sequential([Warmup(keras.optimizers.schedules.CosineDecay(0.05, 4), 2), 0.01], boundaries=[6])
    assert_save_load(schedule, tmp_path)
