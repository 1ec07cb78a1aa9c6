"""NovoGrad against a float64 transcription of TensorFlow Addons' update, its options, config and save/load."""

import importlib

import numpy as np
import pytest

from tfopt.optimizers.novograd import NovoGrad

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


def reference_novograd(initial, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
                       grad_averaging=False):
    """`tfa.optimizers.NovoGrad._resource_apply_dense` in float64, with Keras's momentum op
    (`m <- b1 m - lr g; w <- w + m`)."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    v = [0.0 for _ in w]
    out = []
    for t, step in enumerate(gradients):
        for i, g in enumerate(step):
            g = np.asarray(g, np.float64)
            g2 = np.sum(g * g)
            v[i] = g2 if t == 0 else beta_2 * v[i] + (1 - beta_2) * g2
            g = g / (np.sqrt(v[i]) + epsilon)
            if weight_decay > 0:
                g = g + weight_decay * w[i]
            if grad_averaging and t != 0:
                g = g * (1 - beta_1)
            m[i] = beta_1 * m[i] - lr * g
            w[i] = w[i] + m[i]
        out.append([x.copy() for x in w])
    return out


@agnostic
@pytest.mark.parametrize("hyperparameters", [{}, {"weight_decay": 0.01}, {"grad_averaging": True, "beta_1": 0.8},
                                             {"beta_2": 0.9, "epsilon": 1e-4, "weight_decay": 0.1}])
def test_matches_tfa_transcription(hyperparameters):
    initial, gradients, _ = reference_problem(steps=40)
    trajectory = run_reference_problem(NovoGrad(learning_rate=0.01, **hyperparameters), initial, gradients)
    assert_matches_reference(trajectory, reference_novograd(initial, gradients, 0.01, **hyperparameters))


@agnostic
@pytest.mark.parametrize(("argument", "value", "error"), [("beta_1", 1.0, ValueError), ("beta_2", -0.5, ValueError),
                                                          ("epsilon", -1.0, ValueError),
                                                          ("weight_decay", -0.1, ValueError),
                                                          ("grad_averaging", 1, TypeError)])
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(NovoGrad, argument, value, error)


@agnostic
def test_config_round_trip():
    check_config_round_trip(NovoGrad(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-5, weight_decay=0.01,
                                     grad_averaging=True))


@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.novograd"))


def test_save_load_continues(tmp_path):
    check_save_load_continues(lambda: NovoGrad(learning_rate=0.01, weight_decay=1e-3), tmp_path, epochs=1)
