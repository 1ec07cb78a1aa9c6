"""Which layers tfopt can prune, and which of their weights: the built-in Keras layers with the attributes that
hold their prunable weights and the input-channel axis N:M groups along, plus any layer with a
`get_prunable_weights()` method (`tfopt.layers.PrunableLayer`)."""

import keras

# Built-in layers: which attributes hold the weights to prune, and the input-channel axis N:M groups along
# (the reduction axis of the layer's matrix product, the axis sparse tensor cores need).
_BUILTIN = (
    ("Dense", ("kernel",), -2),
    ("EinsumDense", ("kernel",), 0),
    ("Conv1D", ("kernel",), -2),
    ("Conv2D", ("kernel",), -2),
    ("Conv3D", ("kernel",), -2),
    ("Conv1DTranspose", ("kernel",), -1),
    ("Conv2DTranspose", ("kernel",), -1),
    ("Conv3DTranspose", ("kernel",), -1),
    ("DepthwiseConv1D", ("kernel",), -2),
    ("DepthwiseConv2D", ("kernel",), -2),
    ("SeparableConv1D", ("depthwise_kernel", "pointwise_kernel"), -2),
    ("SeparableConv2D", ("depthwise_kernel", "pointwise_kernel"), -2),
    ("Embedding", ("embeddings",), -2),
)
SUPPORTED_NAMES = ", ".join(name for name, _, _ in _BUILTIN)


def _builtin_entry(layer):
    for name, attributes, axis in _BUILTIN:
        if type(layer) is getattr(keras.layers, name):
            return attributes, axis
    for name, attributes, axis in _BUILTIN:  # subclasses of a built-in layer prune like it
        if isinstance(layer, getattr(keras.layers, name)):
            return attributes, axis
    return None


def is_prunable(layer):
    """True for the supported built-in layers and for layers with a `get_prunable_weights()` method."""
    return callable(getattr(layer, "get_prunable_weights", None)) or _builtin_entry(layer) is not None


def unsupported_message(layer):
    return (
        f"Layer {layer.name!r} ({type(layer).__name__}) cannot be pruned: tfopt prunes {SUPPORTED_NAMES}, and "
        "custom layers that implement `get_prunable_weights()` (tfopt.layers.PrunableLayer)."
    )


def prunable_weights(layer):
    """`[(variable, n_m_axis), ...]` of a built layer: the weights its wrapper masks."""
    if callable(getattr(layer, "get_prunable_weights", None)):
        found = [(v, -2 if len(v.shape) >= 2 else 0) for v in layer.get_prunable_weights()]
    else:
        entry = _builtin_entry(layer)
        if entry is None:
            raise ValueError(unsupported_message(layer))
        attributes, axis = entry
        found = [(getattr(layer, attribute), axis) for attribute in attributes]
    for variable, _ in found:
        if not isinstance(variable, keras.Variable):
            raise ValueError(
                f"Layer {layer.name!r} ({type(layer).__name__}) cannot be pruned: its prunable weight is a "
                f"{type(variable).__name__}, not a keras.Variable (LoRA or quantized layers are not prunable)."
            )
    return found
