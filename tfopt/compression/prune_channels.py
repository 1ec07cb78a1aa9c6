"""prune_channels: a smaller dense model with the least important filters/units of each layer removed."""

import math

import numpy as np

from tfopt import _checks
from tfopt.compression import _channel_graph, _channel_surgery
from tfopt.compression.channel_importance import CRITERIA, layer_scores

__all__ = ["prune_channels"]


def prune_channels(model, amount=0.5, criterion="l1", min_channels=1, round_to=None, skip=()):
    """Returns a new Keras model with fewer filters/units: the lowest-scoring channels removed (structured pruning).

    Unlike magnitude pruning, which leaves zeros in dense kernels, this returns a *smaller dense model*: fewer
    parameters, fewer multiply-accumulates, lower latency on any hardware. Use it on a trained model, then
    fine-tune the result for a few epochs (accuracy drops at once and recovers with training); train with
    `tfopt.regularizers.GroupLasso` (see `add_regularizer`) first so the removed channels matter little, or prune
    gradually inside `fit` with `tfopt.callbacks.StructuredPruning`.

    Dependencies are followed as Torch-Pruning does: removing an output channel of a Conv/Dense/SeparableConv also
    removes the matching input slice of every layer that reads it (the next Conv/Dense kernel, the
    BatchNormalization statistics, a DepthwiseConv's filter, the rows of a Dense after Flatten, the part of a
    Concatenate), and channels joined by Add/Subtract/Multiply/Average/Maximum/Minimum form one *coupled group*,
    scored once and pruned together. The model's outputs and inputs keep their size. Sequential models stay
    Sequential; the original model is not changed. Supported: Conv1D/2D/3D, Dense, DepthwiseConv1D/2D,
    SeparableConv1D/2D, BatchNormalization, activations, dropout, pooling, global pooling, padding, Flatten,
    merges and Concatenate (channels_last). Any other layer raises a ValueError naming it, unless it is in `skip`.

    In each group of n channels, with amount a, k = n - floor(a n) channels are kept (rounded up to a multiple of
    `round_to`, at most n), the k with the highest group score:

        score_group[c] = sum over the group's layers l of  s_l[c] / mean(s_l)

    with s_l the layer's `channel_importance` under `criterion` (for "bn_gamma", |gamma| of the
    BatchNormalizations that normalize the group; a group without one is scored by l1). Ties keep the lower
    index.

    Args:
        model: a built Sequential or functional `keras.Model`.
        amount: the fraction of channels to remove, in [0, 1): one number for every layer, or a dict
            `{layer name: fraction}` for some Conv/Dense/SeparableConv layers (coupled layers take the largest
            fraction given for any of them). Default 0.5.
        criterion: "l1" (default), "l2" or "bn_gamma".
        min_channels: a group never keeps fewer channels; asking for fewer raises a ValueError. Default 1.
        round_to: keep a multiple of this many channels (e.g. 8 for SIMD/tensor-core friendly widths), or None.
        skip: names of layers to leave as they are: a Conv/Dense in `skip` keeps its output channels (and its
            coupled group too); another layer the pruning cannot follow is then left as is, with every channel it
            reads or writes kept.

    Returns:
        A new, uncompiled `keras.Model` of the same class with the pruned layers.

    References:
        Li et al., "Pruning Filters for Efficient ConvNets", 2017, https://arxiv.org/abs/1608.08710;
        Fang et al., "DepGraph: Towards Any Structural Pruning" (Torch-Pruning), 2023,
        https://arxiv.org/abs/2301.12900
    """
    _checks.choice("criterion", criterion, CRITERIA)
    min_channels = _checks.integer("min_channels", min_channels, 1)
    if round_to is not None:
        round_to = _checks.integer("round_to", round_to, 1)
    skip = _check_skip(skip)
    _check_amount(amount)
    graph = _channel_graph.ChannelGraph(model, skip)
    amounts = group_amounts(graph, amount)
    keep = choose_channels(graph, amounts, criterion, min_channels, round_to)
    return _channel_surgery.rebuild(graph, keep)


def _check_skip(skip):
    if isinstance(skip, str) or not all(isinstance(s, str) for s in skip):
        raise TypeError(f"Argument `skip` must be a list of layer names. Received: skip={skip!r}")
    return tuple(skip)


