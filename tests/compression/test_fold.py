import keras
import numpy as np
import pytest

from tfopt.compression import fold_batch_norms

pytestmark = pytest.mark.backend_agnostic


def randomize_batch_norms(model, seed=0):
    """Non-trivial statistics, so that folding has something to fold."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            values = []
            for variable in layer.weights:  # gamma and beta only where scale / center
                if "variance" in variable.path or "gamma" in variable.path:
                    values.append(rng.uniform(0.5, 2.0, variable.shape))
                else:
                    values.append(rng.normal(size=variable.shape))
            layer.set_weights(values)
    return model


def assert_same_outputs(a, b, x):
    assert np.abs(a.predict(x, verbose=0) - b.predict(x, verbose=0)).max() <= 1e-5


def names(model):
    return [type(layer).__name__ for layer in model.layers]


def test_folds_conv_depthwise_and_dense_in_a_sequential_model():
    keras.utils.set_random_seed(0)
    model = randomize_batch_norms(
        keras.Sequential(
            [
                keras.Input((8, 8, 3)),
                keras.layers.Conv2D(6, 3, padding="same"),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
                keras.layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False),
                keras.layers.BatchNormalization(),
                keras.layers.Flatten(),
                keras.layers.Dense(5),
                keras.layers.BatchNormalization(center=False),
            ]
        )
    )
    folded = fold_batch_norms(model)
    assert names(folded) == ["Conv2D", "ReLU", "DepthwiseConv2D", "Flatten", "Dense"]
    assert folded.count_params() < model.count_params()
    assert_same_outputs(model, folded, np.random.default_rng(1).normal(size=(16, 8, 8, 3)).astype("float32"))


def test_folds_conv1d_in_a_functional_model_with_branches():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((20, 4))
    a = keras.layers.BatchNormalization()(keras.layers.Conv1D(6, 3, padding="same")(inputs))
    b = keras.layers.Conv1D(6, 1)(inputs)
    x = keras.layers.Add()([a, b])
    outputs = keras.layers.BatchNormalization(scale=False)(keras.layers.Dense(3)(keras.layers.Flatten()(x)))
    model = randomize_batch_norms(keras.Model(inputs, outputs))
    folded = fold_batch_norms(model)
    assert "BatchNormalization" not in names(folded)
    assert_same_outputs(model, folded, np.random.default_rng(2).normal(size=(16, 20, 4)).astype("float32"))


def test_keeps_what_cannot_be_folded_on_request():
    model = randomize_batch_norms(
        keras.Sequential(
            [
                keras.Input((8, 8, 3)),
                keras.layers.MaxPooling2D(),
                keras.layers.BatchNormalization(),
                keras.layers.Conv2D(4, 3),
                keras.layers.BatchNormalization(),
            ]
        )
    )
    folded = fold_batch_norms(model, on_unfoldable="keep")
    assert names(folded) == ["MaxPooling2D", "BatchNormalization", "Conv2D"]
    assert_same_outputs(model, folded, np.random.default_rng(3).normal(size=(4, 8, 8, 3)).astype("float32"))


@pytest.mark.parametrize(
    "layers, reason",
    [
        (
            [keras.layers.MaxPooling2D(), keras.layers.BatchNormalization()],
            "its input comes from 'max_pooling2d.*' \\(MaxPooling2D\\), not a Dense/Conv1D/Conv2D/Conv3D/DepthwiseConv",
        ),
        (
            [keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.BatchNormalization()],
            "'conv2d.*' \\(Conv2D\\) applies an activation before it",
        ),
        (
            [keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(axis=1)],
            "it normalizes axis 1, not the channel axis 3",
        ),
        ([keras.layers.BatchNormalization()], "its input is a model input"),
    ],
)
def test_rejects_a_batch_norm_whose_input_is_not_a_conv_or_dense(layers, reason):
    model = keras.Sequential([keras.Input((8, 8, 3)), *layers])
    with pytest.raises(ValueError, match=f"Argument `model`: BatchNormalization '.*' cannot be folded: {reason}"):
        fold_batch_norms(model)


def test_rejects_bad_arguments():
    with pytest.raises(
        ValueError, match="Argument `on_unfoldable` must be one of 'raise', 'keep'. Received: on_unfoldable='skip'"
    ):
        fold_batch_norms(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), on_unfoldable="skip")
    with pytest.raises(TypeError,
                       match=r"Argument `model` must be a keras.Model. Received: model='model.keras' of type str"):
        fold_batch_norms("model.keras")
