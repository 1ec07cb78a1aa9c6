import os

import keras
import numpy as np
import pytest

from tfopt.models import SharpnessAwareMinimization
from tfopt.optimizers import Lookahead

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(0)
X = RNG.normal(size=(8, 3)).astype("float32")
Y = RNG.normal(size=(8, 2)).astype("float32")
W0 = RNG.normal(size=(3, 2)).astype("float32")


def linear_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False)])
    model.set_weights([W0])
    return model


def reference_steps(steps, rho, lr, adaptive=False, eta=0.01):
    """SAM / ASAM with SGD on mean squared error, in float64 NumPy, from the papers' formulas."""
    x, y, w = X.astype("float64"), Y.astype("float64"), W0.astype("float64")

    def grad(w):
        return 2.0 * x.T @ (x @ w - y) / y.size

    for _ in range(steps):
        g = grad(w)
        if adaptive:
            t = np.abs(w) + eta
            e = rho * t * t * g / np.linalg.norm(t * g)
        else:
            e = rho * g / np.linalg.norm(g)
        w = w - lr * grad(w + e)
    return w


@pytest.mark.parametrize("adaptive, rho", [(False, 0.5), (True, 0.8)])
def test_two_steps_match_the_hand_computed_update(adaptive, rho):
    sam = SharpnessAwareMinimization(linear_model(), rho=rho, adaptive=adaptive)
    sam.compile(keras.optimizers.SGD(0.1), loss="mse")
    sam.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    expected = reference_steps(2, rho, 0.1, adaptive)
    np.testing.assert_allclose(sam.model.get_weights()[0], expected, rtol=1e-5, atol=1e-6)
    # Differs from plain SGD's two steps: the perturbation matters.
    plain = W0.astype("float64")
    for _ in range(2):
        plain = plain - 0.1 * 2.0 * X.T @ (X @ plain - Y) / Y.size
    assert np.max(np.abs(expected - plain)) > 1e-3


def test_logged_loss_and_metrics_come_from_the_first_pass():
    sam = SharpnessAwareMinimization(linear_model(), rho=0.5)
    sam.compile(keras.optimizers.SGD(0.0), loss="mse", metrics=["mae"])
    logs = sam.fit(X, Y, batch_size=8, epochs=1, verbose=0).history
    prediction = X @ W0
    np.testing.assert_allclose(logs["loss"][0], np.mean((prediction - Y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(logs["mae"][0], np.mean(np.abs(prediction - Y)), rtol=1e-5)


@pytest.mark.parametrize(
    "make_optimizer",
    [lambda: keras.optimizers.Adam(0.01), lambda: Lookahead(keras.optimizers.SGD(0.05), sync_period=2)],
    ids=["adam", "lookahead"],
)
def test_any_optimizer_trains_a_classifier(make_optimizer):
    keras.utils.set_random_seed(0)
    x = RNG.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    sam = SharpnessAwareMinimization(inner)
    sam.compile(make_optimizer(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = sam.fit(x, y, batch_size=16, epochs=15, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["accuracy"][-1] >= 0.8


def test_save_load_resumes_and_the_inner_model_deploys(tmp_path):
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(2)])
    sam = SharpnessAwareMinimization(inner, rho=0.1, adaptive=True)
    sam.compile(keras.optimizers.Adam(0.01), loss="mse")
    sam.fit(X, Y, batch_size=4, epochs=2, verbose=0)
    path = os.path.join(tmp_path, "sam.keras")
    sam.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SharpnessAwareMinimization)
    assert (loaded.rho, loaded.adaptive, loaded.eta) == (0.1, True, 0.01)
    np.testing.assert_allclose(loaded.predict(X, verbose=0), sam.predict(X, verbose=0), rtol=1e-6, atol=1e-6)
    for a, b in zip(sam.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    sam.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    loaded.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(loaded.model.get_weights()[0], sam.model.get_weights()[0], rtol=1e-5, atol=1e-6)
    # The deployed model is the plain inner one: no wrapper class in its file.
    deployed = os.path.join(tmp_path, "inner.keras")
    sam.model.save(deployed)
    plain = keras.models.load_model(deployed)
    assert type(plain) is keras.Sequential
    np.testing.assert_allclose(plain.predict(X, verbose=0), sam.predict(X, verbose=0), rtol=1e-6, atol=1e-6)


def test_batch_norm_statistics_update_once_per_step():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.5)])
    sam = SharpnessAwareMinimization(inner)
    sam.compile(keras.optimizers.SGD(0.0), loss="mse")
    sam.fit(X, X, batch_size=8, epochs=1, verbose=0)
    moving_mean = inner.layers[0].moving_mean
    np.testing.assert_allclose(np.asarray(moving_mean), 0.5 * X.mean(axis=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"rho": 0.0}, ValueError, "Argument `rho` must be a finite number > 0. Received: rho=0.0"),
        ({"rho": -1}, ValueError, "Argument `rho` must be a finite number > 0. Received: rho=-1"),
        ({"adaptive": 1}, TypeError, "Argument `adaptive` must be a bool. Received: adaptive=1"),
        ({"eta": -0.1}, ValueError, "Argument `eta` must be a finite number >= 0. Received: eta=-0.1"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        SharpnessAwareMinimization(linear_model(), **kwargs)


def test_model_must_be_a_keras_model():
    with pytest.raises(TypeError, match="Argument `model` must be a keras.Model. Received: model of type Dense"):
        SharpnessAwareMinimization(keras.layers.Dense(2))
