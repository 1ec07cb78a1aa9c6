"""The channel dependencies of a Sequential or functional model: which channels must be removed together.

Shared by `channel_importance`, `prune_channels`, `remove_dead_channels` and `tfopt.callbacks.StructuredPruning`.

Every tensor's last axis (channels_last) is described by its *layout*: for each position, the channel group and
the channel inside it. A Conv/Dense/SeparableConv starts a new group (its output channels); BatchNormalization,
activations, dropout, pooling and padding pass their input's layout on; a DepthwiseConv repeats each input channel
`depth_multiplier` times; Flatten tiles the layout once per spatial position; Concatenate (on the channel axis)
joins layouts; Add/Subtract/Multiply/Average/Maximum/Minimum (and Concatenate on another axis) *couple* the
groups of their inputs, position by position, into one group whose channels are removed together. A group is
*pinned* (never pruned) when it reaches a model output or comes from a model input or from a layer the graph
cannot follow (passed in `skip`).

The model is read through its public config (`model.get_config()`, as `fold_batch_norms` does) and rebuilt from a
config with fewer `filters`/`units` and the sliced weights. A Sequential model stays Sequential.
"""

import math

import keras
import numpy as np

L = keras.layers


def _classes(*names):
    return tuple(getattr(L, n) for n in names if hasattr(L, n))


CONV = _classes("Conv1D", "Conv2D", "Conv3D")
DENSE = _classes("Dense")
DEPTHWISE = _classes("DepthwiseConv1D", "DepthwiseConv2D")
SEPARABLE = _classes("SeparableConv1D", "SeparableConv2D")
TRANSPOSED = _classes("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")
BATCH_NORM = _classes("BatchNormalization")
# Same layout out as in, no weights, and zero in gives zero out (activations are checked on zeros instead).
ACTIVATION = _classes("Activation", "ReLU", "LeakyReLU", "ELU")
PASS_THROUGH = _classes(
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "Identity",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
)
FLATTEN = _classes("Flatten")
# Elementwise merges: the channels at each position of every input are coupled. `dead` rule: "all" inputs zero,
# or "any" input zero (a product).
MERGE = {L.Add: "all", L.Subtract: "all", L.Average: "all", L.Maximum: "all", L.Minimum: "all", L.Multiply: "any"}
CONCATENATE = _classes("Concatenate")

SUPPORTED = (
    "Conv1D/2D/3D, Dense, DepthwiseConv1D/2D, SeparableConv1D/2D, BatchNormalization, Activation/ReLU/LeakyReLU/"
    "ELU, Dropout and noise layers, pooling, global pooling, padding, cropping, upsampling, Flatten, "
    "Add/Subtract/Multiply/Average/Maximum/Minimum and Concatenate (channels_last)"
)
MIXING = CONV + DENSE + SEPARABLE  # layers that read their input channels and make new ones


def check_model(model, argument="model"):
    """ValueError/TypeError unless `model` is a built Sequential or functional keras.Model."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `{argument}` must be a keras.Model. Received: {argument}={model!r} of type "
                        f"{type(model).__name__}")
    if not (isinstance(model, keras.Sequential) or isinstance(model, keras.Function)):
        raise ValueError(
            f"Argument `{argument}` must be a Sequential or functional keras.Model; {model.name!r} is a subclassed "
            f"model ({type(model).__name__}), whose layer graph cannot be read or rebuilt. Build it with the "
            "functional API (keras.Model(inputs, outputs)) instead."
        )
    if not model.built or not model.inputs:
        raise ValueError(f"Argument `{argument}` must be built (called on an input). Received: unbuilt {model.name!r}")


def tensor_refs(node):
    """The serialized tensors (dicts with a `keras_history` of `[layer_name, node_index, tensor_index]`) anywhere
    inside a serialized call (also used by `fold_batch_norms`)."""
    if isinstance(node, dict):
        if "keras_history" in node:
            yield node
        for value in node.values():
            yield from tensor_refs(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from tensor_refs(value)


def entry_name(entry):
    """The name of a layer entry of a functional model's config."""
    return entry.get("name") or entry["config"]["name"]


