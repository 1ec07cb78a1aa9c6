"""pruning_from_hp: the arguments for each structure, schedule and scope; a fitted model reaches the sampled
sparsity; each bad input's message."""

import keras
import keras_tuner
import numpy as np
import pytest

from tfopt.compression import ConstantSparsity, PolynomialDecay, prune_low_magnitude, sparsity_report
from tfopt.tuning import pruning_from_hp

pytestmark = pytest.mark.backend_agnostic


def pick(total_steps=100, **fixed):
    hp = keras_tuner.HyperParameters()
    for key, value in fixed.items():
        hp.Fixed(key, value)
    return hp, pruning_from_hp(hp, total_steps, structures=(None, "2:4", "block"))


def test_unstructured_polynomial_decay_ramps_to_the_sampled_sparsity():
    hp, arguments = pick(**{"pruning/sparsity": 0.7, "pruning/scope": "global", "pruning/end_fraction": 0.5})
    schedule = arguments.pop("pruning_schedule")
    assert arguments == {"block_size": (1, 1), "sparsity_m_by_n": None, "pruning_scope": "global"}
    assert type(schedule) is PolynomialDecay
    assert (schedule.initial_sparsity, schedule.final_sparsity) == (0.0, 0.7)
    assert (schedule.begin_step, schedule.end_step, schedule.frequency) == (0, 50, 5)
    assert hp.values["pruning/structure"] == "unstructured"


def test_n_by_m_fixes_the_sparsity_and_the_scope():
    hp, arguments = pick(**{"pruning/structure": "2:4", "pruning/schedule": "constant"})
    assert arguments["sparsity_m_by_n"] == (2, 4) and arguments["pruning_scope"] == "layer"
    assert type(arguments["pruning_schedule"]) is ConstantSparsity
    assert arguments["pruning_schedule"].target_sparsity == 0.5
    active = {item.name for item in hp.space if hp.is_active(item)}
    assert active == {"pruning/structure", "pruning/schedule"}


def test_block_structure_uses_the_block_size():
    _, arguments = pick(**{"pruning/structure": "block"})
    assert arguments["block_size"] == (1, 4) and arguments["sparsity_m_by_n"] is None


def test_optional_pruning_off_gives_none():
    hp = keras_tuner.HyperParameters()
    assert pruning_from_hp(hp, 100, optional=True) is None
    assert hp.values == {"pruning": False}
    hp.values["pruning"] = True
    assert pruning_from_hp(hp, 100, optional=True)["pruning_schedule"].final_sparsity == 0.5


def test_a_fitted_model_reaches_the_sampled_sparsity():
    _, arguments = pick(total_steps=8, **{"pruning/sparsity": 0.8, "pruning/end_fraction": 0.5,
                                          "pruning/scope": "layer"})
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(4)])
    model = prune_low_magnitude(base, **arguments)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    model.fit(x, x[:, :4], batch_size=4, epochs=1, verbose=0)
    for row in sparsity_report(model)["layers"]:
        assert row["sparsity"] == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"sparsity": (0.9, 0.5)}, ValueError,
         "Argument `sparsity` must be a pair (low, high) with 0 < low <= high < 1. Received: sparsity=(0.9, 0.5)"),
        ({"structures": ("2:4", "4:2")}, ValueError,
         "Argument `structures` must hold None, 'unstructured', 'block' or 'N:M' with 1 <= N < M (e.g. '2:4'). "
         "Received: structures[1]='4:2'"),
        ({"structures": ()}, ValueError, "Argument `structures` must name at least one choice"),
        ({"schedules": ("cubic",)}, ValueError,
         "Argument `schedules` must hold names among 'polynomial_decay', 'constant'. Received: schedules[0]='cubic'"),
        ({"scopes": ("model",)}, ValueError, "Argument `scopes` must hold names among 'layer', 'global'"),
        ({"total_steps": 0}, ValueError, "Argument `total_steps` must be an integer >= 1. Received: total_steps=0"),
        ({"optional": 1}, TypeError, "Argument `optional` must be a bool"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    arguments = {"total_steps": 100, **kwargs}
    with pytest.raises(error) as raised:
        pruning_from_hp(keras_tuner.HyperParameters(), **arguments)
    assert message in str(raised.value)
