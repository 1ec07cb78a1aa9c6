"""QuantizeAnnotate: computes as its layer, keeps its config through get_config and `.keras` files, and is checked."""

import keras
import numpy as np
import pytest

from tfopt.layers import Default8BitQuantizeConfig, QuantizeAnnotate

pytestmark = pytest.mark.backend_agnostic


def test_computes_exactly_as_the_layer():
    keras.utils.set_random_seed(0)
    dense = keras.layers.Dense(3, activation="relu")
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    expected = keras.ops.convert_to_numpy(dense(x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(QuantizeAnnotate(dense)(x)), expected)


def test_a_first_layer_given_input_shape_still_builds_its_sequential_model():
    model = keras.Sequential([QuantizeAnnotate(keras.layers.Dense(3, input_shape=(5,))), keras.layers.Flatten()])
    assert model.built and tuple(model.inputs[0].shape) == (None, 5)


def test_saves_and_loads_with_its_config(tmp_path):
    config = Default8BitQuantizeConfig(["kernel"], [], True)
    model = keras.Sequential([keras.Input((5,)), QuantizeAnnotate(keras.layers.Dense(3), config, name="marked")])
    model.save(tmp_path / "annotated.keras")
    loaded = keras.models.load_model(tmp_path / "annotated.keras").get_layer("marked")
    assert isinstance(loaded, QuantizeAnnotate) and loaded.quantize_config.get_config() == config.get_config()
    x = np.ones((2, 5), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(
        model.get_layer("marked")(x)))


def test_rejects_bad_arguments():
    with pytest.raises(TypeError, match="Argument `layer` must be a keras.layers.Layer. Received: layer=3"):
        QuantizeAnnotate(3)
    with pytest.raises(TypeError, match="Argument `quantize_config` must be a tfopt.layers.QuantizeConfig or None"):
        QuantizeAnnotate(keras.layers.Dense(2), quantize_config=object())
    with pytest.raises(ValueError, match="Argument `layer` must not be annotated twice"):
        QuantizeAnnotate(QuantizeAnnotate(keras.layers.Dense(2)))
