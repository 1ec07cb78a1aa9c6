"""COCOB against a float64 transcription of TensorFlow Addons' update, config and save/load."""

import importlib

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.optimizers.cocob import COCOB

from .conformance import (
    assert_matches_reference,
    check_config_round_trip,
    check_docstring_examples,
    check_rejects,
    check_save_load_continues,
    reference_problem,
    run_reference_problem,
)

agnostic = pytest.mark.backend_agnostic


def reference_cocob(initial, gradients, alpha=100.0):
    """`tfa.optimizers.COCOB._resource_apply_dense` in float64."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    slots = [{k: np.zeros_like(x) for k in ("L", "G", "A", "x", "r")} for x in w]
    out = []
    for step in gradients:
        for i, g in enumerate(step):
            s = slots[i]
            s["L"] = np.maximum(s["L"], np.abs(g))
            s["G"] = s["G"] + g
            s["A"] = s["A"] + np.abs(g)
            s["r"] = np.maximum(s["r"] - g * s["x"], 0)
            new = -s["G"] / (s["L"] * np.maximum(s["A"] + s["L"], alpha * s["L"])) * (s["r"] + s["L"])
            w[i] = w[i] - s["x"] + new
            s["x"] = new
        out.append([x.copy() for x in w])
    return out


@agnostic
@pytest.mark.parametrize("alpha", [100.0, 5.0])
def test_matches_tfa_transcription(alpha):
    initial, gradients, _ = reference_problem(steps=40)
    trajectory = run_reference_problem(COCOB(alpha=alpha), initial, gradients)
    assert_matches_reference(trajectory, reference_cocob(initial, gradients, alpha))


@agnostic
def test_elements_without_gradients_stay():
    variable = keras.Variable(np.array([1.0, 2.0], "float32"))
    optimizer = COCOB()
    for _ in range(3):
        optimizer.apply([np.array([0.0, 0.5], "float32")], [variable])
    value = ops.convert_to_numpy(variable)
    assert value[0] == 1.0 and np.isfinite(value).all() and value[1] != 2.0


@agnostic
@pytest.mark.parametrize(("value", "error"), [(0.5, ValueError), ("100", TypeError)])
def test_rejects_invalid_alpha(value, error):
    check_rejects(COCOB, "alpha", value, error)


@agnostic
def test_config_round_trip():
    check_config_round_trip(COCOB(alpha=20.0, clipnorm=1.0))


@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.cocob"))


def test_save_load_continues(tmp_path):
    check_save_load_continues(lambda: COCOB(), tmp_path, epochs=1)
