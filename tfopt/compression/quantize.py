"""quantize_model: prepares a Keras model for quantization-aware training (QAT) and a full-integer TFLite export."""

import keras

from tfopt import _checks
from tfopt.compression import _model_graph
from tfopt.compression.fold import fold_batch_norms
from tfopt.compression.prune import strip_pruning
from tfopt.layers import quantizable_layer
from tfopt.layers.quantize_wrapper import _FIXED_RANGE, QuantizeWrapper, activation_name

__all__ = ["quantize_model"]

# Layers that only move, select or pool values: their int8 output keeps the input's scale, so they need no quantizer.
_PASS_THROUGH = (
    keras.layers.InputLayer,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.Identity,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.Softmax,
)
# Weightless layers that change the range of values: wrapped with an output quantizer.
_ACTIVATIONS = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)
_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
)


def _role(layer):
    """ "wrap" (gets a QuantizeWrapper), "pass" (no quantizer needed) or "unsupported"."""
    if isinstance(layer, QuantizeWrapper):
        raise ValueError(f"Argument `model` is already prepared for QAT: layer {layer.name!r} is a QuantizeWrapper")
    if quantizable_layer.supports(layer):
        return "wrap"
    if isinstance(layer, keras.layers.Activation) and activation_name(layer.activation) in (*_FIXED_RANGE, "linear"):
        return "pass"
    if isinstance(layer, (*_ACTIVATIONS, *_MERGES)):
        return "wrap"
    if isinstance(layer, _PASS_THROUGH):
        return "pass"
    return "unsupported"


def _strip_pruning_wrappers(model):
    """A pruned model still wrapped for pruning is stripped first (its zeros are then kept by the QAT masks)."""
    if not any("prun" in type(layer).__name__.lower() for layer in model.layers):
        return model

    return strip_pruning(model)


def quantize_model(model, *, skip_unsupported=False, preserve_sparsity="auto", ema_decay=0.99, fold_bn=True):
    """Returns a copy of `model` ready for quantization-aware training: each supported layer in a `QuantizeWrapper`.

    Fine-tune the result with `compile`/`fit` (a few epochs at a small learning rate, from a trained float
    model), then write a full-integer file with `export_tflite(qat_model, path, quantization="int8")`, which needs
    no representative data: the QAT model carries its own activation ranges. Weights are fake-quantized to int8
    per output channel (symmetric), activations to int8 per tensor with moving-average ranges (see
    `QuantizeWrapper` for the math); the int8 file computes the same integers as the fine-tuned model.

    Layers: Dense, Conv1D/2D/3D and DepthwiseConv1D/2D are wrapped with their weights; activation layers and
    Add/Subtract/Multiply/Average/Maximum/Minimum/Concatenate get an output quantizer; pooling, Flatten, Reshape,
    Dropout, padding, cropping and softmax/sigmoid/tanh activations pass through (their int8 output keeps the
    input's scale or a fixed range). A BatchNormalization after a Conv/Dense is folded into it first
    (`fold_batch_norms`). A custom layer takes part by implementing `tfopt.layers.QuantizableLayer`. Any other
    layer is an error, or stays in float when `skip_unsupported=True` (the layer after it then quantizes its
    input again; a model with float layers cannot be exported as full-integer int8).

    A pruned model keeps its zeros (sparsity-preserving QAT): with `preserve_sparsity="auto"` each kernel that has
    exactly-zero entries gets a fixed mask of its non-zeros, and int8 rounding maps 0 to 0. A model still wrapped
    for pruning is stripped first.

    Args:
        model: a built Sequential or functional `keras.Model` (trained, for best results).
        skip_unsupported: leave unsupported layers in float instead of raising. Default False.
        preserve_sparsity: "auto" (default; mask the kernels that contain zeros), True (mask every kernel) or
            False (no masks: zeros may grow back during fine-tuning).
        ema_decay: decay of the activation ranges' moving averages, in [0, 1). Default 0.99.
        fold_bn: fold each BatchNormalization that follows a Conv/Dense into it before wrapping. Default True.

    Returns:
        A new, uncompiled `keras.Model` with the same weights, wrapped for QAT.

    References:
        - Jacob et al., 2018, "Quantization and Training of Neural Networks for Efficient
          Integer-Arithmetic-Only Inference", https://arxiv.org/abs/1712.05877
    """
    _model_graph.check_model(model)
    if preserve_sparsity not in ("auto", True, False):
        raise ValueError(
            f"Argument `preserve_sparsity` must be one of 'auto', True, False. Received: "
            f"preserve_sparsity={preserve_sparsity!r}"
        )
    _checks.number("ema_decay", ema_decay, 0.0, 1.0, high_open=True)
    model = _strip_pruning_wrappers(model)
    if fold_bn:
        model = fold_batch_norms(model, on_unfoldable="keep")

    roles = {layer.name: _role(layer) for layer in model.layers}
    unsupported = [
        f"{name!r} ({type(model.get_layer(name)).__name__})" for name, r in roles.items() if r == "unsupported"
    ]
    if unsupported and not skip_unsupported:
        raise ValueError(
            f"Argument `model` has layers quantization-aware training does not support: {', '.join(unsupported)}. "
            "Supported: Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, activation, merge, pooling and reshaping layers, "
            "and layers implementing tfopt.layers.QuantizableLayer; pass skip_unsupported=True to keep the others "
            "in float."
        )

    # Which layers see float inputs: those get an input quantizer. A layer's output is quantized when it is
    # wrapped, or passes through values that all were.
    inbound, _ = _model_graph.layer_calls(model)
    quantized, quantize_inputs = {}, {}
    for name, calls in inbound.items():
        sources = [source for call in calls for source in call]
        inputs_quantized = bool(sources) and all(quantized.get(source, False) for source in sources)
        role = roles.get(name, "pass")
        if role == "wrap":
            quantize_inputs[name] = not inputs_quantized
            quantized[name] = True
        else:
            quantized[name] = role == "pass" and inputs_quantized and name in roles

    def make_wrapper(layer, fresh):
        sparse = quantizable_layer.has_zeros(_kernels(fresh)) if preserve_sparsity == "auto" else preserve_sparsity
        return QuantizeWrapper(
            fresh,
            quantize_inputs=quantize_inputs[layer.name],
            preserve_sparsity=sparse,
            ema_decay=ema_decay,
            name=f"quant_{layer.name}",
        )

    return _model_graph.clone_with_wrappers(model, lambda layer: roles[layer.name] == "wrap", make_wrapper)


def _kernels(layer):
    if not quantizable_layer.supports(layer):
        return []
    return [getattr(layer, name) for name in quantizable_layer.quantizable_weights(layer)]
