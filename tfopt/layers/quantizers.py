"""Fake quantizers of quantization-aware training: int8 per-channel symmetric weights, int8 per-tensor activations.

Both are pure `keras.ops`, so QAT trains on every backend. The rounding is the one TensorFlow's `FakeQuant*` ops and
the TFLite converter use (nudged range, round half up), so a fine-tuned Keras model and its int8 TFLite file compute
the same integers. Gradients are straight-through (Bengio et al. 2013): rounding passes the gradient unchanged, and
for activations clipping stops it outside the range, as in TensorFlow's `FakeQuantWithMinMaxVarsGradient`.
"""

from keras import ops

__all__ = ["fake_quant_affine", "fake_quant_symmetric_per_channel", "nudged_range", "symmetric_per_channel_codes"]

# int8 weights use the narrow range [-127, 127] (zero point 0, no -128), as TFLite requires for weights.
WEIGHT_QMAX = 127.0
# Activations use all 256 levels with an integer zero point; TFLite stores them as int8 = level - 128.
ACTIVATION_LEVELS = 255.0
_TINY = 1e-8


def _round_half_up(x):
    return ops.floor(x + 0.5)


def fake_quant_symmetric_per_channel(w, channel_axes):
    """Rounds `w` to the int8 grid of its own channels: one scale per output channel, zero point 0.

    With `c` a channel (an index along `channel_axes`, the other axes reduced):

        s_c = max|w_c| / 127
        q(w) = clip(round(w / s_c), -127, 127) * s_c

    The forward value is `q(w)`; the gradient is the identity (straight-through): `w + stop_gradient(q(w) - w)`.
    A zero stays exactly zero, so QAT keeps a pruned kernel's zeros.

    Args:
        w: the weight tensor.
        channel_axes: the axes (tuple of ints, non-negative) that index an output channel, e.g. `(ndim - 1,)` for
            a Dense or Conv kernel, `(2, 3)` for a depthwise kernel `(h, w, in, multiplier)`.
    """
    codes, scale = symmetric_per_channel_codes(w, channel_axes)
    return w + ops.stop_gradient(codes * scale - w)


def symmetric_per_channel_codes(w, channel_axes):
    """The int8 codes `clip(round(w / s_c), -127, 127)` (round half up, as float values) and the scales `s_c` of
    `w` (kept dimensions), as `fake_quant_symmetric_per_channel` and the TFLite converter compute them."""
    reduce_axes = tuple(a for a in range(len(w.shape)) if a not in channel_axes)
    scale = ops.stop_gradient(ops.maximum(ops.max(ops.abs(w), axis=reduce_axes, keepdims=True), _TINY) / WEIGHT_QMAX)
    return ops.clip(_round_half_up(w / scale), -WEIGHT_QMAX, WEIGHT_QMAX), scale


def nudged_range(minimum, maximum, num_bits=8, narrow_range=False):
    """The range TensorFlow's FakeQuant uses for `[minimum, maximum]`: widened to hold 0, shifted so that 0 is a
    level. Returns `(nudged_min, nudged_max, scale)`. With `q_min = 1 if narrow_range else 0`,
    `q_max = 2 ** num_bits - 1` (255 and 256 levels for the 8-bit default):

        scale = (max - min) / (q_max - q_min),   z = clip(round(q_min - min / scale), q_min, q_max)
        nudged_min = (q_min - z) * scale,        nudged_max = (q_max - z) * scale
    """
    q_min = 1.0 if narrow_range else 0.0
    q_max = float(2**num_bits - 1)
    minimum = ops.minimum(minimum, 0.0)
    maximum = ops.maximum(ops.maximum(maximum, 0.0), minimum + _TINY)
    scale = (maximum - minimum) / (q_max - q_min)
    zero_point = ops.clip(_round_half_up(q_min - minimum / scale), q_min, q_max)
    return (q_min - zero_point) * scale, (q_max - zero_point) * scale, scale


def fake_quant_affine(x, minimum, maximum, num_bits=8, narrow_range=False):
    """Rounds `x` to the levels of the nudged range `[min, max]` (asymmetric; per tensor, or per channel when
    `min` and `max` are vectors over the last axis), as TFLite's int8 activations do:

        y = round((clip(x, min_n, max_n) - min_n) / scale) * scale + min_n

    Gradient: 1 inside `[min_n, max_n]`, 0 outside (straight-through with clipping). `num_bits` and
    `narrow_range` as in TensorFlow's `FakeQuantWithMinMaxVars` (default 8 bits, 256 levels).
    """
    low, high, scale = (ops.stop_gradient(v) for v in nudged_range(minimum, maximum, num_bits, narrow_range))
    clipped = ops.clip(x, low, high)
    q = _round_half_up((clipped - low) / scale) * scale + low
    return clipped + ops.stop_gradient(q - clipped)