def _check_amount(amount):
    if isinstance(amount, dict):
        for name, value in amount.items():
            _checks.number(f"amount[{name!r}]", value, 0.0, 1.0, high_open=True)
    else:
        _checks.number("amount", amount, 0.0, 1.0, high_open=True)


def group_amounts(graph, amount):
    """`{root group: fraction to remove}` for the groups that may be pruned (pinned groups are left out)."""
    pinned = graph.pinned_roots()
    if not isinstance(amount, dict):
        return {root: float(amount) for root in graph.roots() if root not in pinned and graph.group_layers(root)}
    names = {layer.name for layer in graph.layers()}
    missing = sorted(set(amount) - names)
    if missing:
        raise ValueError(f"Argument `amount` names layers that are not in model {graph.model.name!r}: {missing}. "
                         f"Its layers: {sorted(names)}")
    result = {}
    for name, value in amount.items():
        if graph.kind.get(name) != "mixing":
            raise ValueError(f"Argument `amount`: layer {name!r} ({type(graph.layer_by_name(name)).__name__}) has no "
                             "output channels of its own to prune; name Conv/Dense/SeparableConv layers.")
        root = graph.group_of(name)
        if root in pinned:
            if value > 0:
                raise ValueError(f"Argument `amount`: the output channels of layer {name!r} cannot be pruned: "
                                 f"{graph.pinned_by.get(_pin_reason(graph, root), 'they must keep their size')}.")
            continue
        result[root] = max(result.get(root, 0.0), float(value))
    return result


def _pin_reason(graph, root):
    for gid in graph.pins:
        if graph.find(gid) == root:
            return gid
    return root


def group_scores(graph, criterion):
    """`{root group: float64 scores of its channels}` for every group with layers of its own."""
    scores = {}
    for root in graph.roots():
        layers = graph.group_layers(root)
        if not layers:
            continue
        total = np.zeros(graph.size[root])
        if criterion == "bn_gamma":
            total = _bn_scores(graph, root)
        if criterion != "bn_gamma" or total is None:
            total = np.zeros(graph.size[root])
            for name in layers:
                total += _normalized(layer_scores(graph.layer_by_name(name), "l1" if criterion == "bn_gamma"
                                                  else criterion))
        scores[root] = total
    return scores


def _normalized(score):
    score = np.asarray(score, "float64")
    mean = score.mean() if score.size else 0.0
    return score / mean if mean > 0 else score


def _bn_scores(graph, root):
    total, found = np.zeros(graph.size[root]), False
    for layer in graph.layers():
        if graph.kind.get(layer.name) != "bn" or not layer.scale:
            continue
        gids, chans = graph.layouts[layer.name]
        roots = np.array([graph.find(int(g)) for g in gids])
        where = roots == root
        if where.any():
            gamma = _normalized(layer_scores(layer, "bn_gamma"))
            np.add.at(total, chans[where], gamma[where])
            found = True
    return total if found else None


def kept_count(n, amount, min_channels, round_to, layers):
    """How many of n channels stay when a fraction `amount` is removed; ValueError below `min_channels`."""
    k = n - math.floor(amount * n + 1e-9)
    if round_to:
        k = min(n, math.ceil(k / round_to) * round_to)
    if k < min(min_channels, n) or k < 1:
        raise ValueError(
            f"Argument `min_channels`: pruning {amount:.0%} of the {n} channels of layer(s) {layers} would leave "
            f"{k}, fewer than min_channels={min_channels}. Lower `amount` for them or `min_channels`."
        )
    return k


def choose_channels(graph, amounts, criterion, min_channels, round_to, scores=None):
    """`{root: keep mask}`: for each group in `amounts`, the channels with the highest scores."""
    scores = group_scores(graph, criterion) if scores is None else scores
    keep = {}
    for root, amount in amounts.items():
        n = graph.size[root]
        k = kept_count(n, amount, min_channels, round_to, graph.group_layers(root))
        order = np.argsort(-scores[root], kind="stable")
        mask = np.zeros(n, bool)
        mask[order[:k]] = True
        keep[root] = mask
    return keep
