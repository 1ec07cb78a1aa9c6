"""`tfmot.quantization.keras` on tfopt: quantization-aware training of Keras 3 models with tfmot's names.

`quantize_model`, `quantize_annotate_layer`, `quantize_annotate_model` and `quantize_apply` call tfopt's functions
of the same names (`tfopt.compression`); `QuantizeConfig` and `QuantizeWrapper` are tfopt's classes, `quantizers`
and `default_8bit` tfmot's submodules. What differs:

- A `QuantizeConfig`'s `set_quantize_weights` is never called: tfopt runs the layer with its variables replaced
  by their quantized values, so Keras 3 layers (whose `kernel` is a read-only property) work.
- `quantize_apply(model, scheme)` takes `default_8bit.Default8BitQuantizeScheme` (the default) or a scheme of
  `tfmot.experimental.combine`; tfopt has no other registry or layout transform.
- A QAT model converts with `tf.lite.TFLiteConverter.from_keras_model` (and `Optimize.DEFAULT`) to int8 kernels,
  as with tfmot; `tfopt.compression.export_tflite(model, path, "int8")` also checks that the file is integer-only.
"""

import keras

from tfopt.compat.tfmot.quantization.keras import default_8bit, quantizers
from tfopt.compat.tfmot.quantization.keras.quantize_scheme import QuantizeScheme
from tfopt.compression import quantize as _quantize
from tfopt.layers.quantize_config import QuantizeConfig
from tfopt.layers.quantize_wrapper import QuantizeWrapper

__all__ = [
    "QuantizeConfig",
    "QuantizeScheme",
    "QuantizeWrapper",
    "default_8bit",
    "quantize_annotate_layer",
    "quantize_annotate_model",
    "quantize_apply",
    "quantize_model",
    "quantize_scope",
    "quantizers",
]


def quantize_model(to_quantize, quantized_layer_name_prefix="quant_"):
    """tfmot's `quantize_model`: the whole model prepared for int8 QAT (`quantize_annotate_model` then
    `quantize_apply`, as in tfmot)."""
    return quantize_apply(quantize_annotate_model(to_quantize), quantized_layer_name_prefix=quantized_layer_name_prefix)


def quantize_annotate_layer(to_annotate, quantize_config=None):
    """tfmot's `quantize_annotate_layer`: `tfopt.compression.quantize_annotate_layer`."""
    return _quantize.quantize_annotate_layer(to_annotate, quantize_config)


def quantize_annotate_model(to_annotate):
    """tfmot's `quantize_annotate_model`: `tfopt.compression.quantize_annotate_model`."""
    return _quantize.quantize_annotate_model(to_annotate)


def quantize_apply(model, scheme=None, quantized_layer_name_prefix="quant_"):
    """tfmot's `quantize_apply(model, scheme, quantized_layer_name_prefix)`: `tfopt.compression.quantize_apply`
    with the options the scheme stands for (default `default_8bit.Default8BitQuantizeScheme()`)."""
    scheme = default_8bit.Default8BitQuantizeScheme() if scheme is None else scheme
    if not isinstance(scheme, QuantizeScheme):
        raise TypeError(
            "Argument `scheme` must be a tfmot quantize scheme from tfopt.compat.tfmot "
            "(default_8bit.Default8BitQuantizeScheme, experimental.combine.Default8BitPrunePreserveQuantizeScheme, "
            f"Default8BitClusterPreserveQuantizeScheme). Received: scheme={scheme!r}"
        )
    return _quantize.quantize_apply(model, name_prefix=quantized_layer_name_prefix, **scheme.quantize_apply_options())


def quantize_scope(*args):
    """tfmot's `quantize_scope(*dicts)`: a `keras.saving.CustomObjectScope` with the given custom objects (tfopt's
    own classes are registered with Keras and need no scope)."""
    custom_objects = {}
    for objects in args:
        custom_objects.update(objects)
    return keras.saving.CustomObjectScope(custom_objects)
