import keras
import numpy as np
import pytest

from tfopt.compression import cluster_weights, strip_clustering
from tfopt.layers import ClusterWeights

pytestmark = pytest.mark.backend_agnostic


def numpy(x):
    return keras.ops.convert_to_numpy(x)


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 6, 6, 2)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > x[..., 1].mean(axis=(1, 2))).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.DepthwiseConv2D(3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    return model, x, y


@pytest.mark.parametrize("init", ["kmeans++", "linear"])
def test_strip_leaves_at_most_n_values_per_kernel_and_keeps_accuracy(task, init):
    model, x, y = task
    float_accuracy = model.evaluate(x, y, verbose=0)[1]
    clustered = cluster_weights(model, 8, init)
    assert sum(isinstance(layer, ClusterWeights) for layer in clustered.layers) == 4
    clustered.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = [numpy(layer.centroids()).copy() for layer in clustered.layers if isinstance(layer, ClusterWeights)]
    clustered.fit(x, y, epochs=2, batch_size=32, verbose=0)
    end = [numpy(layer.centroids()) for layer in clustered.layers if isinstance(layer, ClusterWeights)]
    assert all(np.abs(a - b).max() > 1e-4 for a, b in zip(start, end))  # centroids trained
    stripped = strip_clustering(clustered)
    assert not any(isinstance(layer, ClusterWeights) for layer in stripped.layers)
    for layer in stripped.layers:
        if layer.weights:
            assert len(np.unique(layer.get_weights()[0])) <= 8
    np.testing.assert_allclose(stripped.predict(x, verbose=0), clustered.predict(x, verbose=0), atol=1e-5)
    stripped.compile(metrics=["accuracy"], loss="sparse_categorical_crossentropy")
    assert stripped.evaluate(x, y, verbose=0)[1] >= float_accuracy - 0.05


def test_biases_and_other_layers_are_untouched(task):
    model, _, _ = task
    clustered = cluster_weights(model, 4)
    for original, layer in zip(model.layers, clustered.layers):
        inner = layer.layer if isinstance(layer, ClusterWeights) else layer
        for a, b in zip(original.get_weights(), inner.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_save_and_load_a_clustered_model(task, tmp_path):
    model, x, y = task
    clustered = cluster_weights(model, 4, "linear")
    clustered.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    clustered.fit(x, y, epochs=1, verbose=0)
    clustered.save(tmp_path / "clustered.keras")
    loaded = keras.models.load_model(tmp_path / "clustered.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), clustered.predict(x, verbose=0))
    for a, b in zip(clustered.optimizer.variables, loaded.optimizer.variables):
        np.testing.assert_array_equal(numpy(a), numpy(b))


def test_rejects_bad_arguments(task):
    model, _, _ = task
    with pytest.raises(
        ValueError, match="Argument `number_of_clusters` must be an integer >= 2. Received: number_of_clusters=1"
    ):
        cluster_weights(model, 1)
    with pytest.raises(
        ValueError,
        match="Argument `centroid_init` must be one of 'kmeans\\+\\+', 'linear'. Received: centroid_init='density'",
    ):
        cluster_weights(model, 4, "density")
    with pytest.raises(ValueError, match="Argument `model` has no ClusterWeights layer to strip"):
        strip_clustering(model)


def test_a_pruned_model_keeps_its_zeros_and_at_most_n_values():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(20, activation="relu"), keras.layers.Dense(2)])
    rng = np.random.default_rng(3)
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        kernel[rng.random(kernel.shape) < 0.7] = 0.0
        layer.set_weights([kernel, bias])
    zeros = [layer.get_weights()[0] == 0 for layer in model.layers]
    clustered = cluster_weights(model, 4)  # "auto": these kernels have zeros
    assert all(layer.preserve_sparsity for layer in clustered.layers)
    clustered.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clustered.fit(rng.normal(size=(128, 10)), rng.integers(0, 2, 128), epochs=2, verbose=0)
    for layer, zero in zip(strip_clustering(clustered).layers, zeros):
        kernel = layer.get_weights()[0]
        np.testing.assert_array_equal(kernel == 0, zero)
        assert len(np.unique(kernel)) <= 4  # zero and three shared non-zero values


def test_training_resumed_after_load_matches_unbroken_training(task, tmp_path):
    model, x, y = task
    clustered = cluster_weights(model, 4, "linear")
    clustered.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    clustered.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    clustered.save(tmp_path / "clustered.keras")
    loaded = keras.models.load_model(tmp_path / "clustered.keras")
    resumed = loaded.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0).history["loss"]
    unbroken = clustered.fit(x, y, batch_size=64, epochs=2, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(resumed, unbroken, rtol=1e-6)
    for a, b in zip(clustered.get_weights(), loaded.get_weights()):  # centroids and assignments included
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
