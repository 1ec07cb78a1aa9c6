import json
import math
import os
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfopt.schedules import OneCycle, one_cycle

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

GOLDEN = os.path.join(os.path.dirname(__file__), "torch_golden.json")


def reference(max_learning_rate, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4,
              anneal_strategy="cos", three_phase=False, t=()):
    """Smith's one-cycle policy with PyTorch's phase ends, in float64; held at the minimum after the last step."""
    initial = max_learning_rate / div_factor
    minimum = initial / final_div_factor
    warm_end = pct_start * total_steps - 1
    if three_phase:
        ends = [warm_end, 2 * pct_start * total_steps - 2, total_steps - 1]
        rates = [(initial, max_learning_rate), (max_learning_rate, initial), (initial, minimum)]
    else:
        ends = [warm_end, total_steps - 1]
        rates = [(initial, max_learning_rate), (max_learning_rate, minimum)]

    def anneal(start, end, x):
        if anneal_strategy == "linear":
            return start + (end - start) * x
        return end + (start - end) * (1 + math.cos(math.pi * x)) / 2

    values = []
    for step in t:
        step = min(step, total_steps - 1)
        begin = 0.0
        for index, (end, (start_lr, end_lr)) in enumerate(zip(ends, rates)):
            if step <= end or index == len(ends) - 1:
                values.append(anneal(start_lr, end_lr, (step - begin) / (end - begin) if end != begin else 0.0))
                break
            begin = end
    return np.array(values, dtype="float64")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(max_learning_rate=0.0, total_steps=100), ValueError,
         "Argument `max_learning_rate` must be a finite number > 0. Received: max_learning_rate=0.0"),
        (dict(max_learning_rate="0.1", total_steps=100), TypeError,
         "Argument `max_learning_rate` must be a finite number > 0. Received: max_learning_rate='0.1'"),
        (dict(max_learning_rate=0.1, total_steps=0), ValueError,
         "Argument `total_steps` must be an integer >= 1. Received: total_steps=0"),
        (dict(max_learning_rate=0.1, total_steps=100.0), TypeError,
         "Argument `total_steps` must be an integer >= 1. Received: total_steps=100.0"),
        (dict(max_learning_rate=0.1, total_steps=100, pct_start=0.0), ValueError,
         "Argument `pct_start` must be a number in (0, 1). Received: pct_start=0.0"),
        (dict(max_learning_rate=0.1, total_steps=100, pct_start=1.0), ValueError,
         "Argument `pct_start` must be a number in (0, 1). Received: pct_start=1.0"),
        (dict(max_learning_rate=0.1, total_steps=100, pct_start=-0.2), ValueError,
         "Argument `pct_start` must be a number in (0, 1). Received: pct_start=-0.2"),
        (dict(max_learning_rate=0.1, total_steps=100, pct_start=0.6, three_phase=True), ValueError,
         "Argument `pct_start` must be a number in (0, 0.5] when `three_phase=True`. Received: pct_start=0.6"),
        (dict(max_learning_rate=0.1, total_steps=100, div_factor=0.0), ValueError,
         "Argument `div_factor` must be a finite number > 0. Received: div_factor=0.0"),
        (dict(max_learning_rate=0.1, total_steps=100, final_div_factor=-10.0), ValueError,
         "Argument `final_div_factor` must be a finite number > 0. Received: final_div_factor=-10.0"),
        (dict(max_learning_rate=0.1, total_steps=100, anneal_strategy="cosine"), ValueError,
         "Argument `anneal_strategy` must be one of 'cos', 'linear'. Received: anneal_strategy='cosine'"),
        (dict(max_learning_rate=0.1, total_steps=100, three_phase="yes"), TypeError,
         "Argument `three_phase` must be a bool. Received: three_phase='yes'"),
    ],
)
def test_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        OneCycle(**kwargs)


def test_config_round_trip():
    schedule = OneCycle(0.1, 57, pct_start=0.25, div_factor=10.0, final_div_factor=100.0, anneal_strategy="linear",
                        three_phase=True)
    assert_config_round_trip(schedule, range(0, 80, 3))


def test_linear_cycle_hits_its_corners():
    schedule = OneCycle(1.0, total_steps=10, pct_start=0.5, div_factor=10.0, final_div_factor=10.0,
                        anneal_strategy="linear")
    # Warm-up ends on step pct_start * total_steps - 1 = 4, the anneal on total_steps - 1 = 9.
    assert series(schedule, [0, 2, 4, 9, 10, 10**7]) == pytest.approx([0.1, 0.55, 1.0, 0.01, 0.01, 0.01], rel=1e-6)


