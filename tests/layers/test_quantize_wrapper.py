import keras
import numpy as np
import pytest
from keras import ops

from tests.layers.quantization_reference import reference_affine, reference_symmetric
from tfopt.layers import QuantizableLayer, QuantizeWrapper

pytestmark = pytest.mark.backend_agnostic


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def dense_wrapper(**kwargs):
    layer = keras.layers.Dense(3, activation="relu")
    wrapper = QuantizeWrapper(layer, **kwargs)
    wrapper.build((None, 4))
    rng = np.random.default_rng(0)
    layer.set_weights([rng.normal(size=(4, 3)).astype("float32"), rng.normal(size=3).astype("float32")])
    return wrapper


def test_rejects_bad_arguments():
    with pytest.raises(TypeError, match="Argument `layer` must be a keras.layers.Layer. Received: layer='dense'"):
        QuantizeWrapper("dense")
    with pytest.raises(
        ValueError, match=r"Argument `ema_decay` must be a number in \[0.0, 1.0\). Received: ema_decay=1"
    ):
        QuantizeWrapper(keras.layers.Dense(2), ema_decay=1.0)


def test_first_training_batch_sets_the_range_then_it_moves_by_ema():
    wrapper = dense_wrapper(ema_decay=0.9)
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(8, 4)).astype("float32"), 3 * rng.normal(size=(8, 4)).astype("float32")
    low, high = wrapper.activation_range("output")
    assert (float(numpy(low)), float(numpy(high))) == (-6.0, 6.0)  # before any training batch
    kernel, bias = (numpy(w).astype("float64") for w in wrapper.layer.weights)

    def output(x):  # relu output of the fake-quantized kernel: the tensor the output quantizer sees
        return np.maximum(x @ reference_symmetric(kernel) + bias, 0.0)

    wrapper(x1, training=True)
    assert float(numpy(low)) == pytest.approx(0.0)  # relu output: min(batch, 0) = 0
    assert float(numpy(high)) == pytest.approx(output(x1).max(), rel=1e-5)
    wrapper(x2, training=True)
    assert float(numpy(high)) == pytest.approx(0.9 * output(x1).max() + 0.1 * output(x2).max(), rel=1e-5)
    before = float(numpy(high))
    wrapper(5 * x2, training=False)
    assert float(numpy(high)) == before  # inference does not move the range


def test_forward_is_fake_quantized_kernel_then_activation_then_output_quantizer():
    wrapper = dense_wrapper()
    x = np.random.default_rng(2).normal(size=(16, 4)).astype("float32")
    wrapper(x, training=True)
    kernel, bias = (numpy(w).astype("float64") for w in wrapper.layer.weights)
    low, high = (float(numpy(v)) for v in wrapper.activation_range("output"))
    expected = reference_affine(np.maximum(x @ reference_symmetric(kernel) + bias, 0.0), low, high)
    np.testing.assert_allclose(numpy(wrapper(x, training=False)), expected, atol=1e-5)


def test_activation_placement_follows_what_tflite_fuses():
    def points(activation, **kwargs):
        wrapper = QuantizeWrapper(keras.layers.Dense(2, activation=activation), **kwargs)
        wrapper.build((None, 3))
        return wrapper.range_points

    assert points("relu") == ["output"]
    assert points(None) == ["output"]
    assert points("softmax") == ["pre_activation"]  # int8 softmax has a fixed output range
    assert points("gelu") == ["pre_activation", "output"]
    assert points("relu", quantize_inputs=True) == ["input_0", "output"]
    add = QuantizeWrapper(keras.layers.Add(), quantize_inputs=True)
    add.build([(None, 3), (None, 3)])
    assert add.range_points == ["input_0", "input_1", "output"]


