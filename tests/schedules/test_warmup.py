import math
import re

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfopt.schedules import LinearDecay, Warmup, warmup

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


def cosine_decay(initial, decay_steps, alpha=0.0):
    """Keras's CosineDecay without warm-up, in float64."""
    return lambda t: initial * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(t, decay_steps) / decay_steps))
                                + alpha)


def exponential_decay(initial, decay_steps, rate):
    return lambda t: initial * rate ** (t / decay_steps)


def linear_decay(initial, decay_steps, end=0.0):
    return lambda t: initial + (end - initial) * min(t, decay_steps) / decay_steps


def reference(after, warmup_steps, initial, shape, t):
    """Warm-up from `initial` to after(0) over `warmup_steps`, then after(t - warmup_steps), in float64."""
    target = after(0)
    values = []
    for s in t:
        if s >= warmup_steps:
            values.append(after(s - warmup_steps))
        elif shape == "linear":
            values.append(initial + (target - initial) * s / warmup_steps)
        else:
            values.append(initial * (target / initial) ** (s / warmup_steps))
    return np.array(values, dtype="float64")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(schedule="cosine", warmup_steps=10), TypeError,
         "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule or a number >= 0. "
         "Received: schedule='cosine'"),
        (dict(schedule=-0.1, warmup_steps=10), ValueError,
         "Argument `schedule` must be a finite number >= 0. Received: schedule=-0.1"),
        (dict(schedule=0.1, warmup_steps=-1), ValueError,
         "Argument `warmup_steps` must be an integer >= 0. Received: warmup_steps=-1"),
        (dict(schedule=0.1, warmup_steps=1.5), TypeError,
         "Argument `warmup_steps` must be an integer >= 0. Received: warmup_steps=1.5"),
        (dict(schedule=0.1, warmup_steps=10, shape="cosine"), ValueError,
         "Argument `shape` must be one of 'linear', 'exponential'. Received: shape='cosine'"),
        (dict(schedule=0.1, warmup_steps=10, initial_learning_rate=-1.0), ValueError,
         "Argument `initial_learning_rate` must be a finite number >= 0. Received: initial_learning_rate=-1.0"),
        (dict(schedule=0.1, warmup_steps=10, shape="exponential"), ValueError,
         "Argument `initial_learning_rate` must be a finite number > 0. Received: initial_learning_rate=0.0"),
        (dict(schedule=0.0, warmup_steps=10, initial_learning_rate=1e-3, shape="exponential"), ValueError,
         "Argument `schedule` must start at a learning rate > 0 for shape='exponential' (the ramp is geometric). "
         "Received: schedule with schedule(0)=0.0"),
    ],
)
def test_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Warmup(**kwargs)


@pytest.mark.parametrize(
    "schedule",
    [
        keras.optimizers.schedules.CosineDecay(0.1, 50, alpha=0.1),
        LinearDecay(0.2, 30, 0.01),
        0.05,
        Warmup(LinearDecay(0.2, 30), 5),
    ],
    ids=["keras-cosine", "tfopt-linear", "constant", "nested-warmup"],
)
def test_config_round_trip_keeps_the_wrapped_schedule(schedule):
    assert_config_round_trip(Warmup(schedule, 10, initial_learning_rate=1e-3), range(0, 120, 7))


def test_linear_ramp_starts_at_zero_and_hands_over_at_step_zero_of_the_schedule():
    schedule = Warmup(LinearDecay(0.1, 10), warmup_steps=4)
    assert series(schedule, [0, 1, 2, 3, 4, 5, 14, 10**7]) == pytest.approx(
        [0.0, 0.025, 0.05, 0.075, 0.1, 0.09, 0.0, 0.0], rel=1e-6, abs=1e-12
    )


