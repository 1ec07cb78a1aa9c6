"""PQAT, CQAT and PCQAT (quantize_model with preserve_sparsity / preserve_clusters): QAT keeps a pruned model's
zeros and a clustered model's shared values through fine-tuning and into the int8 TFLite file, measured in the
file's int8 kernels (TensorFlow only, like the export)."""

import keras
import numpy as np
import pytest

from tfopt.compression import (
    ConstantSparsity,
    cluster_weights,
    evaluate_tflite,
    export_tflite,
    inspect_tflite,
    prune_low_magnitude,
    quantize_model,
    strip_clustering,
    strip_pruning,
)
from tfopt.compression.tflite_model import tflite_interpreter
from tfopt.data import load_digits

CLUSTERS = 8
SPARSITY = 0.5
KERNEL_OPS = ("CONV_2D", "FULLY_CONNECTED")


def cnn():
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, activation="relu", name="conv"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10, name="head"),
    ])


def fit(model, data, epochs=1, learning_rate=1e-3, callbacks=()):
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x, y = data.train
    model.fit(x[:384], y[:384], batch_size=32, epochs=epochs, verbose=0, shuffle=False, callbacks=list(callbacks))
    return model


@pytest.fixture(scope="module")
def data():
    return load_digits()


@pytest.fixture(scope="module")
def base(data):
    keras.utils.set_random_seed(0)
    return fit(cnn(), data, epochs=3)


@pytest.fixture(scope="module")
def pruned(base, data):
    model = prune_low_magnitude(base, ConstantSparsity(SPARSITY, begin_step=0, frequency=4))
    return strip_pruning(fit(model, data))


@pytest.fixture(scope="module")
def clustered(base, data):
    return strip_clustering(fit(cluster_weights(base, CLUSTERS, "linear"), data))


@pytest.fixture(scope="module")
def pruned_clustered(pruned, data):
    return strip_clustering(fit(cluster_weights(pruned, CLUSTERS, "linear"), data))  # keeps zeros: "auto"


def int8_kernels(path):
    """`{op index: int8 kernel (output channels first)}` of the file's CONV_2D / FULLY_CONNECTED ops."""
    info = inspect_tflite(path)
    with open(path, "rb") as f:
        interpreter = tflite_interpreter(model_content=f.read())
    interpreter.allocate_tensors()
    kernels = []
    for op in info["ops"]:
        if op["op"] in KERNEL_OPS:
            weights = op["inputs"][1]
            assert weights["dtype"] == "int8"
            kernels.append(interpreter.get_tensor(weights["index"]))
    assert len(kernels) == 2
    return kernels


def per_channel_distinct(kernel, nonzero_only=False):
    counts = []
    for channel in kernel.reshape(kernel.shape[0], -1):
        values = channel[channel != 0] if nonzero_only else channel
        counts.append(len(np.unique(values)))
    return np.array(counts)


def sparsity(kernel):
    return float(np.mean(kernel == 0))


def qat_file(model, data, tmp_path, **options):
    keras.utils.set_random_seed(1)
    qat = fit(quantize_model(model, **options), data, epochs=2, learning_rate=1e-3)
    return qat, export_tflite(qat, tmp_path / "model.tflite", quantization="int8")


def float_kernels(model):
    return [keras.ops.convert_to_numpy(model.get_layer(name).kernel) for name in ("conv", "head")]


def test_pqat_keeps_the_pruned_zeros_in_the_int8_kernels(pruned, data, tmp_path):
    _, path = qat_file(pruned, data, tmp_path)
    for before, after in zip(float_kernels(pruned), int8_kernels(path)):
        zeros = np.moveaxis(before, -1, 0).reshape(after.shape) == 0
        assert zeros.mean() == pytest.approx(SPARSITY, abs=0.01)
        np.testing.assert_array_equal(after == 0, zeros)  # the same positions, no zero lost or added


def test_qat_without_sparsity_preservation_loses_zeros(pruned, data, tmp_path):
    _, path = qat_file(pruned, data, tmp_path, preserve_sparsity=False)
    assert max(sparsity(k) for k in int8_kernels(path)) < SPARSITY - 0.1


def test_cqat_keeps_at_most_the_clusters_per_output_channel(clustered, data, tmp_path):
    qat, path = qat_file(clustered, data, tmp_path, preserve_clusters=True)
    assert [layer.preserve_clusters for layer in qat.layers if hasattr(layer, "preserve_clusters")] == [
        CLUSTERS, CLUSTERS]
    for kernel in int8_kernels(path):
        counts = per_channel_distinct(kernel)
        assert counts.max() <= CLUSTERS and counts.max() >= CLUSTERS - 2
    # the shared values trained: the file is not the clustered float model rounded once
    centroids = keras.ops.convert_to_numpy(qat.get_layer("quant_conv")._clusters["kernel"][0])
    start = np.unique(float_kernels(clustered)[0])
    assert not np.allclose(np.sort(centroids)[: len(start)], start)


def test_qat_without_cluster_preservation_spreads_the_shared_values(clustered, data, tmp_path):
    _, path = qat_file(clustered, data, tmp_path)
    assert max(per_channel_distinct(k).max() for k in int8_kernels(path)) > CLUSTERS


def test_pcqat_keeps_zeros_and_shared_values(pruned_clustered, data, tmp_path):
    qat, path = qat_file(pruned_clustered, data, tmp_path, preserve_clusters=True)
    x, y = data.test
    assert evaluate_tflite(path, x, y) == pytest.approx(float(qat.evaluate(x, y, verbose=0)[1]), abs=0.01)
    for before, after in zip(float_kernels(pruned_clustered), int8_kernels(path)):
        zeros = np.moveaxis(before, -1, 0).reshape(after.shape) == 0
        assert zeros.mean() >= SPARSITY - 0.01
        np.testing.assert_array_equal(after == 0, zeros)
        assert per_channel_distinct(after, nonzero_only=True).max() <= CLUSTERS - 1  # zero is one of the 8


def test_cqat_model_saves_loads_and_resumes(clustered, data, tmp_path):
    qat, _ = qat_file(clustered, data, tmp_path, preserve_clusters=True)
    x = data.test[0][:16]
    qat.save(tmp_path / "cqat.keras")
    loaded = keras.models.load_model(tmp_path / "cqat.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), qat.predict(x, verbose=0))
    assert loaded.get_layer("quant_conv").preserve_clusters == CLUSTERS
    fit(loaded, data)
    kernel = keras.ops.convert_to_numpy(loaded.get_layer("quant_conv").quantized_weights()["kernel"])
    assert per_channel_distinct(np.moveaxis(kernel, -1, 0)).max() <= CLUSTERS


def test_preserve_clusters_must_be_a_bool(clustered):
    with pytest.raises(TypeError, match="Argument `preserve_clusters` must be a bool. Received: preserve_clusters=8"):
        quantize_model(clustered, preserve_clusters=8)


def test_cqat_without_sparsity_preservation_keeps_zero_as_a_shared_value(pruned_clustered, data, tmp_path):
    qat, path = qat_file(pruned_clustered, data, tmp_path, preserve_clusters=True, preserve_sparsity=False)
    wrapper = qat.get_layer("quant_conv")
    distinct = len(np.unique(float_kernels(pruned_clustered)[0]))
    assert wrapper.preserve_clusters == distinct and not wrapper.preserve_sparsity  # zero counted as a value
    for kernel in int8_kernels(path):
        assert per_channel_distinct(kernel).max() <= CLUSTERS
