"""deployed_size: the gzip-compressed bytes of a model's weights as it would ship, wrapped for compression or not."""

import gzip

import keras
import numpy as np

from tfopt.layers.cluster_weights import ClusterWeights
from tfopt.layers.prune_low_magnitude import PruneLowMagnitude
from tfopt.layers.quantize_wrapper import QuantizeWrapper
from tfopt.layers.quantizers import symmetric_per_channel_codes


def _kernel_codes(value):
    """int8 codes of a fake-quantized kernel, by the quantizer's own rounding: one scale per output channel (the
    last axis)."""
    value = keras.ops.convert_to_tensor(np.asarray(value, dtype=np.float32))
    codes, _ = symmetric_per_channel_codes(value, (max(len(value.shape) - 1, 0),))
    return keras.ops.convert_to_numpy(codes).astype(np.int8)


def _layer_arrays(layer):

    if isinstance(layer, keras.Model):
        for sub in layer.layers:
            yield from _layer_arrays(sub)
        return
    if isinstance(layer, PruneLowMagnitude) and layer.built:
        masked = {id(v): value for v, value in zip(layer.pruned_weights, layer.masked_weights())}
        for variable in layer.layer.weights:
            yield np.asarray(keras.ops.convert_to_numpy(masked.get(id(variable), variable)), dtype=np.float32)
        return
    if isinstance(layer, QuantizeWrapper) and layer.built:
        quantized = layer.quantized_weights()
        for variable in layer.layer.weights:
            if variable.name in quantized:
                yield _kernel_codes(keras.ops.convert_to_numpy(quantized[variable.name]))
            else:
                yield np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)
        return
    if isinstance(layer, ClusterWeights) and layer.built:
        clustered = layer.clustered_weights()
        for variable in layer.layer.weights:
            value = clustered.get(variable.name, variable)
            yield np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float32)
        return
    for variable in layer.weights:
        yield np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def deployed_size(model):
    """Bytes of the model's weights as deployed, gzip-compressed (level 9): the size a search should minimize.

    Cheap enough to measure every epoch of every trial, and comparable between plain, pruned, quantized and
    clustered models without exporting any of them: each layer contributes what the compressed model would store,

        plain layer            its weights, float32 (BatchNormalization statistics included)
        PruneLowMagnitude      the wrapped layer's weights with w * mask in place of each pruned weight
        QuantizeWrapper        each quantized kernel as int8 codes round(w / s_c), s_c = max|w_c| / 127 per
                               output channel (last axis); its other weights (biases) in 32 bits
        ClusterWeights         the clustered weights (the centroid values), float32

    and the concatenated bytes are gzip-compressed, so zeros (pruning) and repeated values (clustering) count as
    they do in a zipped download. The wrappers' bookkeeping (masks, ranges, step counters) is left out: a
    stripped or exported model does not store it. It tracks, but does not equal, the size of a `.keras` or
    `.tflite` file (those add the architecture and file-format overhead).

    Args:
        model: a built `keras.Model` (or layer).

    Returns:
        The size in bytes, an int.
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"Argument `model` must be a keras.Model or layer. Received: model={model!r} of type "
                        f"{type(model).__name__}")
    payload = b"".join(array.tobytes() for array in _layer_arrays(model))
    return len(gzip.compress(payload, compresslevel=9, mtime=0))
