"""Quantizer objects for custom quantize configs: fake quantization to `num_bits` with a tracked range (keras.ops).

tfmot's `Quantizer` interface, on tfopt's rounding (`tfopt.layers.quantizers.fake_quant_affine`, TensorFlow's
FakeQuant): `build(tensor_shape, name, layer)` creates the quantizer's state as non-trainable weights of the layer
that owns it (a `QuantizeWrapper`) and returns them; `__call__(inputs, training, weights)` fake-quantizes `inputs`
with that state. The three built-in quantizers differ only in how a training batch moves the range `[m, M]`:

    LastValueQuantizer:      [m, M] = [min(x), max(x)] of the batch (weights: the range of the current value)
    MovingAverageQuantizer:  m <- d m + (1 - d) min(x),  M <- d M + (1 - d) max(x)   (d = ema_decay)
    AllValuesQuantizer:      m <- min(m, min(x)),        M <- max(M, max(x))

The first training batch sets the range outright (tfmot moves from [-6, 6] instead, which a short fine-tune
never forgets); before it, as in tfmot, the range is [-6, 6], so fine-tune a model before using it. `min(x)` and
`max(x)` are per tensor, or per channel of the last axis with `per_axis`. With
`symmetric`, the range is made symmetric about 0 as TFLite's symmetric tensors are (tfmot's rule: with
`r = -1` for `narrow_range`, else `r = -(2^b - 2) / 2^b`, `m' = min(m, M / r)`, `M' = max(M, m r)`); else it is
widened to hold 0. Outside training the stored range is used; on TensorFlow a per-tensor quantizer then emits
TensorFlow's FakeQuant op itself, which the TFLite converter reads as the tensor's int8 range.
"""

import abc

import keras
from keras import ops

from tfopt import _checks
from tfopt.layers.quantizers import fake_quant_affine

__all__ = ["AllValuesQuantizer", "LastValueQuantizer", "MovingAverageQuantizer", "Quantizer"]

# Range of a quantizer before its first training batch (tfmot's).
_INITIAL_RANGE = 6.0


