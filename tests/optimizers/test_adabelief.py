"""AdaBelief against a float64 transcription of the paper's Algorithm 2, against optax, in `fit`, base options."""

import importlib

import keras
import numpy as np
import optax
import pytest

from tfopt.optimizers.adabelief import AdaBelief

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
    return AdaBelief(**{"learning_rate": 0.01, **kwargs})


def reference_adabelief(initial, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-16, weight_decay=0.0):
    """Zhuang et al. 2020, Algorithm 2, in float64, with decoupled weight decay w <- w (1 - lr * weight_decay)."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    s = [np.zeros_like(x) for x in w]
    trajectory = []
    for t, step in enumerate(gradients, start=1):
        for i, g in enumerate(step):
            g = np.asarray(g, np.float64)
            w[i] = w[i] * (1 - lr * weight_decay)
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            s[i] = beta_2 * s[i] + (1 - beta_2) * (g - m[i]) ** 2 + epsilon
            m_hat = m[i] / (1 - beta_1**t)
            s_hat = s[i] / (1 - beta_2**t)
            w[i] = w[i] - lr * m_hat / (np.sqrt(s_hat) + epsilon)
        trajectory.append([x.copy() for x in w])
    return trajectory


# Invalid arguments.


@agnostic
@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("learning_rate", -1.0, ValueError),
        ("learning_rate", None, TypeError),
        ("beta_1", 1.0, ValueError),
        ("beta_2", -0.5, ValueError),
        ("epsilon", -1e-16, ValueError),
        ("epsilon", "small", TypeError),
        ("weight_decay", -1.0, ValueError),
    ],
)
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(AdaBelief, argument, value, error)


# Configuration.


@agnostic
def test_config_round_trip():
    check_config_round_trip(AdaBelief(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-12, weight_decay=0.01,
                                      global_clipnorm=1.0))



@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.adabelief"))


# Update rule.


@agnostic
def test_first_step_by_hand():
    # Step 1 with epsilon 0: m = 0.1 g, s = 0.001 (g - 0.1 g)^2, m_hat = g, s_hat = 0.81 g^2, so
    # w <- w - lr * g / (0.9 |g|), a step of lr / 0.9 against the gradient's sign.
    variable = keras.Variable(np.array([0.0, 0.0], "float32"))
    optimizer = AdaBelief(learning_rate=0.1, epsilon=0.0)
    optimizer.apply([np.array([2.0, -0.5], "float32")], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-0.1 / 0.9, 0.1 / 0.9], rtol=1e-6)


@agnostic
@pytest.mark.parametrize(
    "hyperparameters",
    [
        {"learning_rate": 0.01},
        {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-8},
        {"learning_rate": 0.01, "beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-12},
        {"learning_rate": 0.01, "weight_decay": 0.1},
    ],
)
def test_matches_float64_reference_over_many_steps(hyperparameters):
    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(AdaBelief(**hyperparameters), initial, gradients)
    arguments = {k: v for k, v in hyperparameters.items() if k != "learning_rate"}
    assert_matches_reference(trajectory, reference_adabelief(initial, gradients, hyperparameters["learning_rate"],
                                                             **arguments))


@agnostic
@pytest.mark.parametrize("epsilon", [1e-16, 1e-8])
def test_matches_optax(epsilon):
    initial, gradients, _ = reference_problem()
    trajectory = run_reference_problem(AdaBelief(0.01, epsilon=epsilon), initial, gradients)
    expected = optax_trajectory(optax.adabelief(0.01, eps=epsilon, eps_root=epsilon), initial, gradients)
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
    first_loss, last_loss, accuracy = fit_digits(AdaBelief(learning_rate=0.01))
    assert last_loss < 0.3 * first_loss
    assert accuracy > 0.85


# TensorFlow only (tf.distribute: tests/optimizers/test_mirrored_strategy.py, one process for all).


def test_sparse_embedding_gradients():
    check_sparse_gradients(make)



def reference_tfa_adabelief(initial, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-14, weight_decay=0.0,
                            rectify=True, total_steps=0, warmup_proportion=0.1, min_lr=0.0):
    """`tfa.optimizers.AdaBelief._resource_apply_dense` in float64, line for line (no AMSGrad)."""
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
            m_corr = m[i] / (1 - beta_1**t)
            v[i] = beta_2 * v[i] + (1 - beta_2) * (g - m[i]) ** 2 + epsilon
            v_corr = np.sqrt(v[i] / (1 - beta_2**t))
            if not rectify:
                update = m_corr / (v_corr + epsilon)
            elif sma_t >= 5:
                r_t = np.sqrt((sma_t - 4) * (sma_t - 2) * sma_inf / ((sma_inf - 4) * (sma_inf - 2) * sma_t))
                update = r_t * m_corr / (v_corr + epsilon)
            else:
                update = m_corr
            w[i] = w[i] - lr_t * (update + weight_decay * w[i])
        out.append([x.copy() for x in w])
    return out


@agnostic
@pytest.mark.parametrize("tfa_arguments", [
    {"rectify": True},
    {"rectify": True, "total_steps": 40, "warmup_proportion": 0.2, "min_lr": 1e-4, "weight_decay": 0.05},
    {"rectify": False, "weight_decay": 0.05},
])
def test_matches_tfa_adabelief(tfa_arguments):
    initial, gradients, _ = reference_problem(steps=40)
    weight_decay = tfa_arguments.get("weight_decay")
    trajectory = run_reference_problem(AdaBelief(learning_rate=0.01, epsilon=1e-14, **tfa_arguments), initial,
                                       gradients)
    expected = reference_tfa_adabelief(initial, gradients, 0.01, **{**tfa_arguments,
                                                                     "weight_decay": weight_decay or 0.0})
    assert_matches_reference(trajectory, expected)


@agnostic
@pytest.mark.parametrize(("argument", "value", "error"), [("rectify", 1, TypeError), ("total_steps", -1, ValueError),
                                                          ("warmup_proportion", 2.0, ValueError),
                                                          ("min_lr", -1.0, ValueError)])
def test_rejects_invalid_tfa_argument(argument, value, error):
    check_rejects(AdaBelief, argument, value, error)
