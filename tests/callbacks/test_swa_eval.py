"""SWAEval: averaged weights outside training, and BatchNorm statistics recomputed for them."""

import doctest

import keras
import numpy as np
import pytest

import tfopt.callbacks.swa_eval as swa_eval_module
from tfopt.callbacks import recompute_batch_norm_statistics
from tfopt.callbacks.swa_eval import SWAEval, find_swa_optimizer
from tfopt.optimizers.swa import SWA

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(0)
X = RNG.normal(loc=2.0, scale=3.0, size=(64, 5)).astype("float32")
T = RNG.normal(size=(64, 2)).astype("float32")


def _model(optimizer, seed=0, batch_norm=False):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((5,))]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(momentum=0.9))
    layers += [keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)]
    model = keras.Sequential(layers)
    model.compile(optimizer, loss="mse")
    return model


def _swa(start=2, period=2):
    return SWA(keras.optimizers.SGD(0.05, momentum=0.9), start_averaging=start, average_period=period)


def _fit(model, epochs, callbacks=(), **kwargs):
    return model.fit(X, T, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=list(callbacks), **kwargs)


def test_docstring_example_runs():
    assert doctest.testmod(swa_eval_module).failed == 0


def test_fit_with_callback_ends_with_the_average_and_trains_as_without_it():
    plain = _model(_swa())
    _fit(plain, 3)
    trained = [w.copy() for w in plain.get_weights()]
    plain.optimizer.swap_to_eval(plain.trainable_variables)
    swapped = _model(_swa())
    _fit(swapped, 3, callbacks=[SWAEval()], validation_data=(X[:16], T[:16]))
    assert swapped.optimizer.in_eval_mode
    for got, want in zip(swapped.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    swapped.optimizer.swap_to_train(swapped.trainable_variables)
    for got, want in zip(swapped.get_weights(), trained):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_validation_during_fit_uses_the_average():
    model = _model(_swa())
    history = _fit(model, 2, callbacks=[SWAEval()], validation_data=(X[:32], T[:32]))
    assert model.evaluate(X[:32], T[:32], verbose=0) == pytest.approx(history.history["val_loss"][-1], rel=1e-5)


def test_a_second_fit_trains_on_the_trained_weights_not_the_average():
    once = _model(_swa())
    _fit(once, 4, callbacks=[SWAEval()])
    twice = _model(_swa())
    _fit(twice, 2, callbacks=[SWAEval()])
    _fit(twice, 2, callbacks=[SWAEval()])
    for got, want in zip(twice.get_weights(), once.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_before_the_first_snapshot_the_model_keeps_its_weights():
    model = _model(_swa(start=100))
    _fit(model, 1, callbacks=[SWAEval()])
    assert not model.optimizer.in_eval_mode and model.optimizer.averaged_snapshots == 0


def test_callback_without_swa_raises():
    with pytest.raises(ValueError, match="SWAEval needs a model compiled with a tfopt SWA optimizer"):
        _fit(_model("sgd"), 1, callbacks=[SWAEval()])


def test_callback_finds_swa_inside_a_loss_scale_optimizer():
    inner = _swa()
    assert find_swa_optimizer(keras.optimizers.LossScaleOptimizer(inner)) is inner
    assert find_swa_optimizer(keras.optimizers.Adam()) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "Argument `batch_size` must be an integer >= 1. Received: batch_size=0"),
    ({"steps": 0}, "Argument `steps` must be an integer >= 1 or None. Received: steps=0"),
])
def test_invalid_arguments_raise_naming_them(kwargs, message):
    with pytest.raises(ValueError) as info:
        SWAEval(**kwargs)
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        recompute_batch_norm_statistics(_model("sgd", batch_norm=True), X, **kwargs)
    assert str(info.value) == message


def _batch_statistics(batches):
    means = [b.astype(np.float64).mean(axis=0) for b in batches]
    variances = [b.astype(np.float64).var(axis=0) for b in batches]
    return np.mean(means, axis=0), np.mean(variances, axis=0)


def test_callback_recomputes_batch_norm_statistics_for_the_average():
    model = _model(_swa(), batch_norm=True)
    _fit(model, 2, callbacks=[SWAEval(batch_norm_data=X, batch_size=32)])
    assert model.optimizer.in_eval_mode
    mean, variance = _batch_statistics([X[:32], X[32:]])  # the BatchNorm layer sees the inputs directly
    layer = model.layers[0]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), variance, rtol=1e-5, atol=1e-5)
