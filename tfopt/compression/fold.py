"""fold_batch_norms: merges each BatchNormalization into the Conv/Dense layer before it, for inference."""

import keras
import numpy as np

from tfopt import _checks
from tfopt.compression import _model_graph

__all__ = ["fold_batch_norms"]

_FOLDABLE = (
    keras.layers.Dense,
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
)
_TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)


def fold_batch_norms(model, *, on_unfoldable="raise"):
    """Returns a copy of `model` in which every BatchNormalization is merged into the layer that feeds it.

    At inference a BatchNormalization is a fixed per-channel affine map, so it merges into the preceding linear
    layer: one op less per block, and the int8 export quantizes the weights the device really uses. Fold a model
    after training (the folded model has no BatchNormalization left to train); `quantize_model` folds first.

    With `g = gamma`, `b = beta`, `mu` and `v` the moving mean and variance, `eps` the BN's epsilon, per output
    channel `c`:

        f_c = g_c / sqrt(v_c + eps)
        W'[..., c] = W[..., c] * f_c              (kernel; for a depthwise kernel, c = (input channel, multiplier))
        bias'_c = (bias_c - mu_c) * f_c + b_c     (bias 0 where the layer had none)

    Outputs are equal up to float rounding (max abs difference <= 1e-5 on unit-scale data).

    A BatchNormalization can be folded when its input is the only output of a Dense, Conv1D/2D/3D or
    DepthwiseConv1D/2D with a linear activation that feeds nothing else, and it normalizes that layer's channel
    axis. Sequential and functional models are handled (layers of nested models are left as they are); the result
    is not compiled.

    Args:
        model: a built Sequential or functional `keras.Model`.
        on_unfoldable: what to do with a BatchNormalization that cannot be folded: "raise" (default) a
            `ValueError` that names it and says why, or "keep" it as it is.

    Returns:
        A new `keras.Model` with the same outputs and without the folded BatchNormalization layers.

    References:
        - Jacob et al., 2018, "Quantization and Training of Neural Networks for Efficient
          Integer-Arithmetic-Only Inference" (section 3.2, batch normalization folding),
          https://arxiv.org/abs/1712.05877
    """
    _checks.choice("on_unfoldable", on_unfoldable, ("raise", "keep"))
    _model_graph.check_model(model)
    inbound, consumers = _model_graph.layer_calls(model)
    folds = {}  # BatchNormalization name -> name of the layer it folds into
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        producer, reason = _fold_target(model, layer, inbound, consumers)
        if reason is None:
            folds[layer.name] = producer
        elif on_unfoldable == "raise":
            raise ValueError(
                f"Argument `model`: BatchNormalization {layer.name!r} cannot be folded: {reason}. Only a "
                "BatchNormalization whose input is a Dense/Conv/DepthwiseConv layer (linear activation, feeding "
                "nothing else) can; pass on_unfoldable='keep' to leave such layers in place."
            )
    return _rebuild(model, folds)


def _fold_target(model, bn, inbound, consumers):
    """`(producer_name, None)` when `bn` folds into its input layer, else `(None, reason)`."""
    calls = inbound.get(bn.name, [])
    if len(calls) != 1 or len(calls[0]) != 1:
        return None, "it is called more than once or on several inputs"
    source = calls[0][0]
    try:
        producer = model.get_layer(source)
    except ValueError:
        producer = None
    if producer is None or isinstance(producer, keras.layers.InputLayer):
        return None, "its input is a model input, not a Conv/Dense layer"
    kind = type(producer).__name__
    if not isinstance(producer, _FOLDABLE) or isinstance(producer, _TRANSPOSED):
        return None, f"its input comes from {source!r} ({kind}), not a Dense/Conv1D/Conv2D/Conv3D/DepthwiseConv layer"
    if keras.activations.serialize(producer.activation) != "linear":
        return None, f"{source!r} ({kind}) applies an activation before it"
    if len(inbound.get(source, [])) != 1 or consumers.get(source) != [bn.name]:
        return None, f"{source!r} ({kind}) is shared or also feeds other layers"
    rank = len(producer.output.shape)
    channel_axis = rank - 1
    if not isinstance(producer, keras.layers.Dense) and producer.data_format == "channels_first":
        channel_axis = 1
    axes = bn.axis if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    if [a % rank for a in axes] != [channel_axis]:
        return None, f"it normalizes axis {bn.axis}, not the channel axis {channel_axis} of {source!r}"
    return source, None


def _folded_weights(layer, bn):
    """The kernel and bias of `layer` with `bn` merged in (NumPy float64 math, stored in the layer's dtype)."""

    def numpy(variable, default, size):
        if variable is None:
            return np.full(size, default)
        return np.asarray(keras.ops.convert_to_numpy(variable), "float64")

    kernel = numpy(layer.kernel, None, None)
    depthwise = isinstance(layer, (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D))
    channel_shape = kernel.shape[-2:] if depthwise else kernel.shape[-1:]
    channels = int(np.prod(channel_shape))
    bias = numpy(layer.bias, 0.0, channels)
    gamma, beta = numpy(bn.gamma, 1.0, channels), numpy(bn.beta, 0.0, channels)
    mean, variance = numpy(bn.moving_mean, 0.0, channels), numpy(bn.moving_variance, 1.0, channels)
    factor = gamma / np.sqrt(variance + bn.epsilon)
    dtype = keras.backend.standardize_dtype(layer.kernel.dtype)
    return [(kernel * factor.reshape(channel_shape)).astype(dtype), ((bias - mean) * factor + beta).astype(dtype)]


def _rebuild(model, folds):
    """A new model from `model`'s config without the folded BNs (their producers get a bias), weights copied."""
    config = model.get_config()
    producers = set(folds.values())
    config["layers"] = [e for e in config["layers"] if _model_graph.entry_name(e) not in folds]
    for entry in config["layers"]:
        if _model_graph.entry_name(entry) in producers:
            entry["config"]["use_bias"] = True
    if not isinstance(model, keras.Sequential):
        # Whatever read a folded BN's output now reads its producer's (each called once: node 0, tensor 0).
        for ref in _model_graph.tensor_refs(config["layers"]):
            if ref["keras_history"][0] in folds:
                ref["keras_history"] = [folds[ref["keras_history"][0]], 0, 0]
        refs, single = _model_graph.output_refs(config)
        refs = [[folds[ref[0]], 0, 0] if ref[0] in folds else ref for ref in refs]
        _model_graph.set_output_refs(config, refs, single)
    folded = _model_graph.from_config(model, config)
    by_producer = {producer: bn for bn, producer in folds.items()}
    for layer in folded.layers:
        source = model.get_layer(layer.name)
        if layer.name in by_producer:
            layer.set_weights(_folded_weights(source, model.get_layer(by_producer[layer.name])))
        else:
            layer.set_weights(source.get_weights())
    return folded
