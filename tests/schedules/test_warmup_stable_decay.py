import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfopt.schedules import WarmupStableDecay, warmup_stable_decay

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

SHAPES = {
    "linear": lambda x: 1 - x,
    "cosine": lambda x: (1 + math.cos(math.pi * x)) / 2,
    "1-sqrt": lambda x: 1 - math.sqrt(x),
}


def reference(peak_learning_rate, total_steps, warmup_steps, decay_steps, decay_shape="linear",
              final_learning_rate=0.0, t=()):
    """Warm-up 0 -> peak, constant peak, decay to the final rate over the last decay_steps, in float64."""
    decay_start = total_steps - decay_steps
    values = []
    for step in t:
        if step < warmup_steps:
            values.append(peak_learning_rate * step / warmup_steps)
        elif step < decay_start:
            values.append(peak_learning_rate)
        elif step <= total_steps:
            x = (step - decay_start) / decay_steps
            values.append(final_learning_rate + (peak_learning_rate - final_learning_rate) * SHAPES[decay_shape](x))
        else:
            values.append(final_learning_rate)
    return np.array(values, dtype="float64")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(peak_learning_rate=0.0, total_steps=100, warmup_steps=10, decay_steps=20), ValueError,
         "Argument `peak_learning_rate` must be a finite number > 0. Received: peak_learning_rate=0.0"),
        (dict(peak_learning_rate=b"1", total_steps=100, warmup_steps=10, decay_steps=20), TypeError,
         "Argument `peak_learning_rate` must be a finite number > 0. Received: peak_learning_rate=b'1'"),
        (dict(peak_learning_rate=0.1, total_steps=0, warmup_steps=0, decay_steps=1), ValueError,
         "Argument `total_steps` must be an integer >= 1. Received: total_steps=0"),
        (dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=-1, decay_steps=20), ValueError,
         "Argument `warmup_steps` must be an integer >= 0. Received: warmup_steps=-1"),
        (dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=101, decay_steps=20), ValueError,
         "Argument `warmup_steps` must be <= `total_steps` (=100). Received: warmup_steps=101"),
        (dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=0), ValueError,
         "Argument `decay_steps` must be an integer >= 1. Received: decay_steps=0"),
        (dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=91), ValueError,
         "Arguments `warmup_steps` + `decay_steps` must be <= `total_steps` (=100). Received: warmup_steps=10, "
         "decay_steps=91"),
        (dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=20, decay_shape="sqrt"),
         ValueError, "Argument `decay_shape` must be one of 'linear', 'cosine', '1-sqrt'. Received: "
         "decay_shape='sqrt'"),
        (dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=20, final_learning_rate=0.2),
         ValueError, "Argument `final_learning_rate` must be a number in [0, 0.1]. Received: final_learning_rate=0.2"),
        (dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=20, final_learning_rate=-0.01),
         ValueError,
         "Argument `final_learning_rate` must be a number in [0, 0.1]. Received: final_learning_rate=-0.01"),
    ],
)
def test_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        WarmupStableDecay(**kwargs)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_config_round_trip(shape):
    assert_config_round_trip(WarmupStableDecay(0.1, 100, 10, 20, shape, 0.001), range(0, 130, 7))


def test_trapezoid_corners():
    schedule = WarmupStableDecay(1.0, total_steps=100, warmup_steps=10, decay_steps=20)
    assert series(schedule, [0, 5, 10, 79, 80, 90, 100, 101, 10**7]) == pytest.approx(
        [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0], rel=1e-6, abs=1e-12
    )


def test_one_minus_sqrt_is_halfway_down_a_quarter_into_the_decay():
    schedule = WarmupStableDecay(1.0, total_steps=100, warmup_steps=0, decay_steps=40, decay_shape="1-sqrt")
    assert series(schedule, [60, 70, 100]) == pytest.approx([1.0, 0.5, 0.0], rel=1e-6, abs=1e-12)