def topology(model):
    """`[(layer, [input layer names])]` in an order where every layer follows its inputs; InputLayers have [].

    Raises a ValueError for a layer called more than once (shared) or with several outputs.
    """
    config = model.get_config()
    if isinstance(model, keras.Sequential):
        if len(model.inputs) != 1:
            raise ValueError(f"Argument `model`: Sequential model {model.name!r} must have one input.")
        order = [(_SequentialInput(model.inputs[0].shape), [])]
        for layer in model.layers:
            order.append((layer, [order[-1][0].name]))
        return order
    inbound = {}
    for entry in config["layers"]:
        nodes = entry.get("inbound_nodes", [])
        name = entry_name(entry)
        if len(nodes) > 1:
            raise ValueError(f"Argument `model`: layer {name!r} is called {len(nodes)} times (a shared layer); "
                             "channel pruning needs every layer called once.")
        refs = [ref["keras_history"] for node in nodes for ref in tensor_refs(node)]
        for ref in refs:
            if ref[1] != 0 or ref[2] != 0:
                raise ValueError(f"Argument `model`: layer {name!r} reads output {ref[2]} of call {ref[1]} of "
                                 f"{ref[0]!r}; channel pruning needs layers with one call and one output.")
        inbound[name] = [ref[0] for ref in refs]
    done, order, pending = set(), [], list(inbound)
    while pending:
        progressed = False
        for name in list(pending):
            if all(source in done for source in inbound[name]):
                order.append((model.get_layer(name), inbound[name]))
                done.add(name)
                pending.remove(name)
                progressed = True
        if not progressed:
            raise ValueError(f"Argument `model`: cannot order the layers {pending} (a cycle?).")
    return order


class _SequentialInput:
    """Stands for a Sequential model's input in the layer order (Sequential.layers leaves the InputLayer out)."""

    name = "__input__"

    def __init__(self, shape):
        self.output = keras.KerasTensor(shape)


def output_names(model):
    if isinstance(model, keras.Sequential):
        return [model.layers[-1].name]
    config = model.get_config()
    outputs = config["output_layers"]
    single = bool(outputs) and isinstance(outputs[0], str)
    return [ref[0] for ref in ([outputs] if single else outputs)]


def weight_value(variable):
    return np.asarray(keras.ops.convert_to_numpy(variable), "float64")


def zero_preserving(function, atol=0.0):
    """Whether `function` (an activation or a weightless layer) maps zeros to zeros."""
    out = keras.ops.convert_to_numpy(function(keras.ops.zeros((1, 2), "float32")))
    return bool(np.all(np.abs(out) <= atol))


