"""GradientCentralization around SGD and Adam against float64 transcriptions, optax.centralize, and in fit."""

import doctest

import keras
import numpy as np
import pytest

import tfopt.optimizers.gradient_centralization as gc_module
from tfopt.data import load_digits
from tfopt.optimizers.gradient_centralization import GradientCentralization, centralize

from .conformance import (
    BASE_OPTION_CHECKS,
    check_clipnorm,
    check_clipvalue,
    check_config_round_trip,
    check_global_clipnorm,
    check_learning_rate_schedule,
    check_mirrored_strategy_fit,
    check_rejects,
    check_save_load_continues,
    check_sparse_gradients,
)

SHAPES = [(3, 3, 2, 4), (4,), (6, 5), (5,)]  # conv kernel, bias, dense kernel, bias


def reference_centralize(g):
    """Yong et al. 2020, eq. (1): subtract the mean over the fan-in (all axes but the output axis, Keras's last)."""
    g = np.asarray(g, np.float64)
    return g if g.ndim <= 1 else g - g.mean(axis=tuple(range(g.ndim - 1)), keepdims=True)


def random_problem(steps, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in SHAPES]
    return params, [[rng.normal(size=s) for s in SHAPES] for _ in range(steps)]


def run_keras(optimizer, params, grads):
    variables = [keras.Variable(p.astype("float32")) for p in params]
    for step in grads:
        optimizer.apply([g.astype("float32") for g in step], variables)
    return [keras.ops.convert_to_numpy(v) for v in variables]


@pytest.mark.backend_agnostic
def test_wrapping_something_that_is_not_an_optimizer_raises_type_error():
    with pytest.raises(TypeError, match=r"Argument `optimizer` must be a keras.optimizers.Optimizer instance.*"
                                        r"Received: optimizer=<function"):
        GradientCentralization(lambda: None)


@pytest.mark.backend_agnostic
def test_unknown_optimizer_name_raises_value_error():
    with pytest.raises(ValueError, match=r"Argument `optimizer` must be .* Received: optimizer='not an optimizer', "
                                         r"which tfopt.optimizers.get does not know"):
        GradientCentralization("not an optimizer")


@pytest.mark.backend_agnostic
def test_base_options_belong_to_the_inner_optimizer():
    with pytest.raises(ValueError, match="Argument `weight_decay` is not taken by GradientCentralization"):
        GradientCentralization("sgd", weight_decay=0.1)


@pytest.mark.backend_agnostic
def test_config_round_trip_and_learning_rate_forwarding():
    optimizer = GradientCentralization(keras.optimizers.Adam(0.002, beta_1=0.8))
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, GradientCentralization) and again.inner_optimizer.beta_1 == 0.8
    assert float(again.learning_rate) == pytest.approx(0.002)
    again.learning_rate = 0.1
    assert float(again.inner_optimizer.learning_rate) == pytest.approx(0.1)


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(gc_module).failed == 0


@pytest.mark.backend_agnostic
def test_centralize_gives_each_output_unit_zero_mean_and_keeps_vectors():
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        g = rng.normal(size=shape).astype("float32")
        got = keras.ops.convert_to_numpy(centralize(g))
        np.testing.assert_allclose(got, reference_centralize(g), rtol=1e-5, atol=1e-6)
        if len(shape) > 1:
            np.testing.assert_allclose(got.mean(axis=tuple(range(len(shape) - 1))), 0.0, atol=1e-6)


