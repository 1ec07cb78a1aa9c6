"""deployed_size: gzip bytes of the weights as deployed, against the same bytes assembled by hand in the test."""

import gzip

import keras
import numpy as np
import pytest

from tfopt.compression import ConstantSparsity, prune_low_magnitude, quantize_model
from tfopt.tuning import deployed_size
from tfopt.tuning.deployed_size import _kernel_codes

pytestmark = pytest.mark.backend_agnostic


def gz(arrays):
    return len(gzip.compress(b"".join(np.asarray(a).tobytes() for a in arrays), compresslevel=9, mtime=0))


def model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16,)), keras.layers.Dense(64, name="a"), keras.layers.Dense(8, name="b")])


def numpy_weights(m):
    return [np.asarray(keras.ops.convert_to_numpy(w), np.float32) for w in m.weights]


def test_plain_model_is_its_float32_weights_gzipped():
    m = model()
    assert deployed_size(m) == gz(numpy_weights(m))


def test_pruned_model_counts_the_masked_weights_and_shrinks():
    m = model()
    pruned = prune_low_magnitude(m, ConstantSparsity(0.8, 0, frequency=1))
    pruned.compile("sgd", "mse")
    pruned.fit(np.ones((4, 16), "float32"), np.ones((4, 8), "float32"), verbose=0, epochs=1)
    expected = []
    for wrapper in pruned.layers:
        kernel = keras.ops.convert_to_numpy(wrapper.masked_weights()[0])
        expected += [kernel.astype(np.float32), keras.ops.convert_to_numpy(wrapper.layer.bias).astype(np.float32)]
    assert np.mean(expected[0] == 0) == pytest.approx(0.8, abs=0.01)
    assert deployed_size(pruned) == gz(expected)
    assert deployed_size(pruned) < 0.4 * deployed_size(m)


def test_qat_model_stores_int8_kernel_codes():
    m = model()
    qat = quantize_model(m)
    expected = []
    for layer in m.layers:
        kernel, bias = numpy_weights(layer)
        scale = np.abs(kernel).max(axis=0) / 127.0
        expected += [np.clip(np.round(kernel / scale), -127, 127).astype(np.int8), bias]
    assert deployed_size(qat) == gz(expected)
    assert deployed_size(qat) < 0.35 * deployed_size(m)


def test_model_must_be_a_keras_layer():
    with pytest.raises(TypeError, match="Argument `model` must be a keras.Model or layer. Received: model=3"):
        deployed_size(3)


def test_kernel_codes_round_half_up_as_the_quantizer_does():
    # max|w| = 127 gives s = 1, so 2.5 and -0.5 sit exactly between two codes: the quantizer (and TFLite) round
    # half up (3 and 0), where NumPy's round would give 2 and -0.
    w = np.array([[127.0], [2.5], [-0.5], [-3.5]], dtype=np.float32)
    np.testing.assert_array_equal(_kernel_codes(w)[:, 0], [127, 3, 0, -3])
