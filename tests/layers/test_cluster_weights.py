import keras
import numpy as np
import pytest

from tfopt.layers import ClusterWeights
from tfopt.layers.cluster_weights import initial_centroids

pytestmark = pytest.mark.backend_agnostic


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def wrapped_dense(clusters=4, init="linear"):
    layer = keras.layers.Dense(3)
    layer.build((None, 5))
    rng = np.random.default_rng(0)
    layer.set_weights([rng.normal(size=(5, 3)).astype("float32"), rng.normal(size=3).astype("float32")])
    wrapper = ClusterWeights(layer, clusters, init)
    wrapper.build((None, 5))
    return wrapper


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"number_of_clusters": 1},
            ValueError,
            "Argument `number_of_clusters` must be an integer >= 2. Received: number_of_clusters=1",
        ),
        ({"number_of_clusters": 2.5}, TypeError, "Argument `number_of_clusters` must be an integer >= 2"),
        (
            {"number_of_clusters": 4, "centroid_init": "random"},
            ValueError,
            "Argument `centroid_init` must be one of 'kmeans\\+\\+', 'linear'. Received: centroid_init='random'",
        ),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        ClusterWeights(keras.layers.Dense(2), **kwargs)


def test_rejects_a_layer_without_kernels():
    with pytest.raises(ValueError, match="Argument `layer` must be a Dense, Conv1D/2D/3D or DepthwiseConv1D/2D"):
        ClusterWeights(keras.layers.Flatten(), 4)


def test_linear_init_spans_the_weights_evenly():
    w = np.random.default_rng(1).normal(size=100)
    np.testing.assert_allclose(initial_centroids(w, 5, "linear"), np.linspace(w.min(), w.max(), 5))


def test_kmeans_plus_plus_finds_separated_clusters():
    rng = np.random.default_rng(2)
    w = np.concatenate([rng.normal(c, 0.01, 200) for c in (-1.0, 0.0, 0.5, 2.0)])
    np.testing.assert_allclose(initial_centroids(w, 4, "kmeans++", seed=3), [-1.0, 0.0, 0.5, 2.0], atol=0.01)
    np.testing.assert_array_equal(initial_centroids(w, 4, seed=3), initial_centroids(w, 4, seed=3))


def test_forward_uses_the_nearest_centroid():
    wrapper = wrapped_dense()
    kernel, bias = (numpy(v).astype("float64") for v in wrapper.layer.weights)
    centroids = numpy(wrapper.centroids()).astype("float64")
    shared = centroids[np.argmin(np.abs(kernel[..., None] - centroids), axis=-1)]
    x = np.random.default_rng(4).normal(size=(7, 5)).astype("float32")
    np.testing.assert_allclose(numpy(wrapper(x)), x @ shared + bias, rtol=1e-5, atol=1e-6)
    assert len(np.unique(numpy(wrapper.clustered_weights()["kernel"]))) <= 4


def test_centroid_gradient_is_the_sum_over_its_members():
    wrapper = wrapped_dense()
    model = keras.Sequential([keras.Input((5,)), wrapper])
    x = np.random.default_rng(5).normal(size=(4, 5)).astype("float32")
    assignment = numpy(wrapper.assignments())
    before_c = numpy(wrapper.centroids()).astype("float64")
    before_w = numpy(wrapper.layer.kernel).astype("float64")
    # Loss = sum of outputs: d/d(effective kernel) = column sums of x for every output unit.
    model.compile(keras.optimizers.SGD(0.01), loss=lambda y_true, y_pred: keras.ops.sum(y_pred))
    model.fit(x, np.zeros((4, 3), "float32"), batch_size=4, epochs=1, verbose=0)
    entry_grad = np.repeat(x.sum(axis=0)[:, None], 3, axis=1)
    expected_c = before_c - 0.01 * np.array([entry_grad[assignment == k].sum() for k in range(4)])
    np.testing.assert_allclose(numpy(wrapper.centroids()), expected_c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy(wrapper.layer.kernel), before_w - 0.01 * entry_grad, rtol=1e-5, atol=1e-6)


def test_config_round_trip():
    wrapper = ClusterWeights(keras.layers.Conv2D(4, 3), 8, "kmeans++", seed=5)
    clone = ClusterWeights.from_config(wrapper.get_config())
    assert (clone.number_of_clusters, clone.centroid_init, clone.seed) == (8, "kmeans++", 5)
