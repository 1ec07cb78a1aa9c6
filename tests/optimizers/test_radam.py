"""RAdam against a float64 transcription of the paper's algorithm, against optax, in `fit`, and the base options."""

import importlib
import math

import keras
import numpy as np
import optax
import pytest

from tfopt.optimizers.radam import RAdam

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
    return RAdam(**{"learning_rate": 0.01, **kwargs})


def reference_radam(initial, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.0,
                    decay_mask=None):
    """Liu et al. 2019, Algorithm 2, in float64, rectifying when rho_t > 5 (PyTorch's test), epsilon after bias
    correction, and PyTorch's decoupled weight decay w <- w (1 - lr * weight_decay) before the step."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    decay_mask = decay_mask or [True] * len(w)
    rho_inf = 2 / (1 - beta_2) - 1
    trajectory = []
    for t, step in enumerate(gradients, start=1):
        rho_t = rho_inf - 2 * t * beta_2**t / (1 - beta_2**t)
        for i, g in enumerate(step):
            g = np.asarray(g, np.float64)
            if decay_mask[i]:
                w[i] = w[i] * (1 - lr * weight_decay)
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            m_hat = m[i] / (1 - beta_1**t)
            if rho_t > 5:
                r_t = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                w[i] = w[i] - lr * r_t * m_hat / (np.sqrt(v[i] / (1 - beta_2**t)) + epsilon)
            else:
                w[i] = w[i] - lr * m_hat
        trajectory.append([x.copy() for x in w])
    return trajectory


# Invalid arguments.


@agnostic
@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("learning_rate", -0.1, ValueError),
        ("learning_rate", "fast", TypeError),
        ("beta_1", 1.0, ValueError),
        ("beta_1", -0.1, ValueError),
        ("beta_2", 1.5, ValueError),
        ("epsilon", -1e-8, ValueError),
        ("weight_decay", -0.01, ValueError),
    ],
)
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(RAdam, argument, value, error)


@agnostic
def test_invalid_beta_message_gives_the_range():
    message = check_rejects(RAdam, "beta_2", 1.0)
    assert message == "Argument `beta_2` must be a number in [0.0, 1.0). Received: beta_2=1.0"


# Configuration.


@agnostic
def test_config_round_trip():
    check_config_round_trip(RAdam(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=0.01,
                                  clipnorm=1.0))



@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.radam"))


# Update rule.


@agnostic
def test_first_steps_are_momentum_steps():
    # rho_1..rho_5 <= 5 for beta_2 = 0.999, so the first five steps are w <- w - lr * m_hat; with a constant
    # gradient g, m_hat = g exactly, so each step moves by lr * g.
    variable = keras.Variable(np.array([1.0, -2.0], "float32"))
    optimizer = RAdam(learning_rate=0.1)
    for step in range(1, 6):
        optimizer.apply([np.array([0.5, -1.0], "float32")], [variable])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable),
                                   [1.0 - 0.05 * step, -2.0 + 0.1 * step], rtol=1e-6)


@agnostic
def test_sixth_step_is_rectified_adam_step():
    # Step 6 is the first with rho_t > 5: w <- w - lr * r_6 * m_hat / (sqrt(v_hat) + eps), and with a constant
    # gradient m_hat = g and v_hat = g^2, so the step is lr * r_6 * sign(g) (up to epsilon).
    rho_inf = 2 / (1 - 0.999) - 1
    rho_6 = rho_inf - 2 * 6 * 0.999**6 / (1 - 0.999**6)
    r_6 = math.sqrt((rho_6 - 4) * (rho_6 - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_6))
    variable = keras.Variable(np.array([0.0], "float32"))
    optimizer = RAdam(learning_rate=0.1, epsilon=0.0)
    for _ in range(6):
        optimizer.apply([np.array([2.0], "float32")], [variable])
    assert 0.02 < r_6 < 0.03
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-5 * 0.2 - 0.1 * r_6], rtol=1e-6)


@agnostic
@pytest.mark.parametrize(
    "hyperparameters",
    [
        {"learning_rate": 0.01},
        {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
        {"learning_rate": 0.01, "beta_1": 0.0, "beta_2": 0.95},
        {"learning_rate": 0.01, "weight_decay": 0.1},
    ],
)
def test_matches_float64_reference_over_many_steps(hyperparameters):
    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(RAdam(**hyperparameters), initial, gradients)
    assert_matches_reference(trajectory, reference_radam(initial, gradients, **{
        "lr": hyperparameters["learning_rate"], **{k: v for k, v in hyperparameters.items() if k != "learning_rate"}}))


@agnostic
def test_weight_decay_skips_excluded_variables():
    initial, gradients, names = reference_problem()
    optimizer = RAdam(learning_rate=0.01, weight_decay=0.1)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    trajectory = run_reference_problem(optimizer, initial, gradients)
    expected = reference_radam(initial, gradients, 0.01, weight_decay=0.1, decay_mask=[n != "bias" for n in names])
    assert_matches_reference(trajectory, expected)


@agnostic
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9)])
def test_matches_optax(betas):
    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(RAdam(0.01, beta_1=betas[0], beta_2=betas[1]), initial, gradients)
    expected = optax_trajectory(optax.radam(0.01, b1=betas[0], b2=betas[1], eps=1e-8), initial, gradients)
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
    first_loss, last_loss, accuracy = fit_digits(RAdam(learning_rate=0.01))
    assert last_loss < 0.3 * first_loss
    assert accuracy > 0.85


# TensorFlow only (tf.distribute: tests/optimizers/test_mirrored_strategy.py, one process for all).


def test_sparse_embedding_gradients():
    check_sparse_gradients(make)



# TensorFlow Addons' RectifiedAdam: the built-in warmup and decay (total_steps, warmup_proportion, min_lr).


def reference_tfa_rectified_adam(initial, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=0.0,
                                 total_steps=0, warmup_proportion=0.1, min_lr=0.0):
    """`tfa.optimizers.RectifiedAdam._resource_apply_dense` in float64, line for line (its threshold is
    `sma_t >= 5`; no step of these betas has `sma_t` exactly 5)."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    out = []
    for t, step in enumerate(gradients, start=1):
        lr_t = lr
        if total_steps > 0:
            warmup = total_steps * warmup_proportion
            decay_steps = max(total_steps - warmup, 1)
            lr_t = lr * t / warmup if t <= warmup else lr + (min_lr - lr) / decay_steps * min(t - warmup,
                                                                                               decay_steps)
        sma_inf = 2 / (1 - beta_2) - 1
        sma_t = sma_inf - 2 * t * beta_2**t / (1 - beta_2**t)
        for i, g in enumerate(step):
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            m_corr = m[i] / (1 - beta_1**t)
            v_corr = np.sqrt(v[i] / (1 - beta_2**t))
            if sma_t >= 5:
                r_t = np.sqrt((sma_t - 4) / (sma_inf - 4) * (sma_t - 2) / (sma_inf - 2) * sma_inf / sma_t)
                update = r_t * m_corr / (v_corr + epsilon)
            else:
                update = m_corr
            w[i] = w[i] - lr_t * (update + weight_decay * w[i])
        out.append([x.copy() for x in w])
    return out


