"""recompute_batch_norm_statistics: BatchNormalization statistics set to the plain average over the data, checked
against NumPy float64 batch statistics."""

import keras
import numpy as np
import pytest

from tfopt.callbacks.batch_norm_statistics import recompute_batch_norm_statistics

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(0)
X = RNG.normal(loc=2.0, scale=3.0, size=(64, 5)).astype("float32")
T = RNG.normal(size=(64, 2)).astype("float32")


def _model(batch_norm=True):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((5,))]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(momentum=0.9))
    layers += [keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)]
    model = keras.Sequential(layers)
    model.compile("sgd", loss="mse")
    return model


def _batch_statistics(batches):
    means = [b.astype(np.float64).mean(axis=0) for b in batches]
    variances = [b.astype(np.float64).var(axis=0) for b in batches]
    return np.mean(means, axis=0), np.mean(variances, axis=0)


def test_recompute_sets_the_plain_average_of_batch_statistics():
    model = _model()
    layer = model.layers[0]
    used = recompute_batch_norm_statistics(model, X, batch_size=16)
    assert used == 4
    mean, variance = _batch_statistics([X[i: i + 16] for i in range(0, 64, 16)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_mean), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.moving_variance), variance, rtol=1e-5, atol=1e-5)
    assert layer.momentum == 0.9  # restored


def test_recompute_takes_batches_of_x_y_tuples_and_a_step_limit():
    model = _model()
    batches = [(X[i: i + 8], T[i: i + 8]) for i in range(0, 64, 8)]
    assert recompute_batch_norm_statistics(model, batches, steps=3) == 3
    mean, variance = _batch_statistics([b[0] for b in batches[:3]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.layers[0].moving_mean), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.layers[0].moving_variance), variance, rtol=1e-5,
                               atol=1e-5)


def test_recompute_leaves_a_model_without_batch_norm_alone():
    model = _model(batch_norm=False)
    before = model.get_weights()
    assert recompute_batch_norm_statistics(model, X) == 0
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)
