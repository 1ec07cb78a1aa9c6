import json
import os
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfopt.schedules import CyclicalLearningRate, cyclical_learning_rate

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


def reference(base_learning_rate, max_learning_rate, step_size_up, step_size_down=None, mode="triangular",
              gamma=1.0, t=()):
    """Smith's triangular cycles (PyTorch's CyclicLR scaling), in float64."""
    down = step_size_up if step_size_down is None else step_size_down
    length = step_size_up + down
    values = []
    for step in t:
        cycle = step // length + 1
        position = step - (cycle - 1) * length
        if position <= step_size_up:
            height = position / step_size_up
        else:
            height = 1 - (position - step_size_up) / down
        scale = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1), "exp_range": gamma**step}[mode]
        values.append(base_learning_rate + (max_learning_rate - base_learning_rate) * height * scale)
    return np.array(values, dtype="float64")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(base_learning_rate=-0.1, max_learning_rate=0.1, step_size_up=5), ValueError,
         "Argument `base_learning_rate` must be a finite number >= 0. Received: base_learning_rate=-0.1"),
        (dict(base_learning_rate=0.1, max_learning_rate=None, step_size_up=5), TypeError,
         "Argument `max_learning_rate` must be a finite number >= 0. Received: max_learning_rate=None"),
        (dict(base_learning_rate=0.1, max_learning_rate=0.01, step_size_up=5), ValueError,
         "Argument `max_learning_rate` must be >= `base_learning_rate` (=0.1). Received: max_learning_rate=0.01"),
        (dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=0), ValueError,
         "Argument `step_size_up` must be an integer >= 1. Received: step_size_up=0"),
        (dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=5, step_size_down=-2), ValueError,
         "Argument `step_size_down` must be an integer >= 1. Received: step_size_down=-2"),
        (dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=5, step_size_down=2.0), TypeError,
         "Argument `step_size_down` must be an integer >= 1. Received: step_size_down=2.0"),
        (dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=5, mode="cosine"), ValueError,
         "Argument `mode` must be one of 'triangular', 'triangular2', 'exp_range'. Received: mode='cosine'"),
        (dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=5, mode="exp_range", gamma=1.01),
         ValueError, "Argument `gamma` must be a number in (0, 1]. Received: gamma=1.01"),
        (dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=5, gamma=0), ValueError,
         "Argument `gamma` must be a number in (0, 1]. Received: gamma=0"),
    ],
)
def test_rejects_bad_arguments_naming_them(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        CyclicalLearningRate(**kwargs)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_config_round_trip(mode):
    assert_config_round_trip(CyclicalLearningRate(0.01, 0.1, 4, 6, mode=mode, gamma=0.97), range(0, 60, 3))


def test_triangle_rises_for_step_size_up_and_falls_for_step_size_down():
    schedule = CyclicalLearningRate(0.1, 0.5, step_size_up=2, step_size_down=4)
    assert series(schedule, [0, 1, 2, 3, 4, 5, 6, 8]) == pytest.approx(
        [0.1, 0.3, 0.5, 0.4, 0.3, 0.2, 0.1, 0.5], rel=1e-6
    )


CASES = [
    dict(base_learning_rate=0.001, max_learning_rate=0.1, step_size_up=5),
    dict(base_learning_rate=0.001, max_learning_rate=0.1, step_size_up=4, step_size_down=6, mode="triangular2"),
    dict(base_learning_rate=0.0, max_learning_rate=0.3, step_size_up=3, mode="triangular2"),
    dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=5, mode="exp_range", gamma=0.99),
    dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=3, step_size_down=7, mode="exp_range",
         gamma=0.95),
    dict(base_learning_rate=0.2, max_learning_rate=0.7, step_size_up=1, step_size_down=1),
    dict(base_learning_rate=1e-4, max_learning_rate=1e-2, step_size_up=61, step_size_down=29),
]


@pytest.mark.parametrize("kwargs", CASES, ids=range(len(CASES)))
def test_matches_formula_for_three_cycles(kwargs):
    down = kwargs.get("step_size_down") or kwargs["step_size_up"]
    steps = np.arange(3 * (kwargs["step_size_up"] + down) + 1)
    assert_matches(series(CyclicalLearningRate(**kwargs), steps), reference(**kwargs, t=steps))