@pytest.mark.backend_agnostic
def test_matches_reference_around_momentum_sgd_over_100_steps():
    params, grads = random_problem(100)
    got = run_keras(GradientCentralization(keras.optimizers.SGD(0.01, momentum=0.9)), params, grads)
    want = [p.copy() for p in params]
    velocity = [np.zeros_like(p) for p in params]
    for step in grads:
        for i, g in enumerate(step):
            velocity[i] = 0.9 * velocity[i] - 0.01 * reference_centralize(g)
            want[i] = want[i] + velocity[i]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_matches_optax_centralize_chained_with_adam():
    # optax keeps the leading axis (PyTorch's output axis); Keras's output axis is the last, so optax sees the
    # kernels with their last axis moved to the front.
    import jax.numpy as jnp
    import optax

    params, grads = random_problem(100, seed=1)
    to_optax = lambda a: jnp.asarray(np.moveaxis(a, -1, 0), jnp.float32)  # noqa: E731
    solver = optax.chain(optax.centralize(), optax.adam(0.01, eps=1e-7))
    jparams = [to_optax(p) for p in params]
    state = solver.init(jparams)
    for step in grads:
        updates, state = solver.update([to_optax(g) for g in step], state, jparams)
        jparams = optax.apply_updates(jparams, updates)
    got = run_keras(GradientCentralization(keras.optimizers.Adam(0.01, epsilon=1e-7)), params, grads)
    for a, b in zip(got, jparams):
        np.testing.assert_allclose(a, np.moveaxis(np.asarray(b), 0, -1), rtol=1e-5, atol=2e-5)


@pytest.mark.backend_agnostic
def test_embedding_gradients_are_centralized_like_dense_ones():
    # On TensorFlow the Embedding's gradient is sparse (IndexedSlices); centralizing it must equal centralizing
    # the same gradient computed densely through a one-hot matrix product.
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 7, size=(16, 3))
    target = rng.normal(size=(16, 1)).astype("float32")
    table = rng.normal(size=(7, 4)).astype("float32")

    class OneHotEmbedding(keras.layers.Layer):
        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(7, 4), initializer=keras.initializers.Constant(table))

        def call(self, x):
            return keras.ops.matmul(keras.ops.one_hot(x, 7), self.embeddings)

    results = []
    for embedding in (keras.layers.Embedding(7, 4, embeddings_initializer=keras.initializers.Constant(table)),
                      OneHotEmbedding()):
        model = keras.Sequential([keras.Input((3,), dtype="int32"), embedding, keras.layers.Flatten(),
                                  keras.layers.Dense(1, kernel_initializer="ones")])
        model.compile(GradientCentralization(keras.optimizers.SGD(0.5)), loss="mse")
        model.fit(ids, target, batch_size=8, epochs=2, shuffle=False, verbose=0)
        results.append(keras.ops.convert_to_numpy(model.layers[0].embeddings))
    assert np.abs(results[0] - table).max() > 1e-3
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_digits_cnn_trains_with_centralized_momentum_sgd():
    data = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(data.input_shape),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(GradientCentralization(keras.optimizers.SGD(0.05, momentum=0.9)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(*data.train, batch_size=64, epochs=6, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    _, accuracy = model.evaluate(*data.test, verbose=0)
    assert accuracy >= 0.9


# The checks every optimizer passes (tests/optimizers/conformance.py); the base options go to the inner optimizer,
# which applies them to the centralized gradients, so the "by hand" runs see centralized gradients too.


def make(**kwargs):
    return GradientCentralization(keras.optimizers.SGD(**{"learning_rate": 0.05, "momentum": 0.9, **kwargs}))


# Clipping is left out: the inner optimizer clips the centralized gradient, whereas the check clips the raw one.
@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "check", [c for c in BASE_OPTION_CHECKS if c not in (check_clipnorm, check_clipvalue, check_global_clipnorm)],
    ids=lambda c: c.__name__)
def test_honours_base_option_of_the_inner_optimizer(check):
    check(make)


@pytest.mark.backend_agnostic
def test_learning_rate_schedules_equal_rates_set_by_hand():
    check_learning_rate_schedule(make)


def test_sparse_embedding_gradients_equal_dense_ones():
    check_sparse_gradients(make)


def test_mirrored_strategy_fit_equals_single_device():
    check_mirrored_strategy_fit(make())


@pytest.mark.backend_agnostic
def test_save_load_continues_identically_conformance(tmp_path):
    check_save_load_continues(make, tmp_path)


@pytest.mark.backend_agnostic
def test_config_round_trip_conformance():
    check_config_round_trip(make())


@pytest.mark.backend_agnostic
def test_rejects_a_non_optimizer():
    check_rejects(GradientCentralization, "optimizer", 3.0, error=TypeError)
