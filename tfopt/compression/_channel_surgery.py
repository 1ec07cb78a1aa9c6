"""Channel surgery: a model cut down to the channels a `ChannelGraph` keeps (a new, smaller dense model from a
config with fewer `filters`/`units` and the sliced weights; a Sequential model stays Sequential), and the 0/1
masks that zero the dropped channels in place during training."""

import keras
import numpy as np

from tfopt.compression import _model_graph
from tfopt.compression._channel_graph import SEPARABLE

L = keras.layers


def sliced_weights(layer, kind, in_keep, out_keep):
    """The layer's weights (get_weights order) with the kept input positions and output positions."""
    values = layer.get_weights()
    in_idx = None if in_keep is None else np.flatnonzero(in_keep)
    out_idx = None if out_keep is None else np.flatnonzero(out_keep)
    if kind == "mixing" and isinstance(layer, SEPARABLE):
        m = layer.depth_multiplier
        depthwise, pointwise = values[0], values[1]
        depthwise = np.take(depthwise, in_idx, axis=-2)
        mid = np.flatnonzero(np.repeat(in_keep, m))
        pointwise = np.take(np.take(pointwise, mid, axis=-2), out_idx, axis=-1)
        rest = [v[out_idx] for v in values[2:]]
        return [depthwise, pointwise, *rest]
    if kind == "mixing":
        kernel = np.take(np.take(values[0], in_idx, axis=-2), out_idx, axis=-1)
        return [kernel, *[v[out_idx] for v in values[1:]]]
    if kind == "depthwise":
        kernel = np.take(values[0], in_idx, axis=-2)
        m = values[0].shape[-1]
        rest = [v.reshape(-1, m)[in_idx].reshape(-1) for v in values[1:]]
        return [kernel, *rest]
    if kind == "bn":
        return [v[out_idx] for v in values]
    return values


def rebuild(graph, keep):
    """A new model with, for every root group in `keep`, only the channels where `keep[root]` is True."""
    model = graph.model
    config = model.get_config()
    entries = config["layers"]
    new_sizes, plan = {}, {}
    for layer, sources in graph.order:
        kind = graph.kind.get(layer.name)
        layout = graph.layouts[layer.name]
        out_keep = graph.mask(layout, keep)
        in_keep = graph.mask(graph.layouts[sources[0]], keep) if sources else None
        plan[layer.name] = (kind, in_keep, out_keep)
        if kind == "mixing":
            new_sizes[layer.name] = int(out_keep.sum())
    zeros = keras.saving.serialize_keras_object(keras.initializers.Zeros())
    initializers = {}
    for entry in entries:
        entry.pop("build_config", None)
        name = _model_graph.entry_name(entry)
        if name in new_sizes:
            key = "units" if "units" in entry["config"] else "filters"
            entry["config"][key] = new_sizes[name]
        # Every weight is overwritten below: build with zeros (random initializers cost a compilation per shape
        # under JAX), then give each layer its own initializers back, so its config is the original's.
        keys = [k for k in entry["config"] if k.endswith("_initializer") and entry["config"][k] is not None]
        initializers[name] = keys
        for key in keys:
            entry["config"][key] = zeros
    new = _model_graph.from_config(model, config)
    for layer in new.layers:
        original = graph.layer_by_name(layer.name) if not isinstance(layer, L.InputLayer) else None
        for key in initializers.get(layer.name, []):
            if hasattr(original, key):
                setattr(layer, key, getattr(original, key))
        if original is None or not layer.weights:
            continue
        kind, in_keep, out_keep = plan[layer.name]
        layer.set_weights(sliced_weights(original, kind, in_keep, out_keep))
    return new


def channel_masks(graph, keep):
    """`[(variable, 0/1 float mask of its shape)]`: multiplying each variable by its mask makes the channels that
    `keep` drops dead (the producers' kernel columns and biases, DepthwiseConv filters and biases, BatchNorm gamma
    and beta), so `remove_dead_channels` then removes exactly them."""
    found = []
    for layer in graph.layers():
        kind = graph.kind.get(layer.name)
        if kind not in ("mixing", "depthwise", "bn"):
            continue
        out_keep = graph.mask(graph.layouts[layer.name], keep)
        if out_keep.all():
            continue
        if kind == "mixing":
            kernel = layer.pointwise_kernel if isinstance(layer, SEPARABLE) else layer.kernel
            variables = [(kernel, np.broadcast_to(out_keep, tuple(kernel.shape)))]
            if layer.use_bias:
                variables.append((layer.bias, out_keep))
        elif kind == "depthwise":
            shape = tuple(layer.kernel.shape)
            variables = [(layer.kernel, np.broadcast_to(out_keep.reshape(shape[-2:]), shape))]
            if layer.use_bias:
                variables.append((layer.bias, out_keep))
        else:
            variables = [(v, out_keep) for v in (layer.gamma if layer.scale else None,
                                                 layer.beta if layer.center else None) if v is not None]
        found.extend((variable, np.asarray(mask, "float32")) for variable, mask in variables)
    return found
