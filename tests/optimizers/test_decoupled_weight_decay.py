"""Decoupled weight decay as TensorFlow Addons' (not scaled by the learning rate): SGDW, DecoupledAdamW and
`extend_with_decoupled_weight_decay` against float64 transcriptions of TFA's updates, exclusion, schedules, saving."""

import importlib

import keras
import numpy as np
import pytest

from tfopt.optimizers.decoupled_weight_decay import (
    SGDW,
    DecoupledAdamW,
    extend_with_decoupled_weight_decay,
)

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
STEPS = 20


def reference_sgdw(initial, gradients, wd, lr, momentum=0.0, nesterov=False, decayed=None):
    """TFA SGDW: w <- w - wd w, then Keras SGD (m <- mu m - lr g; w <- w + m, or w + mu m - lr g with Nesterov)."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    out = []
    for t, step in enumerate(gradients):
        for i, g in enumerate(step):
            if decayed is None or decayed[i]:
                w[i] = w[i] - (wd(t) if callable(wd) else wd) * w[i]
            if momentum == 0.0:
                w[i] = w[i] - lr * g
            else:
                m[i] = momentum * m[i] - lr * g
                w[i] = w[i] + (momentum * m[i] - lr * g if nesterov else m[i])
        out.append([x.copy() for x in w])
    return out


def reference_adamw(initial, gradients, wd, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """TFA AdamW: w <- w - wd w, then Adam with epsilon before the bias correction."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    out = []
    for t, step in enumerate(gradients, start=1):
        lr_t = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, g in enumerate(step):
            w[i] = w[i] - wd * w[i]
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            w[i] = w[i] - lr_t * m[i] / (np.sqrt(v[i]) + epsilon)
        out.append([x.copy() for x in w])
    return out


@pytest.fixture(scope="module")
def problem():
    initial, gradients, _ = reference_problem(steps=STEPS)
    return initial, gradients


@agnostic
@pytest.mark.parametrize(("factory", "argument", "value", "error"), [
    (SGDW, "weight_decay", -0.1, ValueError),
    (SGDW, "weight_decay", "0.1", TypeError),
    (SGDW, "learning_rate", -1.0, ValueError),
    (DecoupledAdamW, "beta_1", 1.0, ValueError),
    (DecoupledAdamW, "epsilon", -1.0, ValueError),
])
def test_rejects_invalid_argument(factory, argument, value, error):
    kwargs = {} if argument == "weight_decay" else {"weight_decay": 0.01}
    check_rejects(factory, argument, value, error, **kwargs)


@agnostic
def test_extend_rejects_what_is_not_an_optimizer_class():
    with pytest.raises(TypeError, match="Argument `base_optimizer` must be a subclass"):
        extend_with_decoupled_weight_decay(keras.optimizers.Adam())


@agnostic
def test_extend_makes_one_class_per_base():
    extended = extend_with_decoupled_weight_decay(keras.optimizers.Adam)
    assert extend_with_decoupled_weight_decay(keras.optimizers.Adam) is extended
    assert extend_with_decoupled_weight_decay(extended) is extended
    check_config_round_trip(extended(1e-3, learning_rate=0.01))


@agnostic
def test_config_round_trip():
    check_config_round_trip(SGDW(1e-4, learning_rate=0.1, momentum=0.9, nesterov=True))
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.5)
    check_config_round_trip(DecoupledAdamW(schedule, learning_rate=0.01, amsgrad=True))


@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.decoupled_weight_decay"))


@agnostic
@pytest.mark.parametrize("hyperparameters", [{"momentum": 0.0}, {"momentum": 0.9}, {"momentum": 0.8, "nesterov": True}])
def test_sgdw_matches_tfa_transcription(problem, hyperparameters):
    initial, gradients = problem
    trajectory = run_reference_problem(SGDW(0.01, learning_rate=0.05, **hyperparameters), initial, gradients)
    assert_matches_reference(trajectory, reference_sgdw(initial, gradients, 0.01, 0.05, **hyperparameters))


@agnostic
def test_adamw_decay_is_not_scaled_by_the_learning_rate(problem):
    initial, gradients = problem
    trajectory = run_reference_problem(DecoupledAdamW(0.01, learning_rate=0.003), initial, gradients)
    assert_matches_reference(trajectory, reference_adamw(initial, gradients, 0.01, 0.003))
    # Keras's AdamW with the same numbers decays 0.003x as much: a different trajectory.
    keras_trajectory = run_reference_problem(keras.optimizers.AdamW(0.003, weight_decay=0.01), initial, gradients)
    assert not np.allclose(keras_trajectory[-1][0], trajectory[-1][0], rtol=1e-4)


@agnostic
def test_extended_keras_adam_equals_decoupled_adamw(problem):
    initial, gradients = problem
    extended = extend_with_decoupled_weight_decay(keras.optimizers.Adam)
    trajectory = run_reference_problem(extended(0.02, learning_rate=0.01), initial, gradients)
    assert_matches_reference(trajectory, reference_adamw(initial, gradients, 0.02, 0.01))


@agnostic
def test_weight_decay_schedule_and_exclusion(problem):
    initial, gradients = problem
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([5], [0.05, 0.01])
    optimizer = SGDW(schedule, learning_rate=0.02, momentum=0.9)
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    trajectory = run_reference_problem(optimizer, initial, gradients)
    expected = reference_sgdw(initial, gradients, lambda t: 0.05 if t <= 5 else 0.01, 0.02, momentum=0.9,
                              decayed=[True, False, True])
    assert_matches_reference(trajectory, expected)


def test_save_load_continues(tmp_path):
    check_save_load_continues(lambda: DecoupledAdamW(1e-3, learning_rate=0.01), tmp_path, epochs=1)
