"""QuantizeWrapper: quantization-aware training of one layer (fake-quantized weights and activations)."""

import keras
import numpy as np
from keras import ops

from tfopt import _checks
from tfopt.layers import quantizable_layer
from tfopt.layers.quantize_config import QuantizeConfig, deserialize_wrapper_config
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

    Collaborative optimization (Deep Compression's pruning, clustering and quantization in sequence): with
    `preserve_sparsity` a fixed mask keeps a pruned kernel's zeros (PQAT); with `preserve_clusters=n` each
    quantized weight keeps its clustered structure (CQAT): at build, each entry is assigned to the nearest of `n`
    shared values taken from the weight's distinct non-zero values, and the forward pass uses
    `w'_i = c_a(i)` with the assignments `a` fixed and the shared values `c` trainable (each gets the sum of its
    entries' gradients); the float weight itself stops training. Both together (PCQAT) keep the zeros and at
    most `n` non-zero values per weight, so the int8 file holds at most `n + 1` distinct codes per output channel.

    A custom `quantize_config` (a `tfopt.layers.QuantizeConfig`) replaces the rules above for one layer: the
    wrapper quantizes the weights, activations and outputs it names with its quantizers.

    Args:
        layer: the layer to wrap: Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, a `QuantizableLayer`, or a weightless
            layer (activation or merge layer) whose output gets a quantizer.
        quantize_inputs: also fake-quantize the layer's inputs. Default False.
        preserve_sparsity: multiply each quantized weight by a fixed mask of its non-zero entries taken when the
            wrapper is built, so that fine-tuning keeps a pruned kernel's zeros. Default False.
        ema_decay: `d`, the moving-average decay of the activation ranges, in [0, 1). Default 0.99 (fine-tuning
            runs are short; tfmot's 0.999 needs thousands of steps to forget its initial range).
        quantize_config: a `QuantizeConfig` for this layer, or None (default) for the rules above.
        preserve_clusters: `n`, the number of shared non-zero values each quantized weight keeps (an integer in
            [1, 256]), or 0 (default) for none. Not with `quantize_config`.
        **kwargs: base `Layer` arguments (`name`, ...).

    References:
        - Jacob et al., 2018, "Quantization and Training of Neural Networks for Efficient
          Integer-Arithmetic-Only Inference", https://arxiv.org/abs/1712.05877
        - Krishnamoorthi, 2018, "Quantizing deep convolutional networks for efficient inference: A whitepaper",
          https://arxiv.org/abs/1806.08342
    """

    def __init__(self, layer, quantize_inputs=False, preserve_sparsity=False, ema_decay=0.99, quantize_config=None,
                 preserve_clusters=0, **kwargs):
        if not isinstance(layer, keras.layers.Layer):
            raise TypeError(f"Argument `layer` must be a keras.layers.Layer. Received: layer={layer!r}")
        if quantize_config is not None and not isinstance(quantize_config, QuantizeConfig):
            raise TypeError(
                "Argument `quantize_config` must be a tfopt.layers.QuantizeConfig or None. Received: "
                f"quantize_config={quantize_config!r} of type {type(quantize_config).__name__}"
            )
        super().__init__(layer, **kwargs)
        # A first layer given `input_shape` (Keras 2 style) still gives its Sequential model an input.
        if getattr(layer, "_input_shape_arg", None) is not None:
            self._input_shape_arg = layer._input_shape_arg
        self.quantize_inputs = bool(quantize_inputs)
        self.preserve_sparsity = bool(preserve_sparsity)
        self.ema_decay = _checks.number("ema_decay", ema_decay, 0.0, 1.0, high_open=True)
        self.quantize_config = quantize_config
        self.preserve_clusters = 0 if preserve_clusters == 0 else _checks.integer(
            "preserve_clusters", preserve_clusters, 1, 256)
        if self.preserve_clusters and quantize_config is not None:
            raise ValueError(
                "Argument `preserve_clusters` must be 0 with a `quantize_config` (the config chooses the weights' "
                f"quantizers). Received: preserve_clusters={preserve_clusters!r}"
            )
        self.has_weights = quantizable_layer.supports(layer) and quantize_config is None
        if self.has_weights:
            name = activation_name(getattr(layer, "activation", None))
            self.placement = "post" if name in _FUSED else "pre" if name in _FIXED_RANGE else "pre_post"
        else:
            self.placement = "post"

    def _add_mask(self, name, weight):
        mask = self.add_weight(name=f"{name}_mask", shape=weight.shape, initializer="ones", trainable=False)
        mask.assign(ops.cast(ops.not_equal(weight, 0), mask.dtype))
        return mask

    def _add_clusters(self, name, weight, mask):
        """The trainable shared values and fixed assignments of one weight (cluster-preserving QAT)."""
        values = ops.convert_to_numpy(weight).astype("float64")
        kept = values[ops.convert_to_numpy(mask) != 0] if mask is not None else values.reshape(-1)
        distinct = np.unique(kept) if kept.size else np.zeros(1)
        n = self.preserve_clusters
        start = np.concatenate([distinct, np.full(max(n - len(distinct), 0), distinct[-1])])[:n]
        centroids = self.add_weight(name=f"{name}_centroids", shape=(n,), initializer="zeros", trainable=True)
        centroids.assign(start.astype(centroids.dtype))
        assignment = np.argmin(np.abs(values[..., None] - start), axis=-1).astype("int32")
        indices = self.add_weight(name=f"{name}_cluster_indices", shape=weight.shape, dtype="int32",
                                  initializer="zeros", trainable=False)
        indices.assign(assignment)
        weight.trainable = False  # the shared values train instead; the assignments stay fixed
        return centroids, indices

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        self._weight_axes = quantizable_layer.quantizable_weights(self.layer) if self.has_weights else {}
        self._masks, self._clusters = {}, {}
        if self.preserve_sparsity:
            for name in self._weight_axes:
                self._masks[name] = self._add_mask(name, getattr(self.layer, name))
        if self.preserve_clusters:
            for name in self._weight_axes:
                self._clusters[name] = self._add_clusters(name, getattr(self.layer, name), self._masks.get(name))
        self._build_config(input_shape)
        points = []
        if self.quantize_inputs:
            many = isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple))
            points += [f"input_{i}" for i in range(len(input_shape) if many else 1)]
        if self.quantize_config is None and self.placement in ("pre", "pre_post"):
            points.append("pre_activation")
        if self.quantize_config is None and self.placement in ("post", "pre_post"):
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

    def _build_config(self, input_shape):
        """The state of a custom quantize config's quantizers (weights, activations, outputs)."""
        self._config_weights, self._config_activations, self._config_outputs = [], [], []
        config = self.quantize_config
        if config is None:
            return
        for variable, quantizer in config.get_weights_and_quantizers(self.layer):
            name = variable.name
            mask = self._add_mask(name, variable) if self.preserve_sparsity else None
            self._config_weights.append((variable, quantizer, quantizer.build(variable.shape, name, self), mask))
        for i, (activation, quantizer) in enumerate(config.get_activations_and_quantizers(self.layer)):
            self._config_activations.append((activation, quantizer, quantizer.build(None, f"activation_{i}", self)))
        try:
            output_shape = self.layer.compute_output_shape(input_shape)
        except Exception:  # noqa: BLE001 - a custom layer without compute_output_shape: per-tensor quantizers only
            output_shape = None
        for i, quantizer in enumerate(config.get_output_quantizers(self.layer)):
            self._config_outputs.append((quantizer, quantizer.build(output_shape, f"output_{i}", self)))

    def _config_call(self, inputs, training, layer_kwargs):
        """The forward pass under a custom quantize config: the layer runs with its named variables replaced by
        their quantized values and its named activations followed by their quantizers."""
        quantized = {}
        for variable, quantizer, state, mask in self._config_weights:
            value = variable.value if mask is None else variable.value * ops.cast(mask, variable.dtype)
            quantized[id(variable)] = quantizer(value, training, state)
        # Every variable is mapped (to its current value where not quantized): under JAX's stateless training step
        # the values live in the enclosing scope, which an inner scope does not consult.
        mapping = [(v, quantized.get(id(v), v.value)) for v in self.weights]
        originals = [activation for activation, _, _ in self._config_activations]

        def quantize_after(activation, quantizer, state):
            return lambda x: quantizer(activation(x), training, state)

        self.quantize_config.set_quantize_activations(
            self.layer, [quantize_after(*entry) for entry in self._config_activations])
        try:
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
                outputs = self.layer(inputs, **layer_kwargs)
        finally:
            self.quantize_config.set_quantize_activations(self.layer, originals)
        for variable, value in mapping:
            new = scope.get_current_value(variable)
            if id(variable) not in quantized and new is not None and new is not value:
                variable.assign(new)
        for loss in scope.losses:
            self.add_loss(loss)
        if self._config_outputs:
            flat = keras.tree.flatten(outputs)
            flat = [q(x, training, state) for x, (q, state) in zip(flat, self._config_outputs)] + flat[
                len(self._config_outputs):]
            outputs = keras.tree.pack_sequence_as(outputs, flat)
        return outputs

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
        for variable, quantizer, state, mask in getattr(self, "_config_weights", []):
            value = variable.value if mask is None else variable.value * ops.cast(mask, variable.dtype)
            values[variable.name] = quantizer(value, False, state)
        for name, axes in self._weight_axes.items():
            weight = getattr(self.layer, name)
            if name in self._clusters:
                centroids, indices = self._clusters[name]
                weight = ops.take(centroids, indices)
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

    def call(self, inputs, training=None, **kwargs):
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

        if self.quantize_config is not None:
            if self.quantize_inputs:
                if isinstance(inputs, (list, tuple)):
                    inputs = [quantize(x, f"input_{i}") for i, x in enumerate(inputs)]
                else:
                    inputs = quantize(inputs, "input_0")
            if training is not None:
                kwargs["training"] = training
            outputs = self._config_call(inputs, training, kwargs)
        else:
            outputs = self.quantized_call(inputs, self.quantized_weights(), quantize)
        if training:
            self._seen_batch.assign(1.0)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, *args, **kwargs):
        kwargs.pop("training", None)
        return self.layer.compute_output_spec(*args, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            quantize_inputs=self.quantize_inputs, preserve_sparsity=self.preserve_sparsity, ema_decay=self.ema_decay,
            preserve_clusters=self.preserve_clusters,
            quantize_config=None if self.quantize_config is None else keras.saving.serialize_keras_object(
                self.quantize_config),
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**deserialize_wrapper_config(config, custom_objects))
