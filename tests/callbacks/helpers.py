"""Small models whose weight updates are known exactly, shared by the callback tests."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="tfopt_tests")
def mean_prediction(y_true, y_pred):
    """The mean prediction: with input 1 and no bias, its gradient for the single weight is exactly 1."""
    return ops.mean(y_pred)


def unit_gradient_model(optimizer):
    """One weight w, prediction w * x, loss mean(prediction): with x = 1, SGD moves w by exactly -lr per step."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=optimizer, loss=mean_prediction)
    return model


def ones(steps):
    """Inputs and targets of `steps` batches of size 1 for `unit_gradient_model`."""
    data = np.ones((steps, 1), "float32")
    return data, data


def kernel(model):
    return ops.convert_to_numpy(model.layers[0].kernel).astype("float64").copy()


class KernelRecorder(keras.callbacks.Callback):
    """The first layer's kernel after every training batch (its `model` property syncs JAX state first)."""

    def __init__(self):
        super().__init__()
        self.kernels = []

    def on_train_batch_end(self, batch, logs=None):
        self.kernels.append(kernel(self.model))


def regression_data(n=48, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x @ rng.normal(size=(features, 1)) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def linear_model(optimizer, features=3, seed=1):
    """A bias-free linear model with a fixed random kernel, trained with the MSE loss."""
    kernel_init = np.random.default_rng(seed).normal(size=(features, 1)).astype("float32")
    model = keras.Sequential(
        [keras.Input((features,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")]
    )
    model.layers[0].kernel.assign(kernel_init)
    model.compile(optimizer=optimizer, loss="mse")
    return model, kernel_init.astype("float64")


def mse_gradient(w, x, y):
    """d/dw mean((x w - y)^2) in float64."""
    x, y = x.astype("float64"), y.astype("float64")
    return 2.0 * x.T @ (x @ w - y) / len(x)
