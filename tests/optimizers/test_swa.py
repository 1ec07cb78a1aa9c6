"""SWA around SGD against a float64 transcription, the swap of averaged and trained weights, and inside fit."""

import doctest
import functools

import keras
import numpy as np
import pytest

import tfopt.optimizers.swa as swa_module
from tfopt.data import load_digits
from tfopt.optimizers.swa import SWA

from .conformance import (
    BASE_OPTION_CHECKS,
    check_config_round_trip,
    check_learning_rate_schedule,
    check_mirrored_strategy_fit,
    check_rejects,
    check_save_load_continues,
    check_sparse_gradients,
)


def reference_swa(w0, grads, lr, momentum, start_averaging, average_period):
    """Momentum SGD (Keras's form) and the mean of the weights after steps t_0, t_0 + p, ... (Izmailov et al.)."""
    weights = np.asarray(w0, np.float64).copy()
    velocity = np.zeros_like(weights)
    first = start_averaging if start_averaging > 0 else average_period
    snapshots = []
    for t, g in enumerate(grads, start=1):
        velocity = momentum * velocity - lr * np.asarray(g, np.float64)
        weights = weights + velocity
        if t >= first and (t - first) % average_period == 0:
            snapshots.append(weights.copy())
    return weights, (np.mean(snapshots, axis=0) if snapshots else None), len(snapshots)


def random_problem(steps, shape=(4, 3), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape), [rng.normal(size=shape) for _ in range(steps)]


def run_keras(optimizer, w0, grads):
    variable = keras.Variable(np.asarray(w0, "float32"))
    for g in grads:
        optimizer.apply([np.asarray(g, "float32")], [variable])
    return variable


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"start_averaging": -1}, ValueError,
         "Argument `start_averaging` must be an integer >= 0. Received: start_averaging=-1"),
        ({"average_period": 0}, ValueError,
         "Argument `average_period` must be an integer >= 1. Received: average_period=0"),
        ({"average_period": 2.5}, TypeError,
         "Argument `average_period` must be an integer >= 1. Received: average_period=2.5 of type float"),
        ({"use_ema": True}, ValueError,
         "Argument `use_ema` is not taken by SWA: set it on the wrapped optimizer instead, "
         "e.g. keras.optimizers.Adam(use_ema=...)."),
    ],
)
def test_invalid_arguments_raise_naming_them(kwargs, error, message):
    with pytest.raises(error) as info:
        SWA("sgd", **kwargs)
    assert str(info.value) == message


@pytest.mark.backend_agnostic
def test_wrapping_something_that_is_not_an_optimizer_raises_type_error():
    with pytest.raises(TypeError, match="Argument `optimizer` must be a keras.optimizers.Optimizer instance"):
        SWA(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))


@pytest.mark.backend_agnostic
def test_config_round_trip_and_learning_rate_forwarding():
    optimizer = SWA(keras.optimizers.SGD(0.2, momentum=0.5), start_averaging=30, average_period=4)
    config = optimizer.get_config()
    assert config["start_averaging"] == 30 and config["average_period"] == 4
    again = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(again, SWA) and again.get_config() == config
    again.learning_rate = 0.01
    assert float(again.inner_optimizer.learning_rate) == pytest.approx(0.01)


@pytest.mark.backend_agnostic
def test_docstring_example_runs():
    assert doctest.testmod(swa_module).failed == 0


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("start_averaging, average_period", [(10, 7), (0, 5), (1, 1), (95, 3)])
def test_matches_reference_over_100_steps(start_averaging, average_period):
    w0, grads = random_problem(100)
    optimizer = SWA(keras.optimizers.SGD(0.02, momentum=0.9), start_averaging, average_period)
    variable = run_keras(optimizer, w0, grads)
    weights, average, count = reference_swa(w0, grads, 0.02, 0.9, start_averaging, average_period)
    np.testing.assert_allclose(numpy(variable), weights, rtol=1e-5, atol=1e-6)  # training itself is unchanged
    assert optimizer.averaged_snapshots == count
    trained = numpy(variable).copy()
    optimizer.swap_to_eval([variable])
    assert optimizer.in_eval_mode
    np.testing.assert_allclose(numpy(variable), average, rtol=1e-5, atol=1e-6)
    optimizer.swap_to_train([variable])
    np.testing.assert_array_equal(numpy(variable), trained)  # the swap is exact