def test_sparsity_mask_keeps_zeros_through_training():
    layer = keras.layers.Dense(4)
    layer.build((None, 6))
    kernel = np.random.default_rng(3).normal(size=(6, 4)).astype("float32")
    kernel[::2] = 0.0
    layer.set_weights([kernel, np.zeros(4, "float32")])
    model = keras.Sequential([keras.Input((6,)), QuantizeWrapper(layer, preserve_sparsity=True)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    rng = np.random.default_rng(4)
    model.fit(rng.normal(size=(64, 6)), rng.normal(size=(64, 4)), epochs=2, verbose=0)
    assert not np.array_equal(numpy(layer.kernel), kernel)  # the weights trained
    effective = numpy(model.layers[0].quantized_weights()["kernel"])
    np.testing.assert_array_equal(effective[::2], 0.0)
    assert np.count_nonzero(effective[1::2]) >= 10  # the kept weights stay (a tiny one may round to zero)


class ScaledDense(keras.layers.Layer):
    """A custom layer that opts into QAT through the QuantizableLayer protocol."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 2), initializer="glorot_uniform")

    def call(self, inputs):
        return 2.0 * ops.matmul(inputs, self.kernel)

    def quantizable_weights(self):
        return {"kernel": (1,)}

    def call_with_weights(self, inputs, weights):
        return 2.0 * ops.matmul(inputs, weights["kernel"])


def test_custom_layer_opts_in_through_the_protocol():
    layer = ScaledDense()
    assert isinstance(layer, QuantizableLayer)
    wrapper = QuantizeWrapper(layer)
    x = np.random.default_rng(5).normal(size=(8, 3)).astype("float32")
    wrapper(x, training=True)
    kernel = numpy(layer.kernel).astype("float64")
    low, high = (float(numpy(v)) for v in wrapper.activation_range("output"))
    np.testing.assert_allclose(
        numpy(wrapper(x)), reference_affine(2.0 * x @ reference_symmetric(kernel), low, high), atol=1e-5
    )


def test_config_round_trip():
    wrapper = QuantizeWrapper(keras.layers.Conv2D(4, 3), quantize_inputs=True, preserve_sparsity=True, ema_decay=0.5)
    clone = QuantizeWrapper.from_config(wrapper.get_config())
    assert (clone.quantize_inputs, clone.preserve_sparsity, clone.ema_decay) == (True, True, 0.5)
    assert isinstance(clone.layer, keras.layers.Conv2D) and clone.layer.filters == 4


def test_qat_fit_learns_on_this_backend():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, :4].sum(axis=1) > 0).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            QuantizeWrapper(keras.layers.Dense(16, activation="relu"), quantize_inputs=True),
            QuantizeWrapper(keras.layers.Dense(2, activation="softmax")),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.9
    assert float(numpy(model.layers[0].activation_range("input_0")[1])) == pytest.approx(x.max(), rel=0.3)


def clustered_dense(values, *, preserve_sparsity=False, preserve_clusters):
    """A Dense(3) on 4 inputs whose kernel holds only `values` (in a fixed pattern), wrapped for QAT."""
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    kernel = np.asarray(values, "float32")[np.arange(12).reshape(4, 3) % len(values)]
    layer.set_weights([kernel, np.zeros(3, "float32")])
    wrapper = QuantizeWrapper(layer, preserve_sparsity=preserve_sparsity, preserve_clusters=preserve_clusters)
    model = keras.Sequential([keras.Input((4,)), wrapper])
    return model, wrapper, kernel


def fit_a_few_steps(model):
    rng = np.random.default_rng(3)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(rng.normal(size=(16, 4)), rng.normal(size=(16, 3)), batch_size=4, epochs=2, verbose=0)


def test_preserve_clusters_trains_the_shared_values_with_fixed_assignments():
    model, wrapper, kernel = clustered_dense([-0.5, 0.25, 0.75], preserve_clusters=3)
    centroids, indices = wrapper._clusters["kernel"]
    np.testing.assert_allclose(numpy(centroids), [-0.5, 0.25, 0.75])
    np.testing.assert_array_equal(np.asarray([-0.5, 0.25, 0.75])[numpy(indices)], kernel)
    assert {w.path.split("/")[-1] for w in wrapper.trainable_weights} == {"kernel_centroids", "bias"}
    fit_a_few_steps(model)
    assert not np.allclose(numpy(centroids), [-0.5, 0.25, 0.75])  # the shared values trained
    np.testing.assert_array_equal(numpy(wrapper.layer.kernel), kernel)  # the float kernel did not
    np.testing.assert_array_equal(numpy(indices), np.arange(12).reshape(4, 3) % 3)  # nor the assignments
    used = np.take(numpy(centroids), numpy(indices))
    np.testing.assert_allclose(numpy(wrapper.quantized_weights()["kernel"]), reference_symmetric(used), atol=1e-6)


def test_preserve_clusters_with_sparsity_keeps_the_zeros_out_of_the_shared_values():
    model, wrapper, kernel = clustered_dense([0.0, -0.4, 0.6], preserve_sparsity=True, preserve_clusters=2)
    np.testing.assert_allclose(numpy(wrapper._clusters["kernel"][0]), [-0.4, 0.6])
    fit_a_few_steps(model)
    quantized = numpy(wrapper.quantized_weights()["kernel"])
    np.testing.assert_array_equal(quantized == 0, kernel == 0)
    for channel in quantized.T:
        assert len(np.unique(channel[channel != 0])) <= 2


def test_preserve_clusters_pads_a_weight_with_fewer_distinct_values():
    _, wrapper, _ = clustered_dense([0.3, -0.3], preserve_clusters=4)
    np.testing.assert_allclose(numpy(wrapper._clusters["kernel"][0]), [-0.3, 0.3, 0.3, 0.3])


def test_preserve_clusters_and_quantize_config_round_trip():
    from tfopt.layers import Default8BitQuantizeConfig

    wrapper = QuantizeWrapper(keras.layers.Dense(2), preserve_clusters=16)
    assert QuantizeWrapper.from_config(wrapper.get_config()).preserve_clusters == 16
    config = Default8BitQuantizeConfig(["kernel"], ["activation"], True)
    clone = QuantizeWrapper.from_config(QuantizeWrapper(keras.layers.Dense(2), quantize_config=config).get_config())
    assert isinstance(clone.quantize_config, Default8BitQuantizeConfig)
    assert clone.quantize_config.get_config() == config.get_config()


@pytest.mark.parametrize("kwargs, error, message", [
    ({"preserve_clusters": 257}, ValueError,
     "Argument `preserve_clusters` must be an integer in [1, 256]. Received: preserve_clusters=257"),
    ({"preserve_clusters": 2.5}, TypeError, "Argument `preserve_clusters` must be an integer in [1, 256]"),
    ({"quantize_config": "8bit"}, TypeError,
     "Argument `quantize_config` must be a tfopt.layers.QuantizeConfig or None. Received: quantize_config='8bit'"),
])
def test_rejects_bad_collaborative_arguments(kwargs, error, message):
    with pytest.raises(error) as raised:
        QuantizeWrapper(keras.layers.Dense(2), **kwargs)
    assert message in str(raised.value)
