"""ConditionalGradient against a float64 transcription of TensorFlow Addons' update (Frobenius and nuclear)."""

import importlib

import numpy as np
import pytest

from tfopt.optimizers.conditional_gradient import ConditionalGradient

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


def reference_conditional_gradient(initial, gradients, lr, lambda_=0.01, epsilon=1e-7, ord="fro"):
    """TFA's `w <- lr w - (1 - lr) lambda_ s`, s = g / (||g||_F + epsilon) or the top singular pair u_1 v_1^T."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    out = []
    for step in gradients:
        for i, g in enumerate(step):
            g = np.asarray(g, np.float64)
            if ord == "fro":
                s = g / (np.sqrt(np.sum(g * g)) + epsilon)
            else:
                matrix = g.reshape(1, -1) if g.ndim < 2 else g.reshape(-1, g.shape[-1])
                u, _, vt = np.linalg.svd(matrix, full_matrices=False)
                s = np.outer(u[:, 0], vt[0]).reshape(g.shape)
            w[i] = lr * w[i] - (1 - lr) * lambda_ * s
        out.append([x.copy() for x in w])
    return out


@agnostic
@pytest.mark.parametrize("hyperparameters", [{"ord": "fro"}, {"ord": "fro", "lambda_": 0.5, "epsilon": 1e-3},
                                             {"ord": "nuclear", "lambda_": 0.2}])
def test_matches_tfa_transcription(hyperparameters):
    initial, gradients, _ = reference_problem(steps=40)
    trajectory = run_reference_problem(ConditionalGradient(0.95, **hyperparameters), initial, gradients)
    assert_matches_reference(trajectory, reference_conditional_gradient(initial, gradients, 0.95,
                                                                        **hyperparameters), rtol=1e-4)


@agnostic
@pytest.mark.parametrize(("argument", "value", "error"), [("learning_rate", 1.5, ValueError),
                                                          ("lambda_", -1.0, ValueError),
                                                          ("epsilon", "x", TypeError), ("ord", "l1", ValueError)])
def test_rejects_invalid_argument(argument, value, error):
    arguments = {"learning_rate": 0.9}
    arguments.pop(argument, None)
    check_rejects(ConditionalGradient, argument, value, error, **arguments)


@agnostic
def test_config_round_trip():
    check_config_round_trip(ConditionalGradient(0.9, lambda_=0.1, epsilon=1e-5, ord="nuclear"))


@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.conditional_gradient"))


def test_save_load_continues(tmp_path):
    check_save_load_continues(lambda: ConditionalGradient(0.99, lambda_=1.0), tmp_path, epochs=1)
