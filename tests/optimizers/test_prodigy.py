"""Prodigy against a float64 NumPy transcription of the authors' reference `Prodigy.step`, in `fit`, base options."""

import contextlib
import importlib
import math

import keras
import numpy as np
import pytest

from tfopt.optimizers.prodigy import Prodigy

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
    make_variables,
    random_gradients,
    reference_problem,
    run,
    run_reference_problem,
)

agnostic = pytest.mark.backend_agnostic


def make(**kwargs):
    # d0 = 0.01 so that the few steps of the base-option checks move the weights visibly.
    return Prodigy(**{"learning_rate": 1.0, "d0": 0.01, **kwargs})


def reference_prodigy(initial, gradients, lr=1.0, beta_1=0.9, beta_2=0.999, beta_3=None, epsilon=1e-8, d0=1e-6,
                      d_coef=1.0, growth_rate=math.inf, weight_decay=0.0, use_bias_correction=False,
                      safeguard_warmup=False, decay_mask=None, gradient_function=None):
    """The authors' `Prodigy.step` (konstmish/prodigy, decoupled decay, slice_p=1) in float64 NumPy.

    `lr` is a number or a function of the step index k; `gradient_function(weights, k)` replaces the fixed
    `gradients[k]` when given. Returns the weights after each step and the d after each step.
    """
    w = [np.asarray(x, np.float64).copy() for x in initial]
    w0 = [x.copy() for x in w]
    m, v, s = ([np.zeros_like(x) for x in w] for _ in range(3))
    decay_mask = decay_mask or [True] * len(w)
    beta_3 = math.sqrt(beta_2) if beta_3 is None else beta_3
    d, d_max, d_numerator, k = d0, d0, 0.0, 0
    trajectory, ds = [], []
    for step_index in range(len(gradients)):
        step = gradients[step_index] if gradient_function is None else gradient_function(w, step_index)
        group_lr = lr(step_index) if callable(lr) else lr
        bias_correction = math.sqrt(1 - beta_2 ** (k + 1)) / (1 - beta_1 ** (k + 1)) if use_bias_correction else 1
        dlr = d * group_lr * bias_correction
        numerator = d_numerator * beta_3
        denominator = 0.0
        for i, g in enumerate(step):
            g = np.asarray(g, np.float64)
            if group_lr > 0:
                numerator += (d / d0) * dlr * float(np.dot(g.ravel(), (w0[i] - w[i]).ravel()))
                m[i] = m[i] * beta_1 + g * d * (1 - beta_1)
                v[i] = v[i] * beta_2 + g * g * d * d * (1 - beta_2)
                s[i] = s[i] * beta_3 + g * ((d / d0) * d if safeguard_warmup else (d / d0) * dlr)
                denominator += float(np.sum(np.abs(s[i])))
        if denominator > 0:
            if group_lr > 0:
                d_hat = d_coef * numerator / denominator
                if d == d0:
                    d = max(d, d_hat)
                d_max = max(d_max, d_hat)
                d = min(d_max, d * growth_rate)
            d_numerator = numerator
            for i in range(len(w)):
                if weight_decay != 0 and decay_mask[i]:
                    w[i] = w[i] - weight_decay * dlr * w[i]
                w[i] = w[i] - dlr * m[i] / (np.sqrt(v[i]) + d * epsilon)
            k += 1
        trajectory.append([x.copy() for x in w])
        ds.append(d)
    return trajectory, ds


def quadratic_gradients(centers, noise_seed=0, noise=0.1):
    """Gradients of 0.5 ||w - c||^2 per variable plus Gaussian noise: a problem with a solution for d to find."""
    rng = np.random.default_rng(noise_seed)
    noises = {}

    def gradient_function(weights, k):
        if k not in noises:
            noises[k] = [noise * rng.standard_normal(c.shape) for c in centers]
        return [(np.asarray(w, np.float64) - c + n).astype("float32").astype(np.float64)
                for w, c, n in zip(weights, centers, noises[k])]

    return gradient_function


# Invalid arguments.


