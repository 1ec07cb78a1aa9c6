"""Adan against a float64 transcription of the paper's Algorithm 1, against optax, in `fit`, and the base options."""

import importlib

import keras
import numpy as np
import optax
import pytest

import tfopt.optimizers.adan as adan_module
from tfopt.optimizers.adan import Adan

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
    return Adan(**{"learning_rate": 0.01, **kwargs})


def reference_adan(initial, gradients, lr, beta_1=0.98, beta_2=0.92, beta_3=0.99, epsilon=1e-8, weight_decay=0.0,
                   decay_mask=None):
    """Xie et al. 2022, Algorithm 1, in float64, written with the paper's betas p1, p2, p3 (ours are 1 - them):

        m = (1 - p1) m + p1 g;  v = (1 - p2) v + p2 (g - g_prev);  n = (1 - p3) n + p3 (g + (1 - p2)(g - g_prev))^2
        w = (w - lr (m_hat + (1 - p2) v_hat) / (sqrt(n_hat) + eps)) / (1 + lr lambda)

    with the authors' bias corrections and g_prev = g on the first step.
    """
    p1, p2, p3 = 1 - beta_1, 1 - beta_2, 1 - beta_3
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m, v, n = ([np.zeros_like(x) for x in w] for _ in range(3))
    previous = [None] * len(w)
    decay_mask = decay_mask or [True] * len(w)
    trajectory = []
    for k, step in enumerate(gradients, start=1):
        for i, g in enumerate(step):
            g = np.asarray(g, np.float64)
            difference = np.zeros_like(g) if previous[i] is None else g - previous[i]
            m[i] = (1 - p1) * m[i] + p1 * g
            v[i] = (1 - p2) * v[i] + p2 * difference
            n[i] = (1 - p3) * n[i] + p3 * (g + (1 - p2) * difference) ** 2
            m_hat, v_hat, n_hat = m[i] / (1 - (1 - p1) ** k), v[i] / (1 - (1 - p2) ** k), n[i] / (1 - (1 - p3) ** k)
            w[i] = w[i] - lr * (m_hat + (1 - p2) * v_hat) / (np.sqrt(n_hat) + epsilon)
            if decay_mask[i]:
                w[i] = w[i] / (1 + lr * weight_decay)
            previous[i] = g
        trajectory.append([x.copy() for x in w])
    return trajectory


# Invalid arguments.


@agnostic
@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("learning_rate", -0.01, ValueError),
        ("beta_1", 1.0, ValueError),
        ("beta_2", -0.1, ValueError),
        ("beta_3", 2.0, ValueError),
        ("beta_3", "0.99", TypeError),
        ("epsilon", -1e-8, ValueError),
        ("weight_decay", -0.02, ValueError),
    ],
)
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(Adan, argument, value, error)


# Configuration.


@agnostic
def test_config_round_trip():
    check_config_round_trip(Adan(learning_rate=0.02, beta_1=0.9, beta_2=0.9, beta_3=0.999, epsilon=1e-6,
                                 weight_decay=0.02, clipnorm=1.0))



@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.adan"))


# Update rule.


@agnostic
def test_first_step_has_no_gradient_difference():
    # Step 1: d = 0, m_hat = g, v = 0, n_hat = g^2, so w <- (w - lr * g / |g|) / (1 + lr * lambda).
    variable = keras.Variable(np.array([1.0, -1.0], "float32"))
    optimizer = Adan(learning_rate=0.1, epsilon=0.0, weight_decay=0.5)
    optimizer.apply([np.array([3.0, -0.25], "float32")], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [0.9 / 1.05, -0.9 / 1.05], rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(optimizer._differences[0]), [0.0, 0.0])


@agnostic
@pytest.mark.parametrize(
    "hyperparameters",
    [
        {"learning_rate": 0.01},
        {"learning_rate": 0.003, "beta_1": 0.9, "beta_2": 0.8, "beta_3": 0.999, "epsilon": 1e-6},
        {"learning_rate": 0.01, "weight_decay": 0.02},
        {"learning_rate": 0.05, "weight_decay": 0.5},
    ],
)
def test_matches_float64_reference_over_many_steps(hyperparameters):
    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(Adan(**hyperparameters), initial, gradients)
    arguments = {k: v for k, v in hyperparameters.items() if k != "learning_rate"}
    assert_matches_reference(trajectory, reference_adan(initial, gradients, hyperparameters["learning_rate"],
                                                        **arguments))