class ChannelGraph:
    """The layouts, coupled groups and pinned groups of a model; see the module docstring."""

    def __init__(self, model, skip=()):
        check_model(model)
        self.model = model
        self.skip = set(skip)
        self.order = topology(model)
        names = {layer.name for layer, _ in self.order}
        unknown = sorted(self.skip - names)
        if unknown:
            raise ValueError(f"Argument `skip` names layers that are not in model {model.name!r}: {unknown}. "
                             f"Its layers: {sorted(names)}")
        self.parent, self.size = [], []
        self.layouts = {}  # tensor (= layer name) -> (group ids, channel indices), one entry per channel position
        self.producers = {}  # group id -> names of the layers whose output channels make the group
        self.kind = {}  # layer name -> "input", "mixing", "depthwise", "bn", "activation", "pass", ...
        self.inputs = {}
        self.pins = []  # group ids that must keep every channel
        self.pinned_by = {}  # group id -> why (for messages)
        unsupported = []
        for layer, sources in self.order:
            self.inputs[layer.name] = sources
            why = self._add(layer, sources)
            if why is not None:
                if layer.name not in self.skip:
                    unsupported.append(f"{layer.name!r} ({type(layer).__name__}: {why})")
                    self.layouts[layer.name] = None
                    continue
                self._opaque(layer, sources)
        if unsupported:
            raise ValueError(
                f"Argument `model`: channel pruning cannot follow the layer(s) {', '.join(unsupported)}. It follows "
                f"{SUPPORTED}. Pass their names in `skip=` to leave them (and the channels they touch) unpruned."
            )
        for name in output_names(model):
            self._pin(self.layouts[name], f"it reaches the model output {name!r}")

    # Union-find over groups.
    def _new_group(self, size, producer=None):
        self.parent.append(len(self.parent))
        self.size.append(int(size))
        gid = len(self.parent) - 1
        self.producers[gid] = [producer] if producer else []
        return (np.full(int(size), gid, "int64"), np.arange(int(size), dtype="int64"))

    def find(self, gid):
        while self.parent[gid] != gid:
            self.parent[gid] = self.parent[self.parent[gid]]
            gid = self.parent[gid]
        return gid

    def _union(self, a, b, where):
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        if self.size[a] != self.size[b]:
            raise ValueError(where)
        self.parent[b] = a
        self.producers[a] = self.producers[a] + self.producers.pop(b, [])

    def _pin(self, layout, why):
        if layout is None:
            return
        for gid in np.unique(layout[0]):
            self.pins.append(int(gid))
            self.pinned_by.setdefault(int(gid), why)

    def _channels(self, layer, sources):
        return [self.layouts[s] for s in sources]

    def _opaque(self, layer, sources):
        """A skipped layer the graph cannot follow: its inputs and its output keep all their channels."""
        for source in sources:
            self._pin(self.layouts[source], f"it feeds the skipped layer {layer.name!r}")
        self.kind[layer.name] = "opaque"
        shape = layer.output.shape
        self.layouts[layer.name] = self._new_group(shape[-1] if len(shape) > 1 else 1)
        self._pin(self.layouts[layer.name], f"it comes from the skipped layer {layer.name!r}")

    def _add(self, layer, sources):
        """Records `layer`'s output layout; returns None, or why the layer is not supported."""
        if isinstance(layer, (L.InputLayer, _SequentialInput)):
            self.kind[layer.name] = "input"
            shape = layer.output.shape
            self.layouts[layer.name] = self._new_group(shape[-1] if len(shape) > 1 else 1)
            self._pin(self.layouts[layer.name], f"it is the model input {layer.name!r}")
            return None
        ins = self._channels(layer, sources)
        if any(x is None for x in ins):
            return "it reads an unsupported layer"
        if getattr(layer, "data_format", "channels_last") == "channels_first":
            return "channels_first"
        if isinstance(layer, TRANSPOSED):
            return "transposed convolutions are not followed"
        if isinstance(layer, MIXING):
            if len(ins) != 1:
                return "several inputs"
            if getattr(layer, "groups", 1) != 1:
                return f"grouped convolution (groups={layer.groups})"
            self.kind[layer.name] = "mixing"
            out = layer.units if isinstance(layer, DENSE) else layer.filters
            self.layouts[layer.name] = self._new_group(out, layer.name)
            if layer.name in self.skip:
                self._pin(self.layouts[layer.name], f"its producer {layer.name!r} is in `skip`")
            return None
        if len(ins) == 1:
            (layout,) = ins
            if isinstance(layer, DEPTHWISE):
                self.kind[layer.name] = "depthwise"
                m = layer.depth_multiplier
                self.layouts[layer.name] = (np.repeat(layout[0], m), np.repeat(layout[1], m))
                return None
            if isinstance(layer, BATCH_NORM):
                rank = len(layer.input.shape)
                axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
                if [a % rank for a in axes] != [rank - 1]:
                    return f"it normalizes axis {layer.axis}, not the channel axis"
                self.kind[layer.name] = "bn"
                self.layouts[layer.name] = layout
                return None
            if isinstance(layer, ACTIVATION):
                name = getattr(layer, "activation", None)
                name = getattr(name, "__name__", "")
                if "softmax" in name:
                    return "softmax mixes the channels"
                self.kind[layer.name] = "activation"
                self.layouts[layer.name] = layout
                return None
            if isinstance(layer, PASS_THROUGH):
                self.kind[layer.name] = "pass"
                self.layouts[layer.name] = layout
                return None
            if isinstance(layer, FLATTEN):
                shape = layer.input.shape
                positions = math.prod(shape[1:-1]) if len(shape) > 2 else 1
                if positions is None or any(d is None for d in shape[1:-1]):
                    return "its input has unknown spatial dimensions"
                self.kind[layer.name] = "flatten"
                self.layouts[layer.name] = (np.tile(layout[0], positions), np.tile(layout[1], positions))
                return None
        if isinstance(layer, CONCATENATE):
            rank = len(layer.output.shape)
            if layer.axis % rank == rank - 1:
                self.kind[layer.name] = "concat"
                self.layouts[layer.name] = (np.concatenate([x[0] for x in ins]), np.concatenate([x[1] for x in ins]))
                return None
            self._couple(layer, ins)
            self.kind[layer.name] = "couple_concat"
            self.layouts[layer.name] = ins[0]
            return None
        if type(layer) in MERGE or any(isinstance(layer, cls) for cls in MERGE):
            self._couple(layer, ins)
            self.kind[layer.name] = "merge"
            self.layouts[layer.name] = ins[0]
            return None
        return "unsupported layer type"

    def _couple(self, layer, layouts):
        first = layouts[0]
        for other in layouts[1:]:
            message = (
                f"Argument `model`: the channels joined by {type(layer).__name__} {layer.name!r} come from layers "
                "arranged differently (e.g. a concatenation on one side and one layer on the other), so they "
                f"cannot be pruned as one group. Pass {layer.name!r}'s input layers in `skip=`."
            )
            if len(other[0]) != len(first[0]) or np.any(other[1] != first[1]):
                raise ValueError(message)
            for a, b in {(int(a), int(b)) for a, b in zip(first[0], other[0])}:
                self._union(a, b, message)

    # Queries.
    def roots(self):
        return sorted({self.find(g) for g in range(len(self.parent))})

    def pinned_roots(self):
        return {self.find(g) for g in self.pins}

    def group_of(self, layer_name):
        """The root group a Conv/Dense/SeparableConv's output channels belong to."""
        return self.find(int(self.layouts[layer_name][0][0]))

    def group_layers(self, root):
        return list(self.producers.get(root, []))

    def mask(self, layout, keep):
        """The keep mask of a layout's positions, from `{root: bool array}`."""
        gids, chans = layout
        roots = np.array([self.find(int(g)) for g in gids], "int64")
        out = np.ones(len(gids), bool)
        for root in np.unique(roots):
            if int(root) in keep:
                where = roots == root
                out[where] = keep[int(root)][chans[where]]
        return out

    def layer_by_name(self, name):
        return self.model.get_layer(name)

    def layers(self):
        """The model's real layers (not the Sequential input stand-in), in order."""
        return [layer for layer, _ in self.order if not isinstance(layer, _SequentialInput)]

    # Dead channels: which positions of each tensor are identically zero for every input.
    def dead(self, atol=0.0):
        dead = {}
        for layer, sources in self.order:
            kind = self.kind.get(layer.name)
            ins = [dead[s] for s in sources]
            n = len(self.layouts[layer.name][0])
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
            elif kind == "merge" and MERGE.get(type(layer)) == "any":
                dead[layer.name] = np.logical_or.reduce(ins)
            else:  # merge "all", coupled concatenation
                dead[layer.name] = np.logical_and.reduce(ins)
        return dead

    def readers(self):
        """`[(layer name, tensor name)]` for every layer that mixes the channels it reads (Conv/Dense/Separable)."""
        return [(layer.name, s) for layer, sources in self.order if self.kind.get(layer.name) == "mixing"
                for s in sources]


def _activation_zero(layer, atol):
    return zero_preserving(keras.activations.get(layer.activation), atol)


def _mixing_dead(layer, dead_in, atol):
    if isinstance(layer, SEPARABLE):
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
        name = entry_name(entry)
        if name in new_sizes:
            key = "units" if "units" in entry["config"] else "filters"
            entry["config"][key] = new_sizes[name]
        # Every weight is overwritten below: build with zeros (random initializers cost a compilation per shape
        # under JAX), then give each layer its own initializers back, so its config is the original's.
        keys = [k for k in entry["config"] if k.endswith("_initializer") and entry["config"][k] is not None]
        initializers[name] = keys
        for key in keys:
            entry["config"][key] = zeros
    if isinstance(model, keras.Sequential):
        new = keras.Sequential.from_config(config)
    else:
        new = keras.Model.from_config(config)
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