@agnostic
@pytest.mark.parametrize("tfa_arguments", [
    {"total_steps": 40, "warmup_proportion": 0.25, "min_lr": 1e-4},
    {"total_steps": 30, "warmup_proportion": 0.1, "min_lr": 0.0, "weight_decay": 0.05},
    {"weight_decay": 0.05},
])
def test_matches_tfa_rectified_adam_warmup_and_decay(tfa_arguments):
    initial, gradients, _ = reference_problem(steps=40)
    weight_decay = tfa_arguments.get("weight_decay")
    optimizer = RAdam(learning_rate=0.01, epsilon=1e-7, **tfa_arguments)
    trajectory = run_reference_problem(optimizer, initial, gradients)
    expected = reference_tfa_rectified_adam(initial, gradients, 0.01, **{**tfa_arguments,
                                                                          "weight_decay": weight_decay or 0.0})
    assert_matches_reference(trajectory, expected)


@agnostic
@pytest.mark.parametrize(("argument", "value", "error"), [("total_steps", -1, ValueError),
                                                          ("total_steps", 1.5, TypeError),
                                                          ("warmup_proportion", 1.5, ValueError),
                                                          ("min_lr", -1.0, ValueError)])
def test_rejects_invalid_warmup_argument(argument, value, error):
    check_rejects(RAdam, argument, value, error)
