"""Cloning a Sequential/functional model with some layers wrapped (clustering, QAT): the shared mechanics."""

import keras
import numpy as np


def clone_with_wrappers(model, should_wrap, make_wrapper):
    """Clones `model`, replacing each layer for which `should_wrap(layer)` holds by `make_wrapper(layer, fresh)`.

    `fresh` is a new copy of the layer, built and holding the original's weights; every other layer of the clone
    receives its original's weights too, so the clone computes what `model` computes until it trains.
    """
    wrapped = set()

    def clone(layer):
        fresh = layer.__class__.from_config(layer.get_config())
        if not should_wrap(layer):
            return fresh
        build_config = layer.get_build_config()
        if build_config:
            fresh.build_from_config(build_config)
        fresh.set_weights(layer.get_weights())
        wrapper = make_wrapper(layer, fresh)
        wrapped.add(id(wrapper))
        return wrapper

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        if id(layer) not in wrapped and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy


def has_zeros(weights):
    """Whether any of `weights` (variables or arrays) holds an exact zero: a pruned kernel whose zeros to keep."""
    return any(np.any(keras.ops.convert_to_numpy(w) == 0) for w in weights)
