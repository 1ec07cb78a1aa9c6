"""QuantizeWrapper: quantization-aware training of one layer (fake-quantized weights and activations)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.layers import quantizable_layer
from tfopt.layers.quantizers import fake_quant_affine, fake_quant_symmetric_per_channel

__all__ = ["QuantizeWrapper"]

# Activations TFLite fuses into the int8 op before it: the quantizer goes after them.
_FUSED = ("linear", "relu", "relu6")
# Activations whose int8 kernels have a fixed output range: the quantizer goes before them, none after.
_FIXED_RANGE = ("softmax", "sigmoid", "tanh")
# Range of a quantizer that has not seen a training batch yet (as tfmot's): a usable default, replaced by the first
# batch's range.
_INITIAL_RANGE = 6.0


def activation_name(activation):
    """The registered name of a Keras activation function ("relu", ...), or None for a custom callable."""
    if activation is None:
        return "linear"
    try:
        name = keras.activations.serialize(activation)
    except (TypeError, ValueError):
        return None
    return name if isinstance(name, str) else None


@keras.saving.register_keras_serializable(package="tfopt")
class QuantizeWrapper(keras.layers.Wrapper):
    """Trains a layer around int8 rounding: quantization-aware training (QAT) as in Jacob et al. (2018).

    Use it (through `tfopt.compression.quantize_model`, which wraps every supported layer of a model) to fine-tune
    a trained float model for a few epochs before exporting a full-integer TFLite/LiteRT file: the model learns
    weights and activations that survive rounding, so the int8 file keeps the float accuracy where post-training
    quantization would lose some.

    In every forward pass:

    - each weight named by the layer's `quantizable_weights` (kernels) is fake-quantized per output channel,
      symmetric, to int8: `s_c = max|w_c| / 127`, `q(w) = clip(round(w / s_c), -127, 127) * s_c`;
    - activations are fake-quantized per tensor to 256 levels of a range `[m, M]` (TensorFlow's nudged range,
      holding 0 exactly): after the layer's activation when TFLite fuses it (linear, relu, relu6), before it when
      its int8 kernel has a fixed output range (softmax, sigmoid, tanh), both for other activations; the wrapped
      layer's inputs too when `quantize_inputs` (where no quantized layer feeds it, e.g. after the model input);
    - during training (`training=True`) each range follows an exponential moving average of the batch ranges:
      `m <- d * m + (1 - d) * min(batch, 0)`, `M <- d * M + (1 - d) * max(batch, 0)`, `d = ema_decay`; the first
      training batch sets it outright. Ranges are non-trainable variables, saved with the model. Under a
      distribution strategy `min(batch)` and `max(batch)` are the means over replicas of each replica's batch
      range, so all replicas share one range.

    Gradients are straight-through: rounding passes them unchanged; activation clipping stops them outside the
    range. Weightless layers that change ranges (activation layers, Add, Concatenate, ...) are wrapped too, with
    an output quantizer only.

    Args:
        layer: the layer to wrap: Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, a `QuantizableLayer`, or a weightless
            layer (activation or merge layer) whose output gets a quantizer.
        quantize_inputs: also fake-quantize the layer's inputs. Default False.
        preserve_sparsity: multiply each quantized weight by a fixed mask of its non-zero entries taken when the
            wrapper is built, so that fine-tuning keeps a pruned kernel's zeros. Default False.
        ema_decay: `d`, the moving-average decay of the activation ranges, in [0, 1). Default 0.99 (fine-tuning
            runs are short; tfmot's 0.999 needs thousands of steps to forget its initial range).
        **kwargs: base `Layer` arguments (`name`, ...).

    References:
        - Jacob et al., 2018, "Quantization and Training of Neural Networks for Efficient
          Integer-Arithmetic-Only Inference", https://arxiv.org/abs/1712.05877
        - Krishnamoorthi, 2018, "Quantizing deep convolutional networks for efficient inference: A whitepaper",
          https://arxiv.org/abs/1806.08342
    """

    def __init__(self, layer, quantize_inputs=False, preserve_sparsity=False, ema_decay=0.99, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"Argument `layer` must be a keras.layers.Layer. Received: layer={layer!r}")
        super().__init__(layer, **kwargs)
        self.quantize_inputs = bool(quantize_inputs)
        self.preserve_sparsity = bool(preserve_sparsity)
        self.ema_decay = _checks.number("ema_decay", ema_decay, 0.0, 1.0, high_open=True)
        self.has_weights = quantizable_layer.supports(layer)
        if self.has_weights:
            name = activation_name(getattr(layer, "activation", None))
            self.placement = "post" if name in _FUSED else "pre" if name in _FIXED_RANGE else "pre_post"
        else:
            self.placement = "post"

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        self._weight_axes = quantizable_layer.quantizable_weights(self.layer) if self.has_weights else {}
        self._masks = {}
        if self.preserve_sparsity:
            for name in self._weight_axes:
                weight = getattr(self.layer, name)
                mask = self.add_weight(name=f"{name}_mask", shape=weight.shape, initializer="ones", trainable=False)
                mask.assign(ops.cast(ops.not_equal(weight, 0), mask.dtype))
                self._masks[name] = mask
        points = []
        if self.quantize_inputs:
            many = isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple))
            points += [f"input_{i}" for i in range(len(input_shape) if many else 1)]
        if self.placement in ("pre", "pre_post"):
            points.append("pre_activation")
        if self.placement in ("post", "pre_post"):
            points.append("output")
        # Under a distribution strategy each replica sees its own slice of the batch: "mean" aggregation averages
        # the replicas' updates, so every replica holds the same range (the one saved and restored). Without it
        # the replicas' ranges drift apart and a resumed run differs from an unbroken one.
        self._ranges = {}
        for point in points:
            self._ranges[point] = tuple(
                self.add_weight(
                    name=f"{point}_{end}",
                    shape=(),
                    initializer=keras.initializers.Constant(sign * _INITIAL_RANGE),
                    trainable=False,
                    aggregation="mean",
                )
                for end, sign in (("min", -1.0), ("max", 1.0))
            )
        self._seen_batch = self.add_weight(
            name="ranges_initialized", shape=(), initializer="zeros", trainable=False, aggregation="mean"
        )
        self.built = True

    @property
    def range_points(self):
        """Names of the activation quantizers, in the order they apply: "input_0", ..., "pre_activation",
        "output"."""
        return list(self._ranges)

    def activation_range(self, point):
        """The `(min, max)` variables of one activation quantizer."""
        return self._ranges[point]

    def quantized_weights(self):
        """`{name: value}` of the layer's weights as the forward pass uses them (masked, fake-quantized)."""
        values = {}
        for name, axes in self._weight_axes.items():
            weight = getattr(self.layer, name)
            if name in self._masks:
                weight = weight * self._masks[name]
            values[name] = fake_quant_symmetric_per_channel(weight, axes)
        return values

    def quantized_call(self, inputs, weights, quantize):
        """The forward pass with given weight values and activation quantizer `quantize(x, point) -> x`.

        `call` passes the fake-quantized weights and the moving-average quantizers; the TFLite export passes
        constants and TensorFlow's FakeQuant ops, so both run exactly this sequence.
        """
        if self.quantize_inputs:
            if isinstance(inputs, (list, tuple)):
                inputs = [quantize(x, f"input_{i}") for i, x in enumerate(inputs)]
            else:
                inputs = quantize(inputs, "input_0")
        if not self.has_weights:
            return quantize(self.layer(inputs), "output")
        outputs = quantizable_layer.call_with_weights(self.layer, inputs, weights)
        if self.placement != "post":
            outputs = quantize(outputs, "pre_activation")
        activation = getattr(self.layer, "activation", None)
        if activation is not None:
            outputs = activation(outputs)
        if self.placement != "pre":
            outputs = quantize(outputs, "output")
        return outputs

    def call(self, inputs, training=None):
        first = ops.equal(self._seen_batch, 0.0)

        def quantize(x, point):
            low, high = self._ranges[point]
            if training:
                x_min = ops.minimum(ops.min(x), 0.0)
                x_max = ops.maximum(ops.max(x), 0.0)
                d = self.ema_decay
                low.assign(ops.where(first, x_min, d * low + (1.0 - d) * x_min))
                high.assign(ops.where(first, x_max, d * high + (1.0 - d) * x_max))
            if not training and keras.backend.backend() == "tensorflow":
                # At inference on TensorFlow: the same rounding as a FakeQuant op, which the TFLite converter reads
                # as the int8 range (so TFLiteConverter.from_keras_model writes a full-integer file too).
                from tfopt import _tensorflow

                return _tensorflow.fake_quant(x, low, high)
            return fake_quant_affine(x, low, high)

        outputs = self.quantized_call(inputs, self.quantized_weights(), quantize)
        if training:
            self._seen_batch.assign(1.0)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            quantize_inputs=self.quantize_inputs, preserve_sparsity=self.preserve_sparsity, ema_decay=self.ema_decay
        )
        return config