@pytest.mark.backend_agnostic
def test_swapping_before_the_first_snapshot_leaves_the_weights():
    w0, grads = random_problem(4, seed=1)
    optimizer = SWA(keras.optimizers.SGD(0.1), start_averaging=5)
    variable = run_keras(optimizer, w0, grads)
    before = numpy(variable).copy()
    optimizer.swap_to_eval([variable])
    assert not optimizer.in_eval_mode and optimizer.averaged_snapshots == 0
    np.testing.assert_array_equal(numpy(variable), before)


@pytest.mark.backend_agnostic
def test_counts_applied_updates_when_the_inner_optimizer_accumulates_gradients():
    w0, grads = random_problem(24, seed=2)
    optimizer = SWA(keras.optimizers.SGD(0.1, gradient_accumulation_steps=2), start_averaging=3, average_period=2)
    variable = run_keras(optimizer, w0, grads)
    averaged = [(grads[2 * i] + grads[2 * i + 1]) / 2 for i in range(12)]
    _, average, count = reference_swa(w0, averaged, 0.1, 0.0, 3, 2)
    assert optimizer.averaged_snapshots == count == 5
    optimizer.swap_to_eval([variable])
    np.testing.assert_allclose(numpy(variable), average, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
def test_model_saved_with_the_average_in_loads_in_eval_mode_and_resumes(tmp_path):
    rng = np.random.default_rng(3)
    x, t = rng.normal(size=(48, 5)).astype("float32"), rng.normal(size=(48, 2)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)])
    model.compile(SWA(keras.optimizers.SGD(0.05, momentum=0.9), start_averaging=2, average_period=2), loss="mse")
    model.fit(x, t, batch_size=16, epochs=3, shuffle=False, verbose=0)
    model.optimizer.swap_to_eval(model.trainable_variables)
    path = str(tmp_path / "swa.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.optimizer.in_eval_mode and loaded.optimizer.averaged_snapshots == 4
    for m in (model, loaded):
        m.optimizer.swap_to_train(m.trainable_variables)
        m.fit(x, t, batch_size=16, epochs=2, shuffle=False, verbose=0)
        m.optimizer.swap_to_eval(m.trainable_variables)
    for got, want in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.backend_agnostic
def test_averaged_digits_classifier_is_accurate():
    data = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input(data.input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    steps_per_epoch = int(np.ceil(len(data.y_train) / 64))
    model.compile(SWA(keras.optimizers.SGD(0.1, momentum=0.9), start_averaging=4 * steps_per_epoch,
                      average_period=steps_per_epoch // 2),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(*data.train, batch_size=64, epochs=8, verbose=0)
    assert model.optimizer.averaged_snapshots == 9
    model.optimizer.swap_to_eval(model.trainable_variables)
    _, accuracy = model.evaluate(*data.test, verbose=0)
    assert accuracy >= 0.9


# The checks every optimizer passes (tests/optimizers/conformance.py); the base options go to the inner optimizer.


def make(**kwargs):
    return SWA(keras.optimizers.SGD(**{"learning_rate": 0.05, "momentum": 0.9, **kwargs}), 2, 2)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("check", BASE_OPTION_CHECKS, ids=lambda c: c.__name__)
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
@pytest.mark.parametrize("argument, value", [("start_averaging", -5), ("average_period", 0)])
def test_rejects_bad_hyperparameters(argument, value):
    check_rejects(functools.partial(SWA, "sgd"), argument, value)