@agnostic
@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("learning_rate", 0.0, ValueError),
        ("learning_rate", -1.0, ValueError),
        ("beta_1", 1.0, ValueError),
        ("beta_2", -0.1, ValueError),
        ("beta_3", 1.0, ValueError),
        ("epsilon", -1e-8, ValueError),
        ("d0", 0.0, ValueError),
        ("d_coef", -1.0, ValueError),
        ("growth_rate", 0.5, ValueError),
        ("growth_rate", float("nan"), ValueError),
        ("weight_decay", -0.1, ValueError),
        ("use_bias_correction", "yes", TypeError),
        ("safeguard_warmup", None, TypeError),
    ],
)
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(Prodigy, argument, value, error)


# Configuration.


@agnostic
def test_config_round_trip():
    check_config_round_trip(Prodigy(learning_rate=0.5, beta_1=0.8, beta_2=0.99, beta_3=0.9, epsilon=1e-6, d0=1e-5,
                                    d_coef=0.5, growth_rate=1.02, weight_decay=0.01, use_bias_correction=True,
                                    safeguard_warmup=True))
    check_config_round_trip(Prodigy())  # beta_3=None and growth_rate=inf survive too



@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.prodigy"))


# Update rule.


@contextlib.contextmanager
def float64():
    """Float64 arithmetic on the current backend (JAX needs its 64-bit mode switched on for the block)."""
    if keras.backend.backend() == "jax":
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield


def run_float64(optimizer, initial, gradients=None, names=None, gradient_function=None, steps=None):
    """Our optimizer on float64 copies of `initial`; the weights after each step and the final d."""
    names = names or [f"w{i}" for i in range(len(initial))]
    variables = [keras.Variable(np.asarray(x, np.float64), name=n, dtype="float64") for n, x in zip(names, initial)]
    trajectory = []
    for k in range(len(gradients) if gradients is not None else steps):
        weights = [keras.ops.convert_to_numpy(v) for v in variables]
        step = gradients[k] if gradient_function is None else gradient_function(weights, k)
        optimizer.apply([np.asarray(g, np.float64) for g in step], variables)
        trajectory.append([keras.ops.convert_to_numpy(v).copy() for v in variables])
    return trajectory, float(keras.ops.convert_to_numpy(optimizer.d))


@agnostic
def test_first_step_moves_by_d0_times_adam_step():
    # Step 1: w0 = w so d_hat = 0 and d stays d0; m = d0 (1 - b1) g, v = d0^2 (1 - b2) g^2, dlr = d0 lr, so with
    # epsilon 0 the step is d0 * (1 - b1) / sqrt(1 - b2) * sign(g).
    variable = keras.Variable(np.array([0.0, 0.0], "float32"))
    optimizer = Prodigy(epsilon=0.0)
    optimizer.apply([np.array([3.0, -0.01], "float32")], [variable])
    step = 1e-6 * 0.1 / math.sqrt(0.001)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-step, step], rtol=1e-5)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(optimizer.d)), 1e-6, rtol=1e-6)


@agnostic
@pytest.mark.parametrize(
    "hyperparameters",
    [
        {},
        {"beta_1": 0.8, "beta_2": 0.99, "beta_3": 0.9, "epsilon": 1e-6, "d0": 1e-4},
        {"use_bias_correction": True, "weight_decay": 0.1},
        {"safeguard_warmup": True, "growth_rate": 1.02, "d_coef": 2.0},
        {"learning_rate": 0.5, "beta_1": 0.0},
    ],
)
def test_matches_float64_reference_over_many_steps(hyperparameters):
    initial, gradients, names = reference_problem()
    arguments = dict(hyperparameters)
    lr = arguments.pop("learning_rate", 1.0)
    expected, expected_ds = reference_prodigy(initial, gradients, lr=lr, **arguments)
    with float64():
        trajectory, d = run_float64(Prodigy(**hyperparameters), initial, gradients, names)
    assert_matches_reference(trajectory, expected)
    np.testing.assert_allclose(d, expected_ds[-1], rtol=1e-5)