CASES = [
    dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=20),
    dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=20, decay_shape="cosine"),
    dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=20, decay_shape="1-sqrt"),
    dict(peak_learning_rate=3e-4, total_steps=1000, warmup_steps=0, decay_steps=200, decay_shape="1-sqrt",
         final_learning_rate=3e-5),
    dict(peak_learning_rate=3e-4, total_steps=1000, warmup_steps=50, decay_steps=950, decay_shape="cosine",
         final_learning_rate=1e-6),
    dict(peak_learning_rate=1.0, total_steps=7, warmup_steps=3, decay_steps=4, decay_shape="linear",
         final_learning_rate=0.5),
    dict(peak_learning_rate=1.0, total_steps=5, warmup_steps=0, decay_steps=1, decay_shape="1-sqrt"),
]


@pytest.mark.parametrize("kwargs", CASES, ids=range(len(CASES)))
def test_matches_formula_for_three_times_the_total(kwargs):
    steps = np.arange(3 * kwargs["total_steps"] + 1)
    assert_matches(series(WarmupStableDecay(**kwargs), steps), reference(**kwargs, t=steps))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_int_variable_and_jit_calls_agree(shape):
    kwargs = dict(peak_learning_rate=0.1, total_steps=100, warmup_steps=10, decay_steps=20, decay_shape=shape,
                  final_learning_rate=0.001)
    steps = [0, 9, 10, 50, 79, 80, 81, 99, 100, 101, 10**7]
    assert_call_contract(WarmupStableDecay(**kwargs), steps, reference(**kwargs, t=steps))


schedules = st.fixed_dictionaries({
    "peak_learning_rate": st.floats(1e-5, 10.0),
    "total_steps": st.integers(1, 10**6),
    "warmup_fraction": st.floats(0.0, 1.0),
    "decay_fraction": st.floats(0.0, 1.0),
    "decay_shape": st.sampled_from(sorted(SHAPES)),
    "final_fraction": st.floats(0.0, 1.0),
})


def build(params):
    total = params["total_steps"]
    warmup = int(params["warmup_fraction"] * (total - 1))
    decay = max(1, int(params["decay_fraction"] * (total - warmup)))
    kwargs = dict(peak_learning_rate=params["peak_learning_rate"], total_steps=total, warmup_steps=warmup,
                  decay_steps=decay, decay_shape=params["decay_shape"],
                  final_learning_rate=params["peak_learning_rate"] * params["final_fraction"])
    return WarmupStableDecay(**kwargs), kwargs


@PROPERTY
@given(params=schedules, t=st.integers(0, 10**7))
def test_stays_between_zero_and_the_peak(params, t):
    schedule, kwargs = build(params)
    low = 0.0 if t < kwargs["warmup_steps"] else kwargs["final_learning_rate"]
    assert_within(series(schedule, [t])[0], low, kwargs["peak_learning_rate"])


@PROPERTY
@given(params=schedules)
def test_is_continuous_at_every_phase_boundary(params):
    schedule, kwargs = build(params)
    total, warmup, decay = kwargs["total_steps"], kwargs["warmup_steps"], kwargs["decay_steps"]
    height = kwargs["peak_learning_rate"] - kwargs["final_learning_rate"]
    decay_step = {"linear": height / decay, "cosine": height * math.pi / 2 / decay,
                  "1-sqrt": height * math.sqrt(1 / decay)}[kwargs["decay_shape"]]
    one_step = max(kwargs["peak_learning_rate"] / warmup if warmup else 0.0, decay_step)
    for boundary in (warmup, total - decay, total):
        around = sorted({max(boundary + d, 0) for d in (-2, -1, 0, 1)})
        assert_step_changes_at_most(series(schedule, around), one_step, kwargs["peak_learning_rate"])


def test_docstring_example_runs():
    assert_docstring_examples_pass(warmup_stable_decay)


def test_fit_steps_use_the_schedule():
    assert_fit_follows(WarmupStableDecay(0.05, 8, 2, 4, "1-sqrt", 0.005), steps=10)


def test_survives_model_save_and_load(tmp_path):
    assert_save_load(WarmupStableDecay(0.05, 8, 2, 4, "cosine", 0.005), tmp_path)
