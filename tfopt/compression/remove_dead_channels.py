"""remove_dead_channels: the lossless shrink: channels that are identically zero removed from the model."""

import keras
import numpy as np

from tfopt import _checks
from tfopt.compression import _channel_graph, _channel_surgery

__all__ = ["remove_dead_channels"]


def remove_dead_channels(model, atol=0.0, skip=()):
    """Returns a smaller model without the channels whose output the next layers see is identically zero.

    Structured pruning inside `fit` (`tfopt.callbacks.StructuredPruning`), group lasso and network slimming leave
    whole channels at zero in a model that still has its full width; this removes them, so the model becomes
    smaller and faster while computing exactly the same function (predictions equal to the input model's up to
    float rounding, 1e-5 on unit-scale data).

    A position of a tensor is *dead* when it is zero for every input. Starting from the weights:

        Conv/Dense/SeparableConv channel c: every weight that makes c from a live input is 0, its bias is 0, and
                                            the activation maps 0 to 0 (relu, tanh, linear, ...)
        DepthwiseConv channel (c, j):       input c dead or its filter zero, and its bias 0
        BatchNormalization channel c:       gamma_c = beta_c = 0, or (input dead and beta_c = 0 and
                                            beta_c - gamma_c mean_c / sqrt(var_c + eps) = 0)
        activation / dropout / pooling:     dead where the input is (activations that map 0 to 0)
        Add/Subtract/Average/Max/Min:       dead where every input is; Multiply: where any input is

    A channel of a (coupled) group is removed when every Conv/Dense/SeparableConv that reads it reads a dead
    value; the channels of a model output or input are kept, and each group keeps at least one channel. Removing
    it then changes no output. The supported layers, `skip` and the handling of Sequential models are those of
    `prune_channels`.

    Args:
        model: a built Sequential or functional `keras.Model`.
        atol: weights with |w| <= atol count as zero. Default 0.0 (exactly zero: lossless). A positive value
            removes near-zero channels too (then the outputs change by about that much).
        skip: names of layers to leave as they are (see `prune_channels`).

    Returns:
        A new, uncompiled `keras.Model` of the same class.
    """
    atol = _checks.finite_number("atol", atol)
    if isinstance(skip, str) or not all(isinstance(s, str) for s in skip):
        raise TypeError(f"Argument `skip` must be a list of layer names. Received: skip={skip!r}")
    graph = _channel_graph.ChannelGraph(model, tuple(skip))
    return _channel_surgery.rebuild(graph, dead_channel_keep(graph, atol))


def dead_channel_keep(graph, atol=0.0):
    """`{root: keep mask}` over the prunable groups: the channels some layer reads a non-zero value of."""
    dead = dead_positions(graph, atol)
    pinned = graph.pinned_roots()
    needed = {root: np.zeros(graph.size[root], bool) for root in graph.roots() if root not in pinned}
    for _, tensor in graph.readers():
        gids, chans = graph.layouts[tensor]
        alive = ~dead[tensor]
        for gid, chan in zip(gids[alive], chans[alive]):
            root = graph.find(int(gid))
            if root in needed:
                needed[root][chan] = True
    for mask in needed.values():
        if not mask.any():
            mask[0] = True  # a layer with no channel left cannot be built
    return needed


def dead_positions(graph, atol=0.0):
    """`{layer name: bool array}`: which positions of each layer's output are identically zero for every input."""
    dead = {}
    for layer, sources in graph.order:
        kind = graph.kind.get(layer.name)
        ins = [dead[s] for s in sources]
        n = len(graph.layouts[layer.name][0])
        if kind in ("input", "opaque"):
            dead[layer.name] = np.zeros(n, bool)
        elif kind == "mixing":
            dead[layer.name] = _mixing_dead(layer, ins[0], atol)
        elif kind == "depthwise":
            dead[layer.name] = _depthwise_dead(layer, ins[0], atol)
        elif kind == "bn":
            dead[layer.name] = _bn_dead(layer, ins[0], atol)
        elif kind == "activation":
            dead[layer.name] = ins[0] & zero_preserving(layer, atol)
        elif kind == "pass":
            dead[layer.name] = ins[0]
        elif kind == "flatten":
            dead[layer.name] = np.tile(ins[0], n // max(len(ins[0]), 1))
        elif kind == "concat":
            dead[layer.name] = np.concatenate(ins)
        elif kind == "merge" and _channel_graph.MERGE.get(type(layer)) == "any":
            dead[layer.name] = np.logical_or.reduce(ins)
        else:  # merge "all", coupled concatenation
            dead[layer.name] = np.logical_and.reduce(ins)
    return dead


def weight_value(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), "float64")


def zero_preserving(function, atol=0.0):
    """Whether `function` (an activation or a weightless layer) maps zeros to zeros."""
    out = keras.ops.convert_to_numpy(function(keras.ops.zeros((1, 2), "float32")))
    return bool(np.all(np.abs(out) <= atol))


def _activation_zero(layer, atol):
    return zero_preserving(keras.activations.get(layer.activation), atol)


def _mixing_dead(layer, dead_in, atol):
    if isinstance(layer, _channel_graph.SEPARABLE):
        depthwise = weight_value(layer.depthwise_kernel)
        m = depthwise.shape[-1]
        mid_dead = np.repeat(dead_in, m) | np.all(np.abs(depthwise.reshape(-1, depthwise.shape[-2] * m)) <= atol, 0)
        kernel = weight_value(layer.pointwise_kernel)
        live = ~mid_dead
    else:
        kernel = weight_value(layer.kernel)
        live = ~dead_in
    live_kernel = np.take(kernel, np.flatnonzero(live), axis=-2)
    zero = np.all(np.abs(live_kernel.reshape(-1, kernel.shape[-1])) <= atol, axis=0)
    if layer.use_bias:
        zero &= np.abs(weight_value(layer.bias)) <= atol
    return zero & _activation_zero(layer, atol)


def _depthwise_dead(layer, dead_in, atol):
    kernel = weight_value(layer.kernel)  # (..., in, m)
    m = kernel.shape[-1]
    zero = np.all(np.abs(kernel.reshape(-1, kernel.shape[-2] * m)) <= atol, axis=0) | np.repeat(dead_in, m)
    if layer.use_bias:
        zero &= np.abs(weight_value(layer.bias)) <= atol
    return zero & _activation_zero(layer, atol)


def _bn_dead(layer, dead_in, atol):
    n = len(dead_in)
    gamma = weight_value(layer.gamma) if layer.scale else np.ones(n)
    beta = weight_value(layer.beta) if layer.center else np.zeros(n)
    mean, variance = weight_value(layer.moving_mean), weight_value(layer.moving_variance)
    # Training-mode statistics of a zero channel are 0 too, so a dead input gives `beta` then; at inference it
    # gives beta - gamma * mean / sqrt(var + eps). Both must vanish for the output to be zero in every mode.
    at_zero = beta - gamma * mean / np.sqrt(variance + layer.epsilon)
    zeroed = (np.abs(gamma) <= atol) & (np.abs(beta) <= atol)
    return zeroed | (dead_in & (np.abs(at_zero) <= atol) & (np.abs(beta) <= atol))