@agnostic
@pytest.mark.parametrize(
    "betas",
    [
        (0.5, 0.3, 0.6),  # renormalized every 21, 12 and 28 steps: several times in 100 steps
        (0.0, 0.92, 0.99),  # beta_1 = 0: m is the gradient, renormalized (an ordinary average) every step
    ],
)
def test_matches_float64_reference_across_renormalizations(betas):
    beta_1, beta_2, beta_3 = betas
    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(
        Adan(0.01, beta_1=beta_1, beta_2=beta_2, beta_3=beta_3, weight_decay=0.1), initial, gradients)
    expected = reference_adan(initial, gradients, 0.01, beta_1=beta_1, beta_2=beta_2, beta_3=beta_3,
                              weight_decay=0.1)
    assert_matches_reference(trajectory, expected)


def test_renormalization_period_bounds_the_slot_growth():
    # The most steps R with beta^-(R - 1) <= 2^20; 1 where the slot cannot grow (beta = 0, float16).
    for beta in (0.5, 0.92, 0.98, 0.99, 0.999):
        period = adan_module._renormalization_period(beta, "float32")
        assert beta ** -(period - 1) <= 2.0**20 < beta**-period
    assert adan_module._renormalization_period(0.5, "float32") == 21
    assert adan_module._renormalization_period(0.0, "float32") == 1
    assert adan_module._renormalization_period(0.98, "float16") == 1


@agnostic
def test_lazy_slot_grows_to_the_limit_and_is_renormalized():
    # Constant gradient 1 with beta_1 = 0.5: the average m is 1 - 0.5^k, the slot m / 0.5^j doubles each step
    # between renormalizations (every 21 steps) and never passes 2^20.
    variable = keras.Variable(np.zeros(3, "float32"))
    optimizer = Adan(learning_rate=0.0, beta_1=0.5)
    largest = 0.0
    for step in range(1, 64):
        optimizer.apply([np.ones(3, "float32")], [variable])
        slot = float(keras.ops.convert_to_numpy(optimizer._momentums[0])[0])
        j = (step - 1) % 21
        np.testing.assert_allclose(slot * 0.5**j, 1.0 - 0.5**step, rtol=1e-6)
        largest = max(largest, slot)
    assert 2.0**19 <= largest <= 2.0**20


@agnostic
def test_weight_decay_skips_excluded_variables():
    initial, gradients, names = reference_problem()
    optimizer = Adan(learning_rate=0.05, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    trajectory = run_reference_problem(optimizer, initial, gradients)
    expected = reference_adan(initial, gradients, 0.05, weight_decay=0.5, decay_mask=[n != "bias" for n in names])
    assert_matches_reference(trajectory, expected)


@agnostic
@pytest.mark.parametrize("betas", [(0.98, 0.99), (0.9, 0.999)])
def test_matches_optax_where_conventions_agree(betas):
    # optax 0.2.8 weights the gradient difference by 1 - b2 where the paper and the authors' code use b2
    # (google-deepmind/optax pull request 1715); at b2 = 0.5 both weights are 0.5.
    beta_1, beta_3 = betas
    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(Adan(0.01, beta_1=beta_1, beta_2=0.5, beta_3=beta_3), initial, gradients)
    transformation = optax.adan(0.01, b1=beta_1, b2=0.5, b3=beta_3, eps=1e-8, eps_root=0.0)
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
    first_loss, last_loss, accuracy = fit_digits(Adan(learning_rate=0.01))
    assert last_loss < 0.3 * first_loss
    assert accuracy > 0.85


# TensorFlow only (tf.distribute: tests/optimizers/test_mirrored_strategy.py, one process for all).


def test_sparse_embedding_gradients():
    check_sparse_gradients(make)

