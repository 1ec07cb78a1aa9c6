"""LARS against a float64 transcription of the paper's Algorithm 1, against optax, in `fit`, and the base options."""

import importlib

import keras
import numpy as np
import optax
import pytest

from tfopt.optimizers.lars import LARS

from .conformance import (
    BASE_OPTION_CHECKS,
    REFERENCE_SHAPES,
    assert_matches_reference,
    check_config_round_trip,
    check_docstring_examples,
    check_learning_rate_schedule,
    check_rejects,
    check_save_load_continues,
    check_sparse_gradients,
    fit_digits,
    optax_trajectory,
    reference_problem,
    run_reference_problem,
)

agnostic = pytest.mark.backend_agnostic
DEFAULT_EXCLUDED = [len(shape) <= 1 for shape in REFERENCE_SHAPES.values()]  # kernel adapted; bias, scale not


def make(**kwargs):
    # A trust coefficient of 0.1 makes each step about lr * 10% of the weights' norm, visible in a few steps.
    return LARS(**{"learning_rate": 0.1, "trust_coefficient": 0.1, **kwargs})


def reference_lars(initial, gradients, lr, momentum=0.9, weight_decay=0.0, trust_coefficient=0.001, epsilon=0.0,
                   nesterov=False, excluded=DEFAULT_EXCLUDED, decayed=None):
    """You et al. 2017, Algorithm 1, in float64: local lr = eta ||w|| / (||g|| + lambda ||w|| + eps) (1 where
    ||w|| or the denominator is 0), v = mu v + lr * local_lr * (g + lambda w), w = w - v; excluded variables take
    v = mu v + lr g. `decayed[i]` False drops lambda for variable i (Keras's `exclude_from_weight_decay`)."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    v = [np.zeros_like(x) for x in w]
    decayed = decayed or [True] * len(w)
    trajectory = []
    for step in gradients:
        for i, g in enumerate(step):
            g = np.asarray(g, np.float64)
            if excluded[i]:
                u = g
            else:
                lam = weight_decay if decayed[i] else 0.0
                w_norm, g_norm = np.linalg.norm(w[i]), np.linalg.norm(g)
                denominator = g_norm + lam * w_norm + epsilon
                ratio = trust_coefficient * w_norm / denominator if w_norm > 0 and denominator > 0 else 1.0
                u = ratio * (g + lam * w[i])
            v[i] = momentum * v[i] + lr * u
            w[i] = w[i] - (momentum * v[i] + lr * u if nesterov else v[i])
        trajectory.append([x.copy() for x in w])
    return trajectory


# Invalid arguments.


@agnostic
@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("learning_rate", -1.0, ValueError),
        ("momentum", 1.0, ValueError),
        ("momentum", -0.1, ValueError),
        ("trust_coefficient", 0.0, ValueError),
        ("epsilon", -1.0, ValueError),
        ("weight_decay", -5e-4, ValueError),
        ("nesterov", 1, TypeError),
        ("exclude_from_layer_adaptation", "bias", TypeError),
        ("exclude_from_layer_adaptation", ["(unclosed"], ValueError),
    ],
)
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(LARS, argument, value, error)


# Configuration.


@agnostic
def test_config_round_trip():
    check_config_round_trip(LARS(learning_rate=2.0, momentum=0.8, weight_decay=5e-4, trust_coefficient=0.01,
                                 epsilon=1e-9, nesterov=True, exclude_from_layer_adaptation=["bias", "gamma"]))


@keras.saving.register_keras_serializable(package="tfopt_tests")
def exclude_biases(variable):
    return "bias" in variable.name


@agnostic
def test_config_round_trip_with_registered_callable():
    optimizer = LARS(exclude_from_layer_adaptation=exclude_biases)
    check_config_round_trip(optimizer)
    assert keras.optimizers.deserialize(keras.optimizers.serialize(optimizer)).exclude_from_layer_adaptation is (
        exclude_biases)



@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.lars"))


# Update rule.


@agnostic
def test_weight_decay_is_applied_once_inside_the_trust_ratio():
    # ||w|| = 5, ||g|| = 1, lambda = 0.1: ratio = 0.001 * 5 / (1 + 0.5); u = ratio * (g + 0.1 w) = [0.003, 0.004].
    # Keras's own decoupled decay would also shrink w by lr * lambda = 10%, so w would be near [2.7, 3.6].
    variable = keras.Variable(np.array([[3.0, 4.0]], "float32"))
    optimizer = LARS(learning_rate=1.0, momentum=0.0, weight_decay=0.1)
    optimizer.apply([np.array([[0.6, 0.8]], "float32")], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [[2.997, 3.996]], rtol=1e-6)


@agnostic
def test_one_dimensional_variables_take_plain_momentum_steps_by_default():
    bias = keras.Variable(np.array([3.0, 4.0], "float32"), name="bias")
    optimizer = LARS(learning_rate=0.5, momentum=0.0, weight_decay=0.1)
    optimizer.apply([np.array([0.6, 0.8], "float32")], [bias])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bias), [2.7, 3.6], rtol=1e-6)


@agnostic
@pytest.mark.parametrize(
    ("rule", "excluded"),
    [
        (None, DEFAULT_EXCLUDED),
        ([], [False, False, False]),
        (["bias"], [False, True, False]),
        (["kernel", "scale"], [True, False, True]),
        (lambda variable: variable.name == "scale", [False, False, True]),
    ],
    ids=["default", "none", "pattern", "patterns", "callable"],
)
def test_exclude_from_layer_adaptation_selects_variables(rule, excluded):
    initial, gradients, _ = reference_problem(steps=30, scale=0.2)
    optimizer = LARS(learning_rate=0.5, weight_decay=0.01, trust_coefficient=0.02, exclude_from_layer_adaptation=rule)
    trajectory = run_reference_problem(optimizer, initial, gradients)
    expected = reference_lars(initial, gradients, 0.5, weight_decay=0.01, trust_coefficient=0.02, excluded=excluded)
    assert_matches_reference(trajectory, expected)


@agnostic
@pytest.mark.parametrize(
    "hyperparameters",
    [
        {"learning_rate": 0.1},
        {"learning_rate": 0.5, "momentum": 0.5, "trust_coefficient": 0.01, "epsilon": 1e-3},
        {"learning_rate": 0.5, "weight_decay": 0.05, "trust_coefficient": 0.01},
        {"learning_rate": 0.5, "weight_decay": 0.05, "trust_coefficient": 0.01, "nesterov": True},
    ],
)
def test_matches_float64_reference_over_many_steps(hyperparameters):
    initial, gradients, _ = reference_problem(scale=0.2)
    trajectory = run_reference_problem(LARS(**hyperparameters), initial, gradients)
    arguments = {k: v for k, v in hyperparameters.items() if k != "learning_rate"}
    assert_matches_reference(trajectory, reference_lars(initial, gradients, hyperparameters["learning_rate"],
                                                        **arguments))


@agnostic
def test_exclude_from_weight_decay_keeps_the_trust_ratio():
    initial, gradients, _ = reference_problem(scale=0.2)
    optimizer = LARS(learning_rate=0.5, weight_decay=0.05, trust_coefficient=0.01, exclude_from_layer_adaptation=[])
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    trajectory = run_reference_problem(optimizer, initial, gradients)
    expected = reference_lars(initial, gradients, 0.5, weight_decay=0.05, trust_coefficient=0.01,
                              excluded=[False, False, False], decayed=[True, False, True])
    assert_matches_reference(trajectory, expected)


@agnostic
@pytest.mark.parametrize("nesterov", [False, True])
def test_matches_optax_without_weight_decay(nesterov):
    # optax divides by ||g + lambda w|| rather than the paper's ||g|| + lambda ||w||: equal when lambda = 0.
    initial, gradients, _ = reference_problem(scale=0.2)
    trajectory = run_reference_problem(LARS(0.5, trust_coefficient=0.01, nesterov=nesterov), initial, gradients)
    mask = [not excluded for excluded in DEFAULT_EXCLUDED]
    transformation = optax.lars(0.5, trust_coefficient=0.01, nesterov=nesterov, weight_decay_mask=mask,
                                trust_ratio_mask=mask)
    assert_matches_reference(trajectory, optax_trajectory(transformation, initial, gradients))


# Keras base options, learning rates, saving.


@agnostic
@pytest.mark.parametrize("check", BASE_OPTION_CHECKS, ids=lambda check: check.__name__)
def test_honours_base_option(check):
    check(make)


@agnostic
def test_takes_learning_rate_schedule():
    check_learning_rate_schedule(make)


@agnostic
def test_save_load_continues_training(tmp_path):
    check_save_load_continues(make, tmp_path)


@agnostic
def test_trains_digits_classifier():
    first_loss, last_loss, accuracy = fit_digits(LARS(learning_rate=1.0, trust_coefficient=0.02))
    assert last_loss < 0.3 * first_loss
    assert accuracy > 0.85


# TensorFlow only (tf.distribute: tests/optimizers/test_mirrored_strategy.py, one process for all).


def test_sparse_embedding_gradients():
    check_sparse_gradients(make)

