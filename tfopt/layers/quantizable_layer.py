"""QuantizableLayer: the small protocol through which a layer takes part in QAT and weight clustering.

The QAT and clustering wrappers never patch a layer's variables: they compute replacement values for its weights
(fake-quantized, clustered) and ask the layer for its output with those values. Dense, Conv1D/2D/3D and
DepthwiseConv1D/2D are supported here; any other layer opts in by defining the two methods of `QuantizableLayer`.
"""

from typing import Protocol, runtime_checkable

import keras
import numpy as np
from keras import ops

__all__ = ["QuantizableLayer", "call_with_weights", "has_zeros", "quantizable_weights", "supports"]


@runtime_checkable
class QuantizableLayer(Protocol):
    """What a custom layer defines so that `quantize_model` and `cluster_weights` can wrap it.

    Example: a layer computing `x @ kernel + bias` opts in with

        def quantizable_weights(self):
            return {"kernel": (1,)}          # weight attribute -> axes of one output channel

        def call_with_weights(self, inputs, weights):
            return ops.matmul(inputs, weights["kernel"]) + self.bias

    `call_with_weights` returns the output *before* `self.activation` (if the layer has one), so that QAT can place
    the activation quantizer where TFLite fuses it. Weights named by `quantizable_weights` are fake-quantized per
    channel (QAT) or shared (clustering); `weights` holds exactly those names.
    """

    def quantizable_weights(self) -> dict:
        """Maps weight attribute names to the tuple of axes that index an output channel of that weight."""
        ...

    def call_with_weights(self, inputs, weights):
        """The layer's output before its activation, computed with `weights` in place of the named weights."""
        ...


_CONV = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)


def _is_builtin(layer):
    # Transposed convolutions subclass the conv base in some versions; their kernel layout differs, so exclude.
    transposed = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
    return isinstance(layer, (keras.layers.Dense, *_CONV, *_DEPTHWISE)) and not isinstance(layer, transposed)


def supports(layer):
    """Whether the layer has weights the wrappers can replace: a built-in Dense/Conv/Depthwise or a
    `QuantizableLayer`."""
    return _is_builtin(layer) or isinstance(layer, QuantizableLayer)


def quantizable_weights(layer):
    """`{attribute: channel axes}` of the weights to quantize or cluster (kernels; biases stay float)."""
    if not _is_builtin(layer):
        return dict(layer.quantizable_weights())
    if isinstance(layer, _DEPTHWISE):
        rank = len(layer.kernel.shape)  # (..., in_channels, depth_multiplier)
        return {"kernel": (rank - 2, rank - 1)}
    return {"kernel": (len(layer.kernel.shape) - 1,)}


def _add_bias(layer, outputs, channels):
    if getattr(layer, "bias", None) is None:
        return outputs
    if isinstance(layer, keras.layers.Dense) or layer.data_format == "channels_last":
        return ops.add(outputs, layer.bias)
    return ops.add(outputs, ops.reshape(layer.bias, (1, channels) + (1,) * (len(outputs.shape) - 2)))


def call_with_weights(layer, inputs, weights):
    """The layer's output before its activation, with `weights` (a dict from `quantizable_weights`' names)."""
    if not _is_builtin(layer):
        return layer.call_with_weights(inputs, weights)
    kernel = weights["kernel"]
    if isinstance(layer, keras.layers.Dense):
        return _add_bias(layer, ops.matmul(inputs, kernel), layer.units)
    if isinstance(layer, _DEPTHWISE):
        outputs = ops.depthwise_conv(
            inputs,
            kernel,
            strides=layer.strides,
            padding=layer.padding,
            dilation_rate=layer.dilation_rate,
            data_format=layer.data_format,
        )
        return _add_bias(layer, outputs, kernel.shape[-2] * kernel.shape[-1])
    return _add_bias(layer, layer.convolution_op(inputs, kernel), layer.filters)


def has_zeros(weights):
    """Whether any of `weights` (variables or arrays) holds an exact zero: a pruned kernel whose zeros to keep."""
    return any(np.any(ops.convert_to_numpy(w) == 0) for w in weights)