@agnostic
def test_matches_float64_reference_on_noisy_quadratic():
    # Gradients of 0.5 ||w - c||^2 plus noise: d has a distance to find and grows by orders of magnitude.
    initial, _, names = reference_problem()
    centers = [np.random.default_rng(5).standard_normal(x.shape) for x in initial]
    expected, expected_ds = reference_prodigy(initial, [None] * 150,
                                              gradient_function=quadratic_gradients(centers, noise_seed=3))
    with float64():
        trajectory, d = run_float64(Prodigy(), initial, names=names, steps=150,
                                    gradient_function=quadratic_gradients(centers, noise_seed=3))
    assert expected_ds[-1] > 1e4 * expected_ds[0]
    assert_matches_reference(trajectory, expected)
    np.testing.assert_allclose(d, expected_ds[-1], rtol=1e-5)


@agnostic
def test_matches_float64_reference_with_schedule():
    initial, gradients, names = reference_problem()
    schedule = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=len(gradients))
    expected, _ = reference_prodigy(initial, gradients, lr=lambda k: float(keras.ops.convert_to_numpy(schedule(k))))
    with float64():
        trajectory, _ = run_float64(Prodigy(learning_rate=schedule), initial, gradients, names)
    assert_matches_reference(trajectory, expected)


@agnostic
def test_d_estimate_sums_over_all_variables():
    # One optimizer over two variables shares one d (the reference's global sums); one optimizer per variable
    # would estimate two different d's.
    initial, gradients, names = reference_problem(shapes={"kernel": (5, 4), "bias": (4,)})
    _, expected_ds = reference_prodigy(initial, gradients)
    with float64():
        _, d_joint = run_float64(Prodigy(), initial, gradients, names)
        _, d_kernel = run_float64(Prodigy(), initial[:1], [step[:1] for step in gradients])
        _, d_bias = run_float64(Prodigy(), initial[1:], [step[1:] for step in gradients])
    np.testing.assert_allclose(d_joint, expected_ds[-1], rtol=1e-5)
    assert abs(d_kernel - d_joint) > 1e-3 * d_joint and abs(d_bias - d_joint) > 1e-3 * d_joint


@agnostic
def test_float32_model_tracks_the_reference_d():
    # In float32 the distance travelled, w0 - w, loses digits while steps are ~d0, so the trajectory drifts from
    # a float64 run; the estimate d stays close.
    initial, gradients, _ = reference_problem()
    _, expected_ds = reference_prodigy(initial, gradients)
    optimizer = Prodigy()
    run_reference_problem(optimizer, initial, gradients)
    assert optimizer.d.dtype == "float32"
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(optimizer.d)), expected_ds[-1], rtol=0.05)


@agnostic
def test_zero_learning_rate_step_changes_nothing():
    # The weights, the moments, s, d, d_max and the running numerator all stay (only the counters move).
    variables = make_variables()
    optimizer = Prodigy()
    run(optimizer, random_gradients(3), variables)
    scratch = ("iteration", "learning_rate", "dlr", "d_step")
    state = variables + [v for v in optimizer.variables if v.name not in scratch]
    before = [keras.ops.convert_to_numpy(v).copy() for v in state]
    optimizer.learning_rate = 0.0
    run(optimizer, random_gradients(2, seed=9), variables)
    assert len(state) == 2 + 4 * 2 + 5
    for variable, value in zip(state, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value, err_msg=variable.name)


# Keras base options, learning rates, saving.


@agnostic
@pytest.mark.parametrize("check", BASE_OPTION_CHECKS, ids=lambda check: check.__name__)
def test_honours_base_option(check):
    check(make)


@agnostic
def test_takes_learning_rate_schedule():
    check_learning_rate_schedule(make, initial=1.0)


@agnostic
def test_save_load_continues_training(tmp_path):
    check_save_load_continues(make, tmp_path)


@agnostic
def test_trains_digits_classifier():
    first_loss, last_loss, accuracy = fit_digits(Prodigy())
    assert last_loss < 0.3 * first_loss
    assert accuracy > 0.85


# TensorFlow only (tf.distribute: tests/optimizers/test_mirrored_strategy.py, one process for all).


def test_sparse_embedding_gradients():
    check_sparse_gradients(make)

