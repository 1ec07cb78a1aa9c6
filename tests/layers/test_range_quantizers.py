"""LastValueQuantizer, MovingAverageQuantizer, AllValuesQuantizer: the range each tracks over training batches
(float64 NumPy transcriptions of the rules), the rounding against TensorFlow's FakeQuant ops, config round trips
and bad arguments."""

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.layers import AllValuesQuantizer, LastValueQuantizer, MovingAverageQuantizer
from tfopt.layers.quantizers import fake_quant_affine

QUANTIZERS = {"last": LastValueQuantizer, "moving": MovingAverageQuantizer, "all": AllValuesQuantizer}


class Holder(keras.layers.Layer):
    """A layer that owns a quantizer's state, as QuantizeWrapper does."""

    def __init__(self, quantizer, shape):
        super().__init__()
        self.quantizer = quantizer
        self.state = quantizer.build(shape, "x", self)

    def call(self, x, training=None):
        return self.quantizer(x, training, self.state)


def reference_range(kind, batches, decay=0.99):
    low = high = None
    for x in batches:
        b_low, b_high = min(x.min(), 0.0), max(x.max(), 0.0)
        if low is None or kind == "last":
            low, high = b_low, b_high
        elif kind == "moving":
            low, high = decay * low + (1 - decay) * b_low, decay * high + (1 - decay) * b_high
        else:
            low, high = min(low, b_low), max(high, b_high)
    return low, high


def reference_fake_quant(x, low, high, bits=8, narrow=False):
    """TensorFlow's FakeQuantWithMinMaxVars, float64, from its documentation."""
    q_min, q_max = (1 if narrow else 0), 2**bits - 1
    scale = (high - low) / (q_max - q_min)
    zero = np.clip(np.floor(q_min - low / scale + 0.5), q_min, q_max)
    n_low, n_high = (q_min - zero) * scale, (q_max - zero) * scale
    clipped = np.clip(x, n_low, n_high)
    return np.floor((clipped - n_low) / scale + 0.5) * scale + n_low


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kind", list(QUANTIZERS))
def test_range_follows_its_rule_over_forty_batches(kind):
    rng = np.random.default_rng(0)
    holder = Holder(QUANTIZERS[kind](8, False, False, False), (16,))
    batches = [rng.normal(scale=1 + 0.05 * i, size=(4, 16)) + 0.3 * np.sin(i) for i in range(40)]
    for x in batches:
        holder(ops.convert_to_tensor(x, "float32"), training=True)
    low, high = reference_range(kind, batches)
    np.testing.assert_allclose(ops.convert_to_numpy(holder.state["min_var"]), low, rtol=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(holder.state["max_var"]), high, rtol=1e-4)
    x = rng.normal(scale=2, size=(4, 16))
    out = ops.convert_to_numpy(holder(ops.convert_to_tensor(x, "float32"), training=False))
    np.testing.assert_allclose(out, reference_fake_quant(x, low, high), atol=2e-5)


@pytest.mark.backend_agnostic
def test_before_training_the_range_is_tfmots_default():
    holder = Holder(LastValueQuantizer(8, False, False, False), (3,))
    x = np.array([[-10.0, 0.5, 10.0]], "float32")
    out = ops.convert_to_numpy(holder(x, training=False))
    np.testing.assert_allclose(out, reference_fake_quant(x.astype("float64"), -6.0, 6.0), atol=1e-5)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("bits, narrow", [(8, True), (4, False), (4, True), (2, False)])
def test_symmetric_per_axis_weights_on_fewer_bits(bits, narrow):
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 3)).astype("float32")
    holder = Holder(LastValueQuantizer(bits, True, True, narrow), (5, 3))
    out = ops.convert_to_numpy(holder(w, training=True))
    ratio = -1.0 if narrow else -((1 << bits) - 2) / (1 << bits)
    for c in range(3):
        low, high = min(w[:, c].min(), 0.0), max(w[:, c].max(), 0.0)
        low, high = min(low, high / ratio), max(high, low * ratio)
        expected = reference_fake_quant(w[:, c].astype("float64"), low, high, bits, narrow)
        np.testing.assert_allclose(out[:, c], expected, atol=2e-5)
        assert len(np.unique(out[:, c])) <= 2**bits - (1 if narrow else 0)


@pytest.mark.parametrize("bits, narrow", [(8, False), (8, True), (4, False), (6, True)])
def test_rounding_equals_tensorflows_fake_quant(bits, narrow):
    import tensorflow as tf

    x = np.random.default_rng(2).uniform(-3, 5, size=(1000,)).astype("float32")
    ours = ops.convert_to_numpy(fake_quant_affine(x, -2.5, 4.0, bits, narrow))
    theirs = tf.quantization.fake_quant_with_min_max_vars(x, -2.5, 4.0, num_bits=bits, narrow_range=narrow).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_inference_on_tensorflow_is_a_fake_quant_op_with_the_same_values():
    import tensorflow as tf

    holder = Holder(MovingAverageQuantizer(8, False, False, False), (8,))
    x = np.linspace(-1, 3, 8).astype("float32")[None]
    holder(x, training=True)
    graph = tf.function(lambda t: holder(t, training=False)).get_concrete_function(tf.TensorSpec((1, 8))).graph
    assert "FakeQuantWithMinMaxVars" in {op.type for op in graph.get_operations()}
    np.testing.assert_allclose(ops.convert_to_numpy(holder(x, training=False)), reference_fake_quant(
        x.astype("float64"), -1.0, 3.0), atol=1e-5)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kind", list(QUANTIZERS))
def test_config_round_trip(kind):
    quantizer = QUANTIZERS[kind](4, True, False, True)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(quantizer))
    assert type(again) is type(quantizer) and again.get_config() == quantizer.get_config() and again == quantizer


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("kwargs, error, message", [
    ({"num_bits": 1}, ValueError, "Argument `num_bits` must be an integer in [2, 16]"),
    ({"num_bits": 8.0}, TypeError, "Argument `num_bits` must be an integer"),
    ({"per_axis": 1}, TypeError, "Argument `per_axis` must be a bool. Received: per_axis=1"),
    ({"symmetric": "yes"}, TypeError, "Argument `symmetric` must be a bool"),
    ({"narrow_range": None}, TypeError, "Argument `narrow_range` must be a bool"),
])
def test_rejects_bad_arguments(kwargs, error, message):
    arguments = {"num_bits": 8, "per_axis": False, "symmetric": False, "narrow_range": False, **kwargs}
    with pytest.raises(error) as raised:
        LastValueQuantizer(**arguments)
    assert message in str(raised.value)


@pytest.mark.backend_agnostic
def test_moving_average_decay_is_checked_and_per_axis_needs_a_shape():
    with pytest.raises(ValueError, match=r"Argument `ema_decay` must be a number in \[0.0, 1.0\)"):
        MovingAverageQuantizer(8, False, False, False, ema_decay=1.0)
    with pytest.raises(ValueError, match="Argument `per_axis` needs a tensor of known last axis"):
        Holder(LastValueQuantizer(8, True, False, False), None)