def load_golden():
    with open(GOLDEN) as f:
        return json.load(f)["CyclicalLearningRate"]


@pytest.mark.parametrize("case", load_golden(), ids=lambda case: json.dumps(case["kwargs"]))
def test_equals_pytorch_cyclic_lr_at_every_step(case):
    # lr[t] is the rate of PyTorch's (t + 1)-th optimizer step, which Keras takes with iterations == t.
    steps = np.arange(len(case["lr"]))
    assert_matches(series(CyclicalLearningRate(**case["kwargs"]), steps), case["lr"])


def test_golden_file_covers_every_mode_with_and_without_step_size_down():
    covered = {(case["kwargs"].get("mode", "triangular"), "step_size_down" in case["kwargs"])
               for case in load_golden()}
    assert {mode for mode, _ in covered} == {"triangular", "triangular2", "exp_range"}
    assert {given for _, given in covered} == {True, False}


def test_exp_range_decays_every_step_not_every_cycle():
    schedule = CyclicalLearningRate(0.0, 1.0, step_size_up=10, mode="exp_range", gamma=0.9)
    assert series(schedule, [10, 30]) == pytest.approx([0.9**10, 0.9**30], rel=1e-6)


def test_int_variable_and_jit_calls_agree():
    kwargs = dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=3, step_size_down=7,
                  mode="triangular2")
    steps = [0, 2, 3, 4, 9, 10, 11, 25, 10**7]
    assert_call_contract(CyclicalLearningRate(**kwargs), steps, reference(**kwargs, t=steps))


def test_far_past_many_cycles_stays_on_the_triangle():
    schedule = CyclicalLearningRate(0.0, 1.0, step_size_up=3, step_size_down=4)
    # 10**7 = 1428571 * 7 + 3: three steps into a cycle, at its peak.
    assert series(schedule, [10**7 - 1, 10**7, 10**7 + 1]) == pytest.approx([2 / 3, 1.0, 0.75], rel=1e-6)


cyclic = st.fixed_dictionaries({
    "base_learning_rate": st.floats(0.0, 1.0),
    "extra": st.floats(0.0, 1.0),
    "step_size_up": st.integers(1, 10**5),
    "step_size_down": st.one_of(st.none(), st.integers(1, 10**5)),
    "mode": st.sampled_from(["triangular", "triangular2", "exp_range"]),
    "gamma": st.floats(0.5, 1.0),
})


def build(params):
    params = dict(params)
    params["max_learning_rate"] = params["base_learning_rate"] + params.pop("extra")
    return CyclicalLearningRate(**params), params


@PROPERTY
@given(params=cyclic, t=st.integers(0, 10**7))
def test_stays_between_base_and_max(params, t):
    schedule, params = build(params)
    assert_within(series(schedule, [t])[0], params["base_learning_rate"], params["max_learning_rate"])


@PROPERTY
@given(params=cyclic, cycle=st.integers(0, 50))
def test_is_continuous_at_the_peak_and_at_the_cycle_boundary(params, cycle):
    schedule, params = build(params)
    up = params["step_size_up"]
    down = params["step_size_down"] or up
    start = cycle * (up + down)
    height = params["max_learning_rate"] - params["base_learning_rate"]
    # The triangle's slope, plus in exp_range the per-step shrink of the height by gamma.
    one_step = height / min(up, down) + (height * (1 - params["gamma"]) if params["mode"] == "exp_range" else 0.0)
    for boundary in (start, start + up):
        around = sorted({max(boundary + d, 0) for d in (-2, -1, 0, 1)})
        assert_step_changes_at_most(series(schedule, around), one_step, params["max_learning_rate"])


def test_docstring_example_runs():
    assert_docstring_examples_pass(cyclical_learning_rate)


def test_fit_steps_use_the_schedule():
    assert_fit_follows(CyclicalLearningRate(0.01, 0.05, 2, 3, mode="triangular2"), steps=12)


def test_survives_model_save_and_load(tmp_path):
    assert_save_load(CyclicalLearningRate(0.01, 0.05, 2, mode="exp_range", gamma=0.9), tmp_path)
