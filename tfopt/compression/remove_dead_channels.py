"""remove_dead_channels: the lossless shrink: channels that are identically zero removed from the model."""

import numpy as np

from tfopt import _checks
from tfopt.compression import _channel_graph

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
    return _channel_graph.rebuild(graph, dead_channel_keep(graph, atol))


def dead_channel_keep(graph, atol=0.0):
    """`{root: keep mask}` over the prunable groups: the channels some layer reads a non-zero value of."""
    dead = graph.dead(atol)
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
