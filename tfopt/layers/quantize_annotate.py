"""QuantizeAnnotate: marks a layer for quantization-aware training, to be applied later by `quantize_apply`."""

import keras

from tfopt.layers.quantize_config import QuantizeConfig, deserialize_wrapper_config

__all__ = ["QuantizeAnnotate"]


@keras.saving.register_keras_serializable(package="tfopt")
class QuantizeAnnotate(keras.layers.Wrapper):
    """A mark on a layer: "quantize this one" (optionally with its own `QuantizeConfig`); computes as the layer.

    Use it (through `tfopt.compression.quantize_annotate_layer`) to quantize only some layers of a model, or a
    custom layer with its own config: build the model with annotated layers (or annotate them in a
    `keras.models.clone_model` `clone_function`), then `tfopt.compression.quantize_apply(model)` replaces each
    annotated layer by a `QuantizeWrapper` and leaves the others in float. The annotation changes nothing in
    the forward pass, and saves and loads with the model.

    Args:
        layer: the layer to quantize.
        quantize_config: a `tfopt.layers.QuantizeConfig`, or None (default) for `QuantizeWrapper`'s own rules.
        **kwargs: base `Layer` arguments (`name`, ...).
    """

    def __init__(self, layer, quantize_config=None, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"Argument `layer` must be a keras.layers.Layer. Received: layer={layer!r} of type "
                            f"{type(layer).__name__}")
        if isinstance(layer, QuantizeAnnotate):
            raise ValueError(f"Argument `layer` must not be annotated twice. Received: layer={layer.name!r}, already "
                             "a QuantizeAnnotate")
        if quantize_config is not None and not isinstance(quantize_config, QuantizeConfig):
            raise TypeError(
                "Argument `quantize_config` must be a tfopt.layers.QuantizeConfig or None. Received: "
                f"quantize_config={quantize_config!r} of type {type(quantize_config).__name__}"
            )
        kwargs.setdefault("name", f"quant_annotate_{layer.name}")
        super().__init__(layer, **kwargs)
        # A first layer given `input_shape` (Keras 2 style) still gives its Sequential model an input.
        if getattr(layer, "_input_shape_arg", None) is not None:
            self._input_shape_arg = layer._input_shape_arg
        self.quantize_config = quantize_config

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def call(self, inputs, *args, **kwargs):
        return self.layer(inputs, *args, **kwargs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, *args, **kwargs):
        kwargs.pop("training", None)
        return self.layer.compute_output_spec(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["quantize_config"] = (None if self.quantize_config is None
                                     else keras.saving.serialize_keras_object(self.quantize_config))
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**deserialize_wrapper_config(config, custom_objects))