class Quantizer(abc.ABC):
    """What a quantize config's quantizers implement (tfmot's interface): state in `build`, rounding in `__call__`.

    Subclass it for a custom quantization algorithm; register the subclass with
    `keras.saving.register_keras_serializable` when the config that creates it is saved.
    """

    @abc.abstractmethod
    def build(self, tensor_shape, name, layer):
        """Creates the state (with `layer.add_weight`) and returns it as a dict; `tensor_shape` may be None for
        activations."""

    @abc.abstractmethod
    def __call__(self, inputs, training, weights, **kwargs):
        """The quantized `inputs`; `weights` is the dict `build` returned."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))


class _RangeQuantizer(Quantizer):
    """Fake quantization to `num_bits` over a range updated by `_update` in training."""

    def __init__(self, num_bits, per_axis, symmetric, narrow_range):
        self.num_bits = _checks.integer("num_bits", num_bits, 2, 16)
        self.per_axis = _checks.boolean("per_axis", per_axis)
        self.symmetric = _checks.boolean("symmetric", symmetric)
        self.narrow_range = _checks.boolean("narrow_range", narrow_range)

    def build(self, tensor_shape, name, layer):
        if self.per_axis and (tensor_shape is None or tensor_shape[-1] is None):
            raise ValueError(
                f"Argument `per_axis` needs a tensor of known last axis: {type(self).__name__}({name!r}) got "
                f"tensor_shape={tensor_shape!r}. Received: per_axis=True"
            )
        shape = (int(tensor_shape[-1]),) if self.per_axis else ()

        def add(suffix, value):
            return layer.add_weight(name=f"{name}_{suffix}", shape=shape, trainable=False, aggregation="mean",
                                    initializer=keras.initializers.Constant(value))

        weights = {"min_var": add("min", -_INITIAL_RANGE), "max_var": add("max", _INITIAL_RANGE)}
        weights["seen"] = layer.add_weight(name=f"{name}_seen", shape=(), trainable=False, aggregation="mean",
                                           initializer="zeros")
        return weights

    def _batch_range(self, x):
        axes = tuple(range(len(x.shape) - 1)) if self.per_axis else None
        low, high = ops.min(x, axis=axes), ops.max(x, axis=axes)
        if self.symmetric:
            ratio = -1.0 if self.narrow_range else -((1 << self.num_bits) - 2) / (1 << self.num_bits)
            low, high = ops.minimum(low, high / ratio), ops.maximum(high, low * ratio)
        return ops.minimum(low, 0.0), ops.maximum(high, 0.0)

    @abc.abstractmethod
    def _update(self, low, high, batch_low, batch_high):
        """The new `(min, max)` after a training batch whose range is `(batch_low, batch_high)`."""

    def __call__(self, inputs, training, weights, **kwargs):
        low, high, seen = weights["min_var"], weights["max_var"], weights["seen"]
        if training:
            batch_low, batch_high = self._batch_range(ops.stop_gradient(inputs))
            first = ops.equal(seen, 0.0)
            new_low, new_high = self._update(low, high, batch_low, batch_high)
            low.assign(ops.where(first, batch_low, new_low))
            high.assign(ops.where(first, batch_high, new_high))
            seen.assign(1.0)
        else:
            # The stored range (constants once the graph is frozen, which the TFLite converter needs).
            if not self.per_axis and keras.backend.backend() == "tensorflow":
                from tfopt import _tensorflow

                return _tensorflow.fake_quant(inputs, low, high, self.num_bits, self.narrow_range)
        return fake_quant_affine(inputs, low, high, self.num_bits, self.narrow_range)

    def get_config(self):
        return {"num_bits": self.num_bits, "per_axis": self.per_axis, "symmetric": self.symmetric,
                "narrow_range": self.narrow_range}


@keras.saving.register_keras_serializable(package="tfopt")
class LastValueQuantizer(_RangeQuantizer):
    """Quantizes to the range of the latest training batch (for weights: of their current value).

    Args:
        num_bits: bits of the integer grid, 2 to 16 (8 for int8).
        per_axis: one range per channel of the last axis (weights' output channels), else one per tensor.
        symmetric: a range symmetric about 0 (TFLite's int8 weights), else widened to hold 0.
        narrow_range: leave out the lowest level (`[-127, 127]` in 8 bits, TFLite's weights).
    """

    def _update(self, low, high, batch_low, batch_high):
        return batch_low, batch_high


@keras.saving.register_keras_serializable(package="tfopt")
class MovingAverageQuantizer(_RangeQuantizer):
    """Quantizes to an exponential moving average of the training batches' ranges (for activations).

    Args: as `LastValueQuantizer`, and `ema_decay`, `d` in [0, 1) (default 0.99, as `QuantizeWrapper`'s; tfmot's
    0.999 needs thousands of steps).
    """

    def __init__(self, num_bits, per_axis, symmetric, narrow_range, ema_decay=0.99):
        super().__init__(num_bits, per_axis, symmetric, narrow_range)
        self.ema_decay = _checks.number("ema_decay", ema_decay, 0.0, 1.0, high_open=True)

    def _update(self, low, high, batch_low, batch_high):
        d = self.ema_decay
        return d * low + (1.0 - d) * batch_low, d * high + (1.0 - d) * batch_high

    def get_config(self):
        return {**super().get_config(), "ema_decay": self.ema_decay}


@keras.saving.register_keras_serializable(package="tfopt")
class AllValuesQuantizer(_RangeQuantizer):
    """Quantizes to the range of every value seen in training (the running minimum and maximum).

    Args: as `LastValueQuantizer`.
    """

    def _update(self, low, high, batch_low, batch_high):
        return ops.minimum(low, batch_low), ops.maximum(high, batch_high)
