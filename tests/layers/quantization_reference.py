"""float64 NumPy transcriptions of the int8 fake quantizers, shared by the quantizer and wrapper tests."""

import numpy as np


def reference_symmetric(w, channel_axis=-1):
    """int8 per-channel symmetric rounding, float64, written from the formula."""
    w = np.asarray(w, "float64")
    axes = tuple(a for a in range(w.ndim) if a != channel_axis % w.ndim)
    scale = np.abs(w).max(axis=axes, keepdims=True) / 127.0
    return np.clip(np.floor(w / scale + 0.5), -127, 127) * scale


def reference_affine(x, low, high):
    """TensorFlow's FakeQuantWithMinMaxVars (8 bits, wide range), float64, written from its documentation."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = (high - low) / 255.0
    zero_point = np.clip(np.floor(-low / scale + 0.5), 0, 255)
    n_low, n_high = -zero_point * scale, (255 - zero_point) * scale
    clipped = np.clip(np.asarray(x, "float64"), n_low, n_high)
    return np.floor((clipped - n_low) / scale + 0.5) * scale + n_low
