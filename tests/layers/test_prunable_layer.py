"""PrunableLayer: the protocol is an abstract mixin; a subclass must implement get_prunable_weights."""

import keras
import pytest

from tfopt.layers import PrunableLayer
from tfopt.layers.pruning_rules import is_prunable, prunable_weights

pytestmark = pytest.mark.backend_agnostic


def test_a_subclass_without_get_prunable_weights_cannot_be_built():
    class Missing(keras.layers.Layer, PrunableLayer):
        pass

    with pytest.raises(TypeError, match="get_prunable_weights"):
        Missing()


def test_the_protocol_names_the_weights_to_prune():
    class Two(keras.layers.Layer, PrunableLayer):
        def build(self, input_shape):
            self.a = self.add_weight(shape=(4, 4))
            self.b = self.add_weight(shape=(4,))

        def get_prunable_weights(self):
            return [self.a]

    layer = Two()
    layer.build((None, 4))
    assert is_prunable(layer)
    assert prunable_weights(layer) == [(layer.a, -2)]


def test_duck_typed_layers_are_accepted_too():
    class Duck(keras.layers.Layer):
        def get_prunable_weights(self):
            return []

    assert is_prunable(Duck())
