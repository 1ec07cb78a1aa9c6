"""Yogi against a float64 transcription of the paper's algorithm, against optax, in `fit`, and the base options."""

import importlib

import keras
import numpy as np
import optax
import pytest

from tfopt.optimizers.yogi import Yogi

from .conformance import (
    BASE_OPTION_CHECKS,
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


def make(**kwargs):
    return Yogi(**{"learning_rate": 0.01, **kwargs})


def reference_yogi(initial, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-3, initial_accumulator_value=1e-6,
                   weight_decay=0.0):
    """Zaheer et al. 2018, Algorithm 2 (Yogi), in float64, with Adam's bias correction (epsilon after it) and
    decoupled weight decay w <- w (1 - lr * weight_decay)."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    v = [np.full_like(x, initial_accumulator_value) for x in w]
    trajectory = []
    for t, step in enumerate(gradients, start=1):
        for i, g in enumerate(step):
            g = np.asarray(g, np.float64)
            w[i] = w[i] * (1 - lr * weight_decay)
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = v[i] - (1 - beta_2) * np.sign(v[i] - g * g) * g * g
            w[i] = w[i] - lr * (m[i] / (1 - beta_1**t)) / (np.sqrt(v[i] / (1 - beta_2**t)) + epsilon)
        trajectory.append([x.copy() for x in w])
    return trajectory


# Invalid arguments.


@agnostic
@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("learning_rate", -0.01, ValueError),
        ("beta_1", 1.2, ValueError),
        ("beta_2", 1.0, ValueError),
        ("epsilon", -1.0, ValueError),
        ("initial_accumulator_value", -1e-6, ValueError),
        ("initial_accumulator_value", "1e-6", TypeError),
        ("weight_decay", float("nan"), ValueError),
    ],
)
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(Yogi, argument, value, error)


# Configuration.


@agnostic
def test_config_round_trip():
    check_config_round_trip(Yogi(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-4,
                                 initial_accumulator_value=0.1, weight_decay=0.01, clipvalue=1.0))



@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.yogi"))


# Update rule.


@agnostic
def test_second_moment_moves_additively():
    # v0 = 1e-6 < g^2 = 4: v grows by (1 - b2) g^2 = 0.004 per step, linearly, unlike Adam's geometric approach;
    # then with g = 0 it stays (sign(v - 0) g^2 = 0), where Adam's v would decay by b2 each step.
    variable = keras.Variable(np.array([0.0], "float32"))
    optimizer = Yogi(learning_rate=0.0)
    for _ in range(3):
        optimizer.apply([np.array([2.0], "float32")], [variable])
    velocity = optimizer._velocities[0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(velocity), [1e-6 + 3 * 0.004], rtol=1e-6)
    for _ in range(3):
        optimizer.apply([np.array([0.0], "float32")], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(velocity), [1e-6 + 3 * 0.004], rtol=1e-6)


@agnostic
@pytest.mark.parametrize(
    "hyperparameters",
    [
        {"learning_rate": 0.01},
        {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6, "initial_accumulator_value": 0.5},
        {"learning_rate": 0.01, "beta_1": 0.0, "beta_2": 0.9},
        {"learning_rate": 0.01, "weight_decay": 0.1},
    ],
)
def test_matches_float64_reference_over_many_steps(hyperparameters):
    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(Yogi(**hyperparameters), initial, gradients)
    arguments = {k: v for k, v in hyperparameters.items() if k != "learning_rate"}
    assert_matches_reference(trajectory, reference_yogi(initial, gradients, hyperparameters["learning_rate"],
                                                        **arguments))


@agnostic
@pytest.mark.parametrize("epsilon", [1e-3, 1e-8])
def test_matches_optax_started_at_zero_momentum(epsilon):
    # optax starts m at initial_accumulator_value too; zeroing it in optax's state compares the same algorithm.
    import jax.numpy as jnp

    def zero_momentum(state):
        inner = state[0]
        return (inner._replace(mu=[jnp.zeros_like(mu) for mu in inner.mu]), *state[1:])

    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(Yogi(0.01, epsilon=epsilon), initial, gradients)
    expected = optax_trajectory(optax.yogi(0.01, eps=epsilon), initial, gradients, state_edit=zero_momentum)
    assert_matches_reference(trajectory, expected)


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
    first_loss, last_loss, accuracy = fit_digits(Yogi(learning_rate=0.01))
    assert last_loss < 0.3 * first_loss
    assert accuracy > 0.85


# TensorFlow only (tf.distribute: tests/optimizers/test_mirrored_strategy.py, one process for all).


def test_sparse_embedding_gradients():
    check_sparse_gradients(make)



def reference_tfa_yogi(initial, gradients, lr, beta1=0.9, beta2=0.999, epsilon=1e-3, initial_accumulator_value=1e-6):
    """`tfa.optimizers.Yogi`'s dense update (sign activation, no l1/l2) in float64: epsilon before the bias
    correction, folded into the rate `lr sqrt(1 - b2^t) / (1 - b1^t)`."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    v = [np.full_like(x, initial_accumulator_value) for x in w]
    out = []
    for t, step in enumerate(gradients, start=1):
        lr_t = lr * np.sqrt(1 - beta2**t) / (1 - beta1**t)
        for i, g in enumerate(step):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = v[i] - (1 - beta2) * np.sign(v[i] - g * g) * g * g
            w[i] = w[i] - lr_t * m[i] / (np.sqrt(v[i]) + epsilon)
        out.append([x.copy() for x in w])
    return out


@agnostic
def test_epsilon_before_correction_matches_tfa_yogi():
    initial, gradients, _ = reference_problem(steps=40)
    trajectory = run_reference_problem(Yogi(learning_rate=0.01, epsilon_before_correction=True), initial, gradients)
    assert_matches_reference(trajectory, reference_tfa_yogi(initial, gradients, 0.01))
