"""schedule_from_hp: each choice equals its schedule built by hand from the sampled values, over many steps;
each bad input's message."""

import keras
import keras_tuner
import numpy as np
import pytest

from tfopt import schedules
from tfopt.tuning import schedule_from_hp
from tfopt.tuning.schedule_from_hp import SCHEDULES

pytestmark = pytest.mark.backend_agnostic

T = 200
STEPS = np.arange(0, T + 20, 7)


def values(schedule):
    return np.array([float(keras.ops.convert_to_numpy(schedule(int(s)))) for s in STEPS])


def pick(name, **fixed):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("schedule", name)
    for key, value in fixed.items():
        hp.Fixed(f"schedule/{name}/{key}", value)
    return hp, schedule_from_hp(hp, T, 0.02, choices=list(SCHEDULES))


@pytest.mark.parametrize(
    "name, fixed, expected",
    [
        ("one_cycle", {"pct_start": 0.25}, schedules.OneCycle(0.02, T, pct_start=0.25)),
        ("warmup_stable_decay", {"warmup_fraction": 0.1, "decay_fraction": 0.3, "decay_shape": "cosine"},
         schedules.WarmupStableDecay(0.02, T, 20, 60, decay_shape="cosine")),
        ("cosine", {"warmup_fraction": 0.1},
         keras.optimizers.schedules.CosineDecay(0.0, T - 20, warmup_target=0.02, warmup_steps=20)),
        ("linear_decay", {"end_fraction": 0.05}, schedules.LinearDecay(0.02, T, end_learning_rate=0.001)),
        ("step_decay", {"drops": 3, "gamma": 0.5}, schedules.StepDecay(0.02, 50, gamma=0.5)),
        ("cyclical", {"cycles": 2, "div_factor": 10.0, "mode": "triangular2"},
         schedules.CyclicalLearningRate(0.002, 0.02, 50, mode="triangular2")),
        ("inverse_sqrt", {"warmup_fraction": 0.05}, schedules.InverseSqrt(0.02, 10)),
    ],
)
def test_each_choice_equals_its_schedule_over_the_run(name, fixed, expected):
    hp, schedule = pick(name, **fixed)
    assert type(schedule) is type(expected)
    np.testing.assert_allclose(values(schedule), values(expected), rtol=1e-6, atol=1e-9)
    active = {item.name for item in hp.space if hp.is_active(item)}
    assert active == {"schedule", *(f"schedule/{name}/{key}" for key in fixed)}


def test_constant_is_the_peak_rate_itself():
    _, rate = pick("constant")
    assert rate == 0.02


def test_the_first_trial_is_the_first_choice():
    hp = keras_tuner.HyperParameters()
    assert schedule_from_hp(hp, T, 0.01) == 0.01
    assert hp.values == {"schedule": "constant"}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"choices": ["one_cycle", "cosine_annealing"]}, ValueError,
         "Argument `choices` must hold names among 'constant', 'one_cycle', 'warmup_stable_decay', 'cosine', "
         "'linear_decay', 'step_decay', 'cyclical', 'inverse_sqrt'. Received: choices[1]='cosine_annealing'"),
        ({"choices": ()}, ValueError, "Argument `choices` must name at least one choice: an empty search"),
        ({"total_steps": 0}, ValueError, "Argument `total_steps` must be an integer >= 1. Received: total_steps=0"),
        ({"learning_rate": 0.0}, ValueError, "Argument `learning_rate` must be a finite number > 0"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    arguments = {"total_steps": 100, "learning_rate": 0.01, **kwargs}
    with pytest.raises(error) as raised:
        schedule_from_hp(keras_tuner.HyperParameters(), **arguments)
    assert message in str(raised.value)
