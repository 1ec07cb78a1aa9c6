"""Lookahead around SGD and Adam against float64 transcriptions, optax.lookahead, and inside fit."""

import doctest
import functools

import keras
import numpy as np
import pytest

import tfopt.optimizers.lookahead as lookahead_module
from tfopt.data import load_digits
from tfopt.optimizers.lookahead import Lookahead

from .conformance import (
    BASE_OPTION_CHECKS,
    check_config_round_trip,
    check_ema,
    check_learning_rate_schedule,
    check_mirrored_strategy_fit,
    check_rejects,
    check_save_load_continues,
    check_sparse_gradients,
)


class ReferenceSGD:
    """Keras SGD with momentum: v <- m v - lr g; w <- w + v (nesterov off)."""

    def __init__(self, lr, momentum=0.0):
        self.lr, self.momentum, self.v = lr, momentum, None

    def step(self, w, g):
        self.v = np.zeros_like(w) if self.v is None else self.v
        self.v = self.momentum * self.v - self.lr * g
        return w + self.v


class ReferenceAdam:
    """Keras Adam: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); w <- w - lr_t m / (sqrt(v) + eps)."""

    def __init__(self, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.lr, self.b1, self.b2, self.eps, self.t, self.m, self.v = lr, beta_1, beta_2, epsilon, 0, 0.0, 0.0

    def step(self, w, g):
        self.t += 1
        self.m = self.m + (g - self.m) * (1 - self.b1)
        self.v = self.v + (g * g - self.v) * (1 - self.b2)
        lr = self.lr * np.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        return w - lr * self.m / (np.sqrt(self.v) + self.eps)


def reference_lookahead(w0, grads, inner, sync_period, slow_step_size):
    """Zhang et al. 2019, Algorithm 1, with the inner optimizer's state kept across synchronisations."""
    fast = np.asarray(w0, np.float64).copy()
    slow = fast.copy()
    for t, g in enumerate(grads, start=1):
        fast = inner.step(fast, np.asarray(g, np.float64))
        if t % sync_period == 0:
            slow = slow + slow_step_size * (fast - slow)
            fast = slow.copy()
    return fast, slow


def run_keras(optimizer, w0, grads):
    variable = keras.Variable(np.asarray(w0, "float32"))
    for g in grads:
        optimizer.apply([np.asarray(g, "float32")], [variable])
    return keras.ops.convert_to_numpy(variable)


def random_problem(steps, shape=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), [rng.normal(size=shape) for _ in range(steps)]


# Invalid arguments.


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"sync_period": 0}, ValueError, "Argument `sync_period` must be an integer >= 1. Received: sync_period=0"),
        ({"sync_period": 2.0}, TypeError,
         "Argument `sync_period` must be an integer >= 1. Received: sync_period=2.0 of type float"),
        ({"slow_step_size": 0.0}, ValueError,
         "Argument `slow_step_size` must be a number in (0.0, 1.0]. Received: slow_step_size=0.0"),
        ({"slow_step_size": 1.5}, ValueError,
         "Argument `slow_step_size` must be a number in (0.0, 1.0]. Received: slow_step_size=1.5"),
        ({"clipnorm": 1.0}, ValueError,
         "Argument `clipnorm` is not taken by Lookahead: set it on the wrapped optimizer instead, "
         "e.g. keras.optimizers.Adam(clipnorm=...)."),
    ],
)
def test_invalid_arguments_raise_naming_them(kwargs, error, message):
    with pytest.raises(error) as info:
        Lookahead("sgd", **kwargs)
    assert str(info.value) == message


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("not_an_optimizer", [3, None, keras.layers.Dense(2)])
def test_wrapping_something_that_is_not_an_optimizer_raises_type_error(not_an_optimizer):
    with pytest.raises(TypeError, match="Argument `optimizer` must be a keras.optimizers.Optimizer instance"):
        Lookahead(not_an_optimizer)


@pytest.mark.backend_agnostic
def test_string_identifier_and_learning_rate_forwarding():
    optimizer = Lookahead("adam")
    assert isinstance(optimizer.inner_optimizer, keras.optimizers.Adam)
    assert type(Lookahead("radam").inner_optimizer).__name__ == "RAdam"  # tfopt's names too
    optimizer.learning_rate = 0.05
    assert float(optimizer.inner_optimizer.learning_rate) == pytest.approx(0.05)
    assert float(optimizer.learning_rate) == pytest.approx(0.05)


@pytest.mark.backend_agnostic
def test_config_round_trip_serializes_the_inner_optimizer():
    optimizer = Lookahead(keras.optimizers.SGD(0.3, momentum=0.8), sync_period=4, slow_step_size=0.7, name="la")
    config = optimizer.get_config()
    assert config["sync_period"] == 4 and config["slow_step_size"] == 0.7 and config["name"] == "la"
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, Lookahead) and isinstance(again.inner_optimizer, keras.optimizers.SGD)
    assert again.inner_optimizer.momentum == 0.8 and again.get_config() == config


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(lookahead_module).failed == 0


# Update rule.


