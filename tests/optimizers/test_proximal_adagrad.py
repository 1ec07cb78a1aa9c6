"""ProximalAdagrad against a float64 transcription of TensorFlow's ApplyProximalAdagrad (TFA's update)."""

import importlib

import numpy as np
import pytest

from tfopt.optimizers.proximal_adagrad import ProximalAdagrad

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


def reference_proximal_adagrad(initial, gradients, lr, initial_accumulator_value=0.1, l1=0.0, l2=0.0):
    w = [np.asarray(x, np.float64).copy() for x in initial]
    a = [np.full_like(x, initial_accumulator_value) for x in w]
    out = []
    for step in gradients:
        for i, g in enumerate(step):
            a[i] = a[i] + g * g
            rate = lr / np.sqrt(a[i])
            p = w[i] - rate * g
            if l1 > 0:
                p = np.sign(p) * np.maximum(np.abs(p) - rate * l1, 0)
            w[i] = p / (1 + rate * l2)
        out.append([x.copy() for x in w])
    return out


@agnostic
@pytest.mark.parametrize("hyperparameters", [{}, {"l1": 0.05}, {"l2": 0.5}, {"l1": 0.02, "l2": 0.1,
                                                                          "initial_accumulator_value": 1.0}])
def test_matches_tfa_transcription(hyperparameters):
    initial, gradients, _ = reference_problem(steps=40)
    trajectory = run_reference_problem(ProximalAdagrad(learning_rate=0.1, **hyperparameters), initial, gradients)
    assert_matches_reference(trajectory, reference_proximal_adagrad(initial, gradients, 0.1, **hyperparameters))


@agnostic
def test_l1_gives_exact_zeros():
    initial, gradients, _ = reference_problem(steps=40, scale=0.01)
    trajectory = run_reference_problem(ProximalAdagrad(learning_rate=0.5, l1=1.0), initial, gradients)
    assert np.sum(trajectory[-1][0] == 0.0) > 0


@agnostic
@pytest.mark.parametrize(("argument", "value", "error"), [("initial_accumulator_value", -0.1, ValueError),
                                                          ("l1", -1.0, ValueError), ("l2", "0", TypeError)])
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(ProximalAdagrad, argument, value, error)


@agnostic
def test_config_round_trip():
    check_config_round_trip(ProximalAdagrad(learning_rate=0.05, initial_accumulator_value=0.5, l1=0.1, l2=0.2))


@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.proximal_adagrad"))


def test_save_load_continues(tmp_path):
    check_save_load_continues(lambda: ProximalAdagrad(learning_rate=0.05, l1=1e-3), tmp_path, epochs=1)