CASES = [
    dict(max_learning_rate=0.1, total_steps=100),
    dict(max_learning_rate=0.1, total_steps=100, anneal_strategy="linear"),
    dict(max_learning_rate=0.01, total_steps=57, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
         three_phase=True),
    dict(max_learning_rate=0.01, total_steps=57, pct_start=0.4, anneal_strategy="linear", three_phase=True),
    dict(max_learning_rate=0.5, total_steps=7, pct_start=0.3, div_factor=5.0, final_div_factor=50.0),
    dict(max_learning_rate=0.5, total_steps=3, pct_start=0.25, anneal_strategy="linear"),
    dict(max_learning_rate=0.3, total_steps=10, pct_start=0.1),  # warm-up is the single step 0
    dict(max_learning_rate=0.3, total_steps=1000, pct_start=0.05, div_factor=1.0, final_div_factor=1e3),
]


@pytest.mark.parametrize("kwargs", CASES, ids=range(len(CASES)))
def test_matches_formula_for_three_times_the_cycle(kwargs):
    steps = np.arange(3 * kwargs["total_steps"])
    assert_matches(series(OneCycle(**kwargs), steps), reference(**kwargs, t=steps))


def load_golden():
    with open(GOLDEN) as f:
        return json.load(f)["OneCycle"]


@pytest.mark.parametrize("case", load_golden(), ids=lambda case: json.dumps(case["kwargs"]))
def test_equals_pytorch_one_cycle_lr_at_every_step(case):
    # lr[t] is the rate of PyTorch's (t + 1)-th optimizer step, which Keras takes with iterations == t.
    steps = np.arange(len(case["lr"]))
    assert_matches(series(OneCycle(**case["kwargs"]), steps), case["lr"])


def test_golden_file_covers_both_strategies_and_both_phase_counts():
    covered = {(case["kwargs"].get("anneal_strategy", "cos"), case["kwargs"].get("three_phase", False))
               for case in load_golden()}
    assert covered == {("cos", False), ("cos", True), ("linear", False), ("linear", True)}


def test_int_variable_and_jit_calls_agree():
    kwargs = dict(max_learning_rate=0.01, total_steps=57, pct_start=0.25, three_phase=True)
    steps = [0, 1, 13, 14, 15, 27, 28, 56, 57, 10**7]
    assert_call_contract(OneCycle(**kwargs), steps, reference(**kwargs, t=steps))


cycles = st.fixed_dictionaries({
    "max_learning_rate": st.floats(1e-4, 10.0),
    "total_steps": st.integers(1, 10**5),
    "div_factor": st.floats(1.0, 1e3),
    "final_div_factor": st.floats(1.0, 1e4),
    "anneal_strategy": st.sampled_from(["cos", "linear"]),
}).flatmap(lambda kwargs: st.one_of(
    st.builds(lambda pct: {**kwargs, "pct_start": pct, "three_phase": False}, st.floats(0.01, 0.99)),
    st.builds(lambda pct: {**kwargs, "pct_start": pct, "three_phase": True}, st.floats(0.01, 0.5)),
))


@PROPERTY
@given(kwargs=cycles, t=st.integers(0, 10**7))
def test_stays_between_the_final_and_the_peak_rate(kwargs, t):
    schedule = OneCycle(**kwargs)
    low = kwargs["max_learning_rate"] / kwargs["div_factor"] / kwargs["final_div_factor"]
    assert_within(series(schedule, [t])[0], low, kwargs["max_learning_rate"])


@PROPERTY
@given(kwargs=cycles)
def test_is_continuous_across_phase_ends(kwargs):
    schedule = OneCycle(**kwargs)
    total, pct = kwargs["total_steps"], kwargs["pct_start"]
    ends = [pct * total - 1, total - 1] + ([2 * pct * total - 2] if kwargs["three_phase"] else [])
    peak = kwargs["max_learning_rate"]
    # The steepest step of any phase: at most the full height over the phase length (times pi/2 for the
    # cosine), and never more than the full height.
    lengths = [length for length in np.diff(sorted([0.0, *ends])) if length > 0]
    factor = math.pi / 2 if kwargs["anneal_strategy"] == "cos" else 1.0
    one_step = min(peak, peak * factor / min(lengths)) if lengths else peak
    for end in ends:
        around = sorted({max(math.floor(end) + d, 0) for d in (-1, 0, 1, 2)})
        assert_step_changes_at_most(series(schedule, around), one_step, peak)


def test_docstring_example_runs():
    assert_docstring_examples_pass(one_cycle)


def test_fit_steps_use_the_schedule():
    assert_fit_follows(OneCycle(0.05, 10, pct_start=0.3, div_factor=10.0, final_div_factor=10.0), steps=12)


def test_survives_model_save_and_load(tmp_path):
    assert_save_load(OneCycle(0.05, 6, pct_start=0.4, anneal_strategy="linear", three_phase=True), tmp_path)