CASES = {
    # Keras's CosineDecay computes 1 + cos(pi * x) in float32, which loses relative precision as its value nears
    # zero; alpha keeps its values away from zero so the comparison measures Warmup, not CosineDecay.
    "keras-cosine-linear": (lambda: keras.optimizers.schedules.CosineDecay(0.1, 100, alpha=0.1),
                            cosine_decay(0.1, 100, alpha=0.1), 10, 0.0, "linear"),
    "keras-exponential-linear-from-nonzero": (
        lambda: keras.optimizers.schedules.ExponentialDecay(0.05, 20, 0.5), exponential_decay(0.05, 20, 0.5), 7,
        0.01, "linear"),
    "tfopt-linear-exponential": (lambda: LinearDecay(0.2, 50), linear_decay(0.2, 50), 10, 0.002, "exponential"),
    "constant-exponential": (lambda: 0.03, lambda t: 0.03, 5, 3e-4, "exponential"),
    "no-warmup": (lambda: LinearDecay(0.2, 50, 0.02), linear_decay(0.2, 50, 0.02), 0, 0.0, "linear"),
    "one-step-warmup": (lambda: keras.optimizers.schedules.CosineDecay(0.1, 30, alpha=0.2),
                        cosine_decay(0.1, 30, alpha=0.2), 1, 0.0, "linear"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_formula_for_three_times_the_schedule(case):
    make, after, warmup_steps, initial, shape = CASES[case]
    schedule = Warmup(make(), warmup_steps, initial_learning_rate=initial, shape=shape)
    steps = np.arange(3 * (warmup_steps + 50))
    assert_matches(scalar_series(schedule, steps), reference(after, warmup_steps, initial, shape, steps))


def test_wraps_a_keras_schedule_with_its_own_warmup():
    # CosineDecay with warmup_target uses ops.cond internally; Warmup delays all of it by its own warm-up.
    inner = keras.optimizers.schedules.CosineDecay(0.0, 20, warmup_target=0.1, warmup_steps=5)
    schedule = Warmup(inner, 3, initial_learning_rate=0.0)
    steps = np.arange(40)
    expected = [0.0, 0.0, 0.0] + [float(inner(int(t))) for t in steps[:-3]]
    assert_matches(scalar_series(schedule, steps), expected)


@pytest.mark.parametrize("shape", ["linear", "exponential"])
def test_int_variable_and_jit_calls_agree(shape):
    steps = [0, 1, 9, 10, 11, 60, 10**7]
    schedule = Warmup(keras.optimizers.schedules.CosineDecay(0.1, 50, alpha=0.1), 10, 0.001, shape)
    assert_call_contract(schedule, steps, reference(cosine_decay(0.1, 50, alpha=0.1), 10, 0.001, shape, steps))


@PROPERTY
@given(
    peak=st.floats(1e-4, 1.0),
    end_fraction=st.floats(0.0, 1.0),
    initial_fraction=st.floats(1e-3, 1.0),
    warmup_steps=st.integers(1, 10**5),
    decay_steps=st.integers(1, 10**5),
    shape=st.sampled_from(["linear", "exponential"]),
    t=st.integers(0, 10**7),
)
def test_stays_in_range_and_is_continuous_at_the_handover(
    peak, end_fraction, initial_fraction, warmup_steps, decay_steps, shape, t
):
    end, initial = peak * end_fraction, peak * initial_fraction
    schedule = Warmup(LinearDecay(peak, decay_steps, end), warmup_steps, initial, shape)
    low, high = min(initial, end), peak
    assert_within(series(schedule, [t])[0], low, high)
    around = [max(warmup_steps + d, 0) for d in (-2, -1, 0, 1)]
    values = series(schedule, around)
    for value in values:
        assert_within(value, low, high)
    ramp_step = (peak - initial) / warmup_steps if shape == "linear" else peak * (
        1 - (initial / peak) ** (1 / warmup_steps))
    assert_step_changes_at_most(values, max(ramp_step, (peak - end) / decay_steps), peak)


def test_docstring_example_runs():
    assert_docstring_examples_pass(warmup)


def test_fit_steps_use_the_schedule():
    assert_fit_follows(Warmup(keras.optimizers.schedules.CosineDecay(0.05, 6), 3, 0.005), steps=10)


def test_survives_model_save_and_load(tmp_path):
    schedule = Warmup(keras.optimizers.schedules.ExponentialDecay(0.05, 4, 0.5), 2, 0.01, "exponential")
    assert_save_load(schedule, tmp_path)
