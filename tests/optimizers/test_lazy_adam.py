"""LazyAdam against a float64 transcription of TensorFlow Addons' update: sparse rows on TensorFlow, all-zero rows
left untouched on JAX, Adam on dense gradients, and save/load with its moments."""

import importlib

import keras
import numpy as np
import pytest

from tfopt.optimizers.lazy_adam import LazyAdam

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
ROWS, WIDTH, STEPS = 6, 3, 20


def reference_lazy_adam(initial, steps, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """TFA's `LazyAdam._resource_apply_sparse` in float64: `steps` are (row indices, row gradients) pairs, repeated
    rows summed first (as TensorFlow's optimizers do); only those rows of m, v and w change."""
    w = np.asarray(initial, np.float64).copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    trajectory = []
    for t, (indices, values) in enumerate(steps, start=1):
        g = np.zeros_like(w)
        np.add.at(g, indices, np.asarray(values, np.float64))
        rows = np.unique(indices)
        lr_t = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m[rows] = beta_1 * m[rows] + (1 - beta_1) * g[rows]
        v[rows] = beta_2 * v[rows] + (1 - beta_2) * g[rows] ** 2
        w[rows] = w[rows] - lr_t * m[rows] / (np.sqrt(v[rows]) + epsilon)
        trajectory.append([w.copy()])
    return trajectory


def reference_adam(initial, gradients, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """Adam as TensorFlow's (and TFA LazyAdam's dense path): epsilon before the bias correction."""
    w = [np.asarray(x, np.float64).copy() for x in initial]
    m = [np.zeros_like(x) for x in w]
    v = [np.zeros_like(x) for x in w]
    trajectory = []
    for t, step in enumerate(gradients, start=1):
        lr_t = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        for i, g in enumerate(step):
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            w[i] = w[i] - lr_t * m[i] / (np.sqrt(v[i]) + epsilon)
        trajectory.append([x.copy() for x in w])
    return trajectory


def sparse_steps(seed=0):
    """Per step, 3 row indices (some repeated, some rows never seen) and their gradient rows."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, ROWS - 1, size=3), rng.normal(size=(3, WIDTH)).astype("float32")) for _ in range(STEPS)]


@agnostic
@pytest.mark.parametrize(("argument", "value", "error"), [("learning_rate", -1.0, ValueError),
                                                          ("beta_1", 1.0, ValueError), ("beta_2", -0.1, ValueError),
                                                          ("epsilon", "1e-7", TypeError)])
def test_rejects_invalid_argument(argument, value, error):
    check_rejects(LazyAdam, argument, value, error)


@agnostic
def test_config_round_trip():
    check_config_round_trip(LazyAdam(learning_rate=0.02, beta_1=0.8, beta_2=0.99, epsilon=1e-5, clipnorm=1.0))


@agnostic
def test_docstring_example_runs():
    check_docstring_examples(importlib.import_module("tfopt.optimizers.lazy_adam"))


@agnostic
def test_dense_gradients_without_zero_rows_are_adam():
    initial, gradients, _ = reference_problem(steps=STEPS)
    trajectory = run_reference_problem(LazyAdam(learning_rate=0.01, epsilon=1e-6), initial, gradients)
    assert_matches_reference(trajectory, reference_adam(initial, gradients, 0.01, epsilon=1e-6))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="IndexedSlices gradients are TensorFlow's")
def test_sparse_gradients_update_only_their_rows_on_tensorflow():
    import tensorflow as tf

    initial = np.random.default_rng(1).normal(size=(ROWS, WIDTH)).astype("float32")
    variable = keras.Variable(initial)
    optimizer = LazyAdam(learning_rate=0.05)
    steps = sparse_steps()
    apply = tf.function(lambda g: optimizer.apply([g], [variable]), jit_compile=False)
    trajectory = []
    for indices, values in steps:
        apply(tf.IndexedSlices(tf.constant(values), tf.constant(indices, "int32"), tf.constant([ROWS, WIDTH])))
        trajectory.append([variable.numpy().copy()])
    assert_matches_reference(trajectory, reference_lazy_adam(initial, steps, 0.05))
    # The last row was never looked up: weights and moments are as they started.
    np.testing.assert_array_equal(variable.numpy()[-1], initial[-1])
    np.testing.assert_array_equal(optimizer._momentums[0].numpy()[-1], 0.0)


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="dense gradients are TensorFlow's Adam")
@agnostic
def test_all_zero_rows_are_left_untouched_off_tensorflow():
    initial = np.random.default_rng(1).normal(size=(ROWS, WIDTH)).astype("float32")
    steps = sparse_steps()
    dense = []
    for indices, values in steps:
        g = np.zeros((ROWS, WIDTH), "float32")
        np.add.at(g, indices, values)
        dense.append([g])
    trajectory = run_reference_problem(LazyAdam(learning_rate=0.05), [initial], dense, names=("table",))
    assert_matches_reference(trajectory, reference_lazy_adam(initial, steps, 0.05))


def test_save_load_continues(tmp_path):
    check_save_load_continues(lambda: LazyAdam(learning_rate=0.01), tmp_path, epochs=1)


@agnostic
@pytest.mark.parametrize(("make", "lazy"), [(lambda: LazyAdam(0.01), True), (lambda: keras.optimizers.Adam(0.01),
                                                                              False)])
def test_rows_not_looked_up_stay_in_fit_where_adam_moves_them(make, lazy):
    model = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(20, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(1)])
    model.compile(make(), loss="mse")
    ids = np.arange(30).reshape(10, 3) % 10
    model.fit(ids, np.ones((10, 1)), batch_size=5, epochs=1, shuffle=False, verbose=0)
    seen = keras.ops.convert_to_numpy(model.layers[0].embeddings)[:10].copy()
    model.fit(ids + 10, np.ones((10, 1)), batch_size=5, epochs=1, shuffle=False, verbose=0)
    later = keras.ops.convert_to_numpy(model.layers[0].embeddings)[:10]
    assert np.array_equal(later, seen) == lazy