@pytest.mark.backend_agnostic
def test_three_steps_by_hand():
    # SGD lr 1, gradients 1, 2, 3 from w = 0, k = 3, alpha = 0.5: fast ends at -6, slow at 0 + 0.5 (-6) = -3.
    optimizer = Lookahead(keras.optimizers.SGD(1.0), sync_period=3, slow_step_size=0.5)
    variable = keras.Variable([0.0])
    for g in (1.0, 2.0):
        optimizer.apply([np.array([g], "float32")], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-3.0])  # not yet synchronised
    optimizer.apply([np.array([3.0], "float32")], [variable])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-3.0])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(optimizer._slow_weights[0]), [-3.0])
    assert int(optimizer.iterations) == 3


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("sync_period, slow_step_size", [(6, 0.5), (5, 0.8), (1, 0.3), (7, 1.0)])
def test_matches_reference_around_momentum_sgd_over_120_steps(sync_period, slow_step_size):
    w0, grads = random_problem(120)
    got = run_keras(Lookahead(keras.optimizers.SGD(0.05, momentum=0.9), sync_period, slow_step_size), w0, grads)
    want, _ = reference_lookahead(w0, grads, ReferenceSGD(0.05, 0.9), sync_period, slow_step_size)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_matches_reference_around_adam_over_120_steps():
    w0, grads = random_problem(120, seed=1)
    got = run_keras(Lookahead(keras.optimizers.Adam(0.01), 5, 0.5), w0, grads)
    want, _ = reference_lookahead(w0, grads, ReferenceAdam(0.01), 5, 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_counts_applied_updates_when_the_inner_optimizer_accumulates_gradients():
    w0, grads = random_problem(36, seed=2)
    got = run_keras(Lookahead(keras.optimizers.SGD(0.1, gradient_accumulation_steps=2), 3, 0.5), w0, grads)
    averaged = [(grads[2 * i] + grads[2 * i + 1]) / 2 for i in range(18)]
    want, _ = reference_lookahead(w0, averaged, ReferenceSGD(0.1), 3, 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_matches_optax_lookahead_around_adam():
    import jax.numpy as jnp
    import optax

    w0, grads = random_problem(120, seed=3)
    solver = optax.lookahead(optax.adam(0.01, eps=1e-7), sync_period=6, slow_step_size=0.5)
    params = optax.LookaheadParams.init_synced(jnp.asarray(w0, jnp.float32))
    state = solver.init(params)
    for g in grads:
        updates, state = solver.update(jnp.asarray(g, jnp.float32), state, params)
        params = optax.apply_updates(params, updates)
    optimizer = Lookahead(keras.optimizers.Adam(0.01, epsilon=1e-7), 6, 0.5)
    # optax's eps sits outside sqrt(v_hat) and Keras's outside sqrt(v) with the correction in the rate: with
    # eps = 1e-7 against gradients of order 1 the two agree far below the tolerance.
    np.testing.assert_allclose(run_keras(optimizer, w0, grads), np.asarray(params.fast), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(optimizer._slow_weights[0]), np.asarray(params.slow),
                               rtol=1e-5, atol=1e-5)


# Inside fit.


@pytest.mark.backend_agnostic
def test_digits_classifier_trains_with_lookahead_adam():
    data = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(data.input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(Lookahead("adam", sync_period=5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.optimizer.learning_rate = 0.01
    history = model.fit(*data.train, batch_size=64, epochs=8, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    _, accuracy = model.evaluate(*data.test, verbose=0)
    assert accuracy >= 0.9


# The checks every optimizer passes (tests/optimizers/conformance.py); the base options go to the inner optimizer.


def make(**kwargs):
    return Lookahead(keras.optimizers.Adam(**{"learning_rate": 0.01, **kwargs}), sync_period=3, slow_step_size=0.5)


# check_ema is left out: the inner optimizer's moving average is updated inside its own step, before Lookahead
# synchronises, so at synchronisation steps it averages the fast weights rather than the synchronised ones.
@pytest.mark.backend_agnostic
@pytest.mark.parametrize("check", [c for c in BASE_OPTION_CHECKS if c is not check_ema], ids=lambda c: c.__name__)
def test_honours_base_option_of_the_inner_optimizer(check):
    check(make)


@pytest.mark.backend_agnostic
def test_learning_rate_schedules_equal_rates_set_by_hand():
    check_learning_rate_schedule(make)


def test_sparse_embedding_gradients_equal_dense_ones():
    # Around momentum SGD: Keras's Adam itself updates its moments lazily (looked-up rows only) for sparse
    # gradients, so it does not pass this check on its own.
    check_sparse_gradients(lambda: Lookahead(keras.optimizers.SGD(0.1, momentum=0.9), sync_period=3))


def test_mirrored_strategy_fit_equals_single_device():
    check_mirrored_strategy_fit(make())


@pytest.mark.backend_agnostic
def test_save_load_continues_identically_conformance(tmp_path):
    check_save_load_continues(make, tmp_path)


@pytest.mark.backend_agnostic
def test_config_round_trip_conformance():
    check_config_round_trip(make())


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("argument, value", [("sync_period", 0), ("slow_step_size", 0.0), ("slow_step_size", 2.0)])
def test_rejects_bad_hyperparameters(argument, value):
    check_rejects(functools.partial(Lookahead, "sgd"), argument, value)
