"""PruneLowMagnitude as a layer: config round trip, the step counts only training calls, custom layers through
the protocol, and the wrapper's own argument errors."""

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.compression import ConstantSparsity, PolynomialDecay, strip_pruning
from tfopt.layers import PrunableLayer, PruneLowMagnitude

pytestmark = pytest.mark.backend_agnostic


def test_config_round_trip():
    wrapper = PruneLowMagnitude(keras.layers.Dense(4), PolynomialDecay(0.1, 0.7, 2, 30, frequency=4),
                                block_size=(2, 1), name="w")
    config = wrapper.get_config()
    rebuilt = PruneLowMagnitude.from_config(config)
    assert rebuilt.get_config() == config
    assert type(rebuilt.pruning_schedule) is PolynomialDecay and rebuilt.block_size == (2, 1)
    assert keras.layers.deserialize(keras.layers.serialize(wrapper)).get_config() == config


def test_only_training_calls_advance_the_step():
    wrapper = PruneLowMagnitude(keras.layers.Dense(4), ConstantSparsity(0.5, 2, frequency=1))
    x = np.ones((2, 6), "float32")
    wrapper(x, training=False)
    wrapper(x)
    assert int(ops.convert_to_numpy(wrapper.pruning_step)) == 0
    wrapper(x, training=True)
    assert int(ops.convert_to_numpy(wrapper.pruning_step)) == 1
    assert float(np.mean(ops.convert_to_numpy(wrapper.masks[0]))) == 1.0  # begin_step 2: not yet
    wrapper(x, training=True)
    assert float(np.mean(ops.convert_to_numpy(wrapper.masks[0]))) == 0.5


class Scale(keras.layers.Layer, PrunableLayer):
    """A custom layer that opts in: a matrix product with a prunable matrix and an unpruned offset."""

    def build(self, input_shape):
        self.matrix = self.add_weight(shape=(input_shape[-1], 8), initializer="random_normal")
        self.offset = self.add_weight(shape=(8,), initializer="ones")

    def call(self, x):
        return x @ self.matrix + self.offset

    def get_prunable_weights(self):
        return [self.matrix]


def test_a_custom_layer_is_pruned_through_the_protocol():
    wrapper = PruneLowMagnitude(Scale(), ConstantSparsity(0.75, 1, frequency=1), sparsity_m_by_n=None)
    model = keras.Sequential([keras.Input((8,)), wrapper])
    model.compile(keras.optimizers.SGD(0.01), "mse")
    model.fit(np.ones((4, 8)), np.ones((4, 8)), batch_size=4, verbose=0)
    stripped = strip_pruning(model)
    assert type(stripped.layers[0]) is Scale
    assert np.count_nonzero(ops.convert_to_numpy(stripped.layers[0].matrix)) == 16
    assert np.count_nonzero(ops.convert_to_numpy(stripped.layers[0].offset)) == 8


def test_n_m_on_a_custom_layer_groups_along_axis_minus_two():
    wrapper = PruneLowMagnitude(Scale(), ConstantSparsity(0.5, 1, frequency=1), sparsity_m_by_n=(2, 4))
    wrapper(np.ones((1, 8), "float32"), training=True)
    mask = ops.convert_to_numpy(wrapper.masks[0])
    assert np.all(mask.reshape(2, 4, 8).sum(axis=1) == 2)


def test_a_layer_without_the_protocol_is_named_in_the_error():
    with pytest.raises(ValueError, match=r"Layer 'norm' \(LayerNormalization\) cannot be pruned"):
        PruneLowMagnitude(keras.layers.LayerNormalization(name="norm"))


def test_wrapping_twice_and_non_layers_are_errors():
    wrapper = PruneLowMagnitude(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="Argument `layer` must not be pruned twice"):
        PruneLowMagnitude(wrapper)
    with pytest.raises(TypeError, match="Argument `layer` must be a keras.layers.Layer. Received: layer=3"):
        PruneLowMagnitude(3)
