"""TensorFlow Addons' cyclical schedules against a float64 transcription of TFA's formula, over four cycles, in
both scale modes; equal to `CyclicalLearningRate`'s modes where TFA's variants are them; config and saving."""

import importlib

import keras
import numpy as np
import pytest

from tfopt.schedules import CyclicalLearningRate
from tfopt.schedules.scaled_cyclical_learning_rate import (
    ExponentialCyclicalLearningRate,
    ScaledCyclicalLearningRate,
    Triangular2CyclicalLearningRate,
    TriangularCyclicalLearningRate,
)

from .checks import (
    assert_call_contract,
    assert_config_round_trip,
    assert_docstring_examples_pass,
    assert_matches,
    assert_save_load,
    series,
)

pytestmark = pytest.mark.backend_agnostic
STEPS = np.arange(0, 41)


@keras.saving.register_keras_serializable(package="tfopt_tests")
def inverse_square_root(x):
    return 1.0 / keras.ops.sqrt(x)


def tfa_reference(initial, maximal, step_size, scale_fn, scale_mode, steps=STEPS):
    """`tfa.optimizers.CyclicalLearningRate.__call__` in float64, line for line."""
    out = []
    for step in steps:
        cycle = np.floor(1 + step / (2 * step_size))
        x = np.abs(step / step_size - 2 * cycle + 1)
        mode_step = cycle if scale_mode == "cycle" else step
        out.append(initial + (maximal - initial) * max(0.0, 1 - x) * scale_fn(mode_step))
    return np.array(out)


CASES = [
    (lambda: TriangularCyclicalLearningRate(1e-4, 1e-2, 5), lambda x: 1.0, "cycle"),
    (lambda: Triangular2CyclicalLearningRate(1e-4, 1e-2, 5), lambda x: 1 / 2.0 ** (x - 1), "cycle"),
    (lambda: Triangular2CyclicalLearningRate(1e-4, 1e-2, 5, scale_mode="iterations"), lambda x: 1 / 2.0 ** (x - 1),
     "iterations"),
    (lambda: ExponentialCyclicalLearningRate(1e-4, 1e-2, 5, gamma=0.96), lambda x: 0.96**x, "iterations"),
    (lambda: ExponentialCyclicalLearningRate(1e-4, 1e-2, 5, scale_mode="cycle", gamma=0.5), lambda x: 0.5**x,
     "cycle"),
    (lambda: ScaledCyclicalLearningRate(0.1, 0.5, 3, scale_fn=inverse_square_root), lambda x: 1 / np.sqrt(x),
     "cycle"),
]


@pytest.mark.parametrize(("make", "scale_fn", "scale_mode"), CASES)
def test_matches_tfa_formula_over_four_cycles(make, scale_fn, scale_mode):
    schedule = make()
    expected = tfa_reference(schedule.initial_learning_rate, schedule.maximal_learning_rate, schedule.step_size,
                             scale_fn, scale_mode)
    assert_matches(series(schedule, STEPS), expected)


def test_call_contract_int_variable_and_jit():
    schedule = Triangular2CyclicalLearningRate(1e-3, 1e-2, 4)
    assert_call_contract(schedule, [0, 3, 9], tfa_reference(1e-3, 1e-2, 4, lambda x: 1 / 2.0 ** (x - 1), "cycle",
                                                           steps=[0, 3, 9]))


def test_variants_are_cyclical_learning_rate_modes():
    pairs = [
        (TriangularCyclicalLearningRate(0.1, 0.4, 3), CyclicalLearningRate(0.1, 0.4, 3)),
        (Triangular2CyclicalLearningRate(0.1, 0.4, 3), CyclicalLearningRate(0.1, 0.4, 3, mode="triangular2")),
        (ExponentialCyclicalLearningRate(0.1, 0.4, 3, gamma=0.9),
         CyclicalLearningRate(0.1, 0.4, 3, mode="exp_range", gamma=0.9)),
    ]
    for tfa_form, torch_form in pairs:
        np.testing.assert_allclose(series(tfa_form, STEPS), series(torch_form, STEPS), rtol=1e-6)
        assert isinstance(tfa_form, CyclicalLearningRate)


@pytest.mark.parametrize(("argument", "value", "error"), [
    ("initial_learning_rate", "0.1", TypeError), ("maximal_learning_rate", 0.01, ValueError),
    ("step_size", 0, ValueError), ("scale_mode", "epoch", ValueError), ("scale_fn", 1.0, TypeError)])
def test_rejects_invalid_argument(argument, value, error):
    arguments = {"initial_learning_rate": 0.1, "maximal_learning_rate": 0.5, "step_size": 2,
                 "scale_fn": inverse_square_root, argument: value}
    with pytest.raises(error, match=f"Argument `{argument}` must be.*Received: {argument}="):
        ScaledCyclicalLearningRate(**arguments)


def test_exponential_rejects_gamma_out_of_range():
    with pytest.raises(ValueError, match="Argument `gamma` must be"):
        ExponentialCyclicalLearningRate(0.1, 0.5, 2, gamma=1.5)


@pytest.mark.parametrize("make", [case[0] for case in CASES])
def test_config_round_trip(make):
    assert_config_round_trip(make(), STEPS)


def test_docstring_examples():
    assert_docstring_examples_pass(importlib.import_module("tfopt.schedules.scaled_cyclical_learning_rate"))


def test_save_load_with_registered_scale_fn(tmp_path):
    assert_save_load(ScaledCyclicalLearningRate(0.01, 0.05, 2, scale_fn=inverse_square_root), tmp_path)


def test_save_load_variant(tmp_path):
    assert_save_load(ExponentialCyclicalLearningRate(0.01, 0.05, 2, gamma=0.9), tmp_path)
