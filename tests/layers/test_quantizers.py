import keras
import numpy as np
import pytest

from tests.layers.quantization_reference import reference_affine, reference_symmetric
from tfopt.layers.quantizers import fake_quant_affine, fake_quant_symmetric_per_channel, nudged_range

pytestmark = pytest.mark.backend_agnostic


def gradient(fn, x):
    """d sum(fn(x)) / dx on the active backend."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda v: fn(v).sum())(x))
    import tensorflow as tf

    v = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(v)
        y = tf.reduce_sum(fn(v))
    return tape.gradient(y, v).numpy()


def test_weights_round_to_127_levels_per_output_channel():
    w = np.random.default_rng(0).normal(size=(3, 3, 4, 6)).astype("float32") * np.arange(1, 7, dtype="float32")
    q = keras.ops.convert_to_numpy(fake_quant_symmetric_per_channel(w, (3,)))
    np.testing.assert_allclose(q, reference_symmetric(w, 3), rtol=1e-6, atol=1e-7)
    for c in range(6):
        levels = np.round(q[..., c] / (np.abs(w[..., c]).max() / 127.0))
        assert np.abs(levels).max() == 127 and len(np.unique(levels)) <= 255
        assert np.abs(q[..., c]).max() == pytest.approx(np.abs(w[..., c]).max(), rel=1e-6)


def test_depthwise_channels_are_input_channel_times_multiplier():
    w = np.random.default_rng(1).normal(size=(3, 3, 4, 2)).astype("float32")
    q = keras.ops.convert_to_numpy(fake_quant_symmetric_per_channel(w, (2, 3)))
    flat = w.reshape(9, 8)
    expected = reference_symmetric(flat, 1).reshape(w.shape)
    np.testing.assert_allclose(q, expected, rtol=1e-6, atol=1e-7)


def test_weight_zeros_stay_exactly_zero():
    w = np.random.default_rng(2).normal(size=(16, 8)).astype("float32")
    w[w < 0.3] = 0.0
    q = keras.ops.convert_to_numpy(fake_quant_symmetric_per_channel(w, (1,)))
    assert np.array_equal(q == 0, w == 0)


def test_weight_gradient_is_straight_through():
    w = np.random.default_rng(3).normal(size=(5, 4)).astype("float32")
    np.testing.assert_array_equal(gradient(lambda v: fake_quant_symmetric_per_channel(v, (1,)) * 3.0, w), 3.0)


def test_activations_match_tensorflow_fake_quant_formula():
    x = np.random.default_rng(4).uniform(-3.0, 7.0, 2000).astype("float32")  # no exact ties between levels
    for low, high in [(-1.3, 4.7), (0.0, 6.0), (-6.0, 6.0), (0.2, 3.0), (-2.0, -0.5)]:
        y = keras.ops.convert_to_numpy(fake_quant_affine(x, np.float32(low), np.float32(high)))
        np.testing.assert_allclose(y, reference_affine(x, low, high), atol=1e-5)
        assert len(np.unique(np.round(y, 5))) <= 256


def test_nudged_range_holds_zero_exactly():
    low, high, scale = (float(keras.ops.convert_to_numpy(v)) for v in nudged_range(-1.3, 4.7))
    assert high - low == pytest.approx(255 * scale, rel=1e-6)
    assert (-low / scale) == pytest.approx(round(-low / scale), abs=1e-4)


def test_activation_gradient_passes_inside_the_range_only():
    x = np.array([-5.0, -0.5, 0.0, 1.0, 3.9, 9.0], "float32")
    g = gradient(lambda v: fake_quant_affine(v, np.float32(-1.0), np.float32(4.0)), x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 1.0, 0.0])
