"""QuantizeConfig: how one layer is quantized in QAT (which weights and activations, with which quantizers).

tfmot's interface, for `QuantizeWrapper(layer, quantize_config=...)` and `quantize_annotate_layer`: a config names
the layer's weights and activations to quantize, each with a `tfopt.layers.Quantizer`, and the quantizers of its
outputs. `Default8BitQuantizeConfig` is the usual one, parametrised by attribute names.
"""

import abc

import keras

from tfopt.layers.range_quantizers import LastValueQuantizer, MovingAverageQuantizer

__all__ = ["Default8BitQuantizeConfig", "QuantizeConfig"]


class QuantizeConfig(abc.ABC):
    """Says how `QuantizeWrapper` quantizes one layer. Subclass it for a custom layer or a custom scheme.

    - `get_weights_and_quantizers(layer)`: `[(variable, quantizer), ...]`. In every forward pass the wrapper runs
      the layer with each variable replaced by `quantizer(variable)` (a `keras.StatelessScope`: the variables
      keep their float values, the gradient reaches them straight through), so any layer works, built-in or custom.
    - `get_activations_and_quantizers(layer)`: `[(activation function, quantizer), ...]`; around each call the
      wrapper hands `set_quantize_activations` the functions `x -> quantizer(activation(x))`, then the originals.
    - `get_output_quantizers(layer)`: quantizers applied to the layer's output(s).
    - `set_quantize_weights(layer, quantize_weights)`: part of tfmot's interface, which assigns the quantized
      tensors to the layer's attributes. tfopt never calls it (Keras 3 layers' weights are read-only properties;
      the wrapper substitutes the variables instead), so a config may leave it as it is.
    - `get_config()`: the constructor arguments; register the subclass with
      `keras.saving.register_keras_serializable` (or load inside `custom_object_scope`) for `.keras` files.
    """

    @abc.abstractmethod
    def get_weights_and_quantizers(self, layer):
        """`[(variable, Quantizer), ...]` of the layer's weights to quantize."""

    @abc.abstractmethod
    def get_activations_and_quantizers(self, layer):
        """`[(activation, Quantizer), ...]` of the layer's activation functions to quantize after."""

    def set_quantize_weights(self, layer, quantize_weights):  # noqa: B027 - optional: tfopt never calls it
        """Not called by tfopt (see the class docstring)."""

    @abc.abstractmethod
    def set_quantize_activations(self, layer, quantize_activations):
        """Sets the layer's activation attributes to `quantize_activations`, in `get_activations_and_quantizers`'
        order."""

    @abc.abstractmethod
    def get_output_quantizers(self, layer):
        """`[Quantizer, ...]` for the layer's outputs."""

    @abc.abstractmethod
    def get_config(self):
        """The constructor arguments, as a dict."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfopt")
class Default8BitQuantizeConfig(QuantizeConfig):
    """int8 QAT of the named attributes of a layer: weights per output channel, activations and output per tensor.

    Weights: `LastValueQuantizer(8, per_axis=True, symmetric=True, narrow_range=True)` (TFLite's int8 weights,
    `[-127, 127]` per output channel of the last axis); activations and, with `quantize_output`, the output:
    `MovingAverageQuantizer(8, per_axis=False, symmetric=False, narrow_range=False)` (256 levels).

    Args:
        weight_attrs: names of the layer's weight attributes to quantize, e.g. `["kernel"]`.
        activation_attrs: names of its activation attributes, e.g. `["activation"]`.
        quantize_output: also quantize the layer's output.
    """

    def __init__(self, weight_attrs, activation_attrs, quantize_output):
        self.weight_attrs = [str(a) for a in weight_attrs]
        self.activation_attrs = [str(a) for a in activation_attrs]
        self.quantize_output = bool(quantize_output)

    def get_weights_and_quantizers(self, layer):
        return [(getattr(layer, a), LastValueQuantizer(8, True, True, True)) for a in self.weight_attrs]

    def get_activations_and_quantizers(self, layer):
        return [(getattr(layer, a), MovingAverageQuantizer(8, False, False, False)) for a in self.activation_attrs]

    def set_quantize_activations(self, layer, quantize_activations):
        for attribute, activation in zip(self.activation_attrs, quantize_activations):
            setattr(layer, attribute, activation)

    def get_output_quantizers(self, layer):
        return [MovingAverageQuantizer(8, False, False, False)] if self.quantize_output else []

    def get_config(self):
        return {"weight_attrs": self.weight_attrs, "activation_attrs": self.activation_attrs,
                "quantize_output": self.quantize_output}


def deserialize_wrapper_config(config, custom_objects=None):
    """The config of a layer wrapper that holds a `layer` and an optional `quantize_config` (QuantizeWrapper,
    QuantizeAnnotate), with both deserialized: the keyword arguments of its constructor."""
    config = dict(config)
    config["layer"] = keras.saving.deserialize_keras_object(config["layer"], custom_objects=custom_objects)
    if config.get("quantize_config") is not None:
        config["quantize_config"] = keras.saving.deserialize_keras_object(config["quantize_config"],
                                                                          custom_objects=custom_objects)
    return config
