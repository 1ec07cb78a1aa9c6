"""The channel dependencies of a Sequential or functional model: which channels must be removed together.

Shared by `channel_importance`, `prune_channels`, `remove_dead_channels` and `tfopt.callbacks.StructuredPruning`;
the graph itself is read by `_model_graph`, dead channels are found in `remove_dead_channels`, and models are cut
to the kept channels by `_channel_surgery`.

Every tensor's last axis (channels_last) is described by its *layout*: for each position, the channel group and
the channel inside it. A Conv/Dense/SeparableConv starts a new group (its output channels); BatchNormalization,
activations, dropout, pooling and padding pass their input's layout on; a DepthwiseConv repeats each input channel
`depth_multiplier` times; Flatten tiles the layout once per spatial position; Concatenate (on the channel axis)
joins layouts; Add/Subtract/Multiply/Average/Maximum/Minimum (and Concatenate on another axis) *couple* the
groups of their inputs, position by position, into one group whose channels are removed together. A group is
*pinned* (never pruned) when it reaches a model output or comes from a model input or from a layer the graph
cannot follow (passed in `skip`).

"""

import math

import keras
import numpy as np

from tfopt.compression import _model_graph

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


class ChannelGraph:
    """The layouts, coupled groups and pinned groups of a model; see the module docstring."""

    def __init__(self, model, skip=()):
        _model_graph.check_model(model)
        self.model = model
        self.skip = set(skip)
        self.order = _model_graph.topology(model)
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
        for name in _model_graph.output_names(model):
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
        if isinstance(layer, (L.InputLayer, _model_graph.SequentialInput)):
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
        return [layer for layer, _ in self.order if not isinstance(layer, _model_graph.SequentialInput)]

    def readers(self):
        """`[(layer name, tensor name)]` for every layer that mixes the channels it reads (Conv/Dense/Separable)."""
        return [(layer.name, s) for layer, sources in self.order if self.kind.get(layer.name) == "mixing"
                for s in sources]
