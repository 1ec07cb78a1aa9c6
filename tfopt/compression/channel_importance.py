"""channel_importance: how much each output channel of each layer matters, by weight norm or BatchNorm scale."""

import keras
import numpy as np
from keras import ops

from tfopt import _checks
from tfopt.compression import _channel_graph as graph

__all__ = ["CRITERIA", "channel_importance"]

CRITERIA = ("l1", "l2", "bn_gamma")


def channel_importance(model, criterion="l1"):
    """Scores every output channel of every Conv/Dense/SeparableConv layer (or every BatchNormalization).

    Channel pruning removes the channels with the lowest scores. "l1" and "l2" are the norms of the weights that
    make each output channel (Li et al. 2017); "bn_gamma" is |gamma| of each BatchNormalization, the scale that
    network slimming drives to zero with an L1 penalty (Liu et al. 2017). For channel `c` of a layer with kernel W
    (for SeparableConv, the pointwise kernel) and of a BatchNormalization with scale gamma:

        l1[c] = sum_i |W[..., i, c]|      l2[c] = sqrt(sum_i W[..., i, c]^2)      bn_gamma[c] = |gamma[c]|

    The scores are computed with `keras.ops` (any backend) and returned as NumPy arrays.
    `tfopt.compression.prune_channels` sums them over channels that must be removed together.

    Args:
        model: a built `keras.Model` (nested models are searched too).
        criterion: "l1" (default), "l2" or "bn_gamma".

    Returns:
        A dict `{layer name: float32 array of shape (channels,)}`: the Conv/Dense/SeparableConv layers for "l1"
        and "l2", the BatchNormalization layers (with `scale=True`) for "bn_gamma".

    References:
        Li et al., "Pruning Filters for Efficient ConvNets", 2017, https://arxiv.org/abs/1608.08710;
        Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", 2017,
        https://arxiv.org/abs/1708.06519
    """
    _checks.choice("criterion", criterion, CRITERIA)
    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `model` must be a keras.Model. Received: model={model!r} of type "
                        f"{type(model).__name__}")
    if not model.built:
        raise ValueError(f"Argument `model` must be built. Received: unbuilt model {model.name!r}")
    return {layer.name: score for layer in _walk(model) if (score := layer_scores(layer, criterion)) is not None}


def layer_scores(layer, criterion):
    """One layer's channel scores (NumPy float32), or None when the criterion does not score this layer."""
    if criterion == "bn_gamma":
        if isinstance(layer, graph.BATCH_NORM) and layer.scale:
            return np.asarray(ops.convert_to_numpy(ops.abs(layer.gamma)), "float32")
        return None
    if not isinstance(layer, graph.MIXING):
        return None
    kernel = layer.pointwise_kernel if isinstance(layer, graph.SEPARABLE) else layer.kernel
    flat = ops.reshape(ops.cast(kernel, "float32"), (-1, kernel.shape[-1]))
    score = ops.sum(ops.abs(flat), axis=0) if criterion == "l1" else ops.sqrt(ops.sum(ops.square(flat), axis=0))
    return np.asarray(ops.convert_to_numpy(score), "float32")


def _walk(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer
