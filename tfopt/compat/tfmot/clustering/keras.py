"""`tfmot.clustering.keras` on tfopt: weight clustering with tfmot's names and arguments.

`cluster_weights(to_cluster, number_of_clusters, cluster_centroids_init=..., preserve_sparsity=...)` calls
`tfopt.compression.cluster_weights` for a model and wraps a layer (or each layer of a list) in
`tfopt.layers.ClusterWeights`; `strip_clustering` is tfopt's. What differs:

- `cluster_centroids_init`: `CentroidInitialization.LINEAR` and `KMEANS_PLUS_PLUS` (tfmot's default) map to
  tfopt's "linear" and "kmeans++"; `RANDOM` and `DENSITY_BASED` are errors (tfopt has neither).
- `preserve_sparsity` defaults to tfopt's "auto" (kernels that hold zeros keep them), where tfmot's is False.
- `cluster_per_channel` must be False: tfopt shares values per kernel.
"""

import enum

import keras

from tfopt.compression import cluster as _cluster
from tfopt.compression.cluster import strip_clustering
from tfopt.layers import quantizable_layer
from tfopt.layers.cluster_weights import ClusterWeights

__all__ = ["CentroidInitialization", "cluster_scope", "cluster_weights", "strip_clustering"]


class CentroidInitialization(str, enum.Enum):
    """tfmot's centroid initializations; tfopt implements LINEAR and KMEANS_PLUS_PLUS."""

    LINEAR = "linear"
    RANDOM = "random"
    DENSITY_BASED = "density-based"
    KMEANS_PLUS_PLUS = "kmeans++"


_SUPPORTED = {CentroidInitialization.LINEAR: "linear", CentroidInitialization.KMEANS_PLUS_PLUS: "kmeans++"}


def _centroid_init(value):
    try:
        member = CentroidInitialization(value)
    except ValueError:
        member = None
    if member not in _SUPPORTED:
        raise ValueError(
            "Argument `cluster_centroids_init` must be CentroidInitialization.LINEAR or KMEANS_PLUS_PLUS (tfopt "
            f"has no RANDOM or DENSITY_BASED initialization). Received: cluster_centroids_init={value!r}"
        )
    return _SUPPORTED[member]


def _wrap_layer(layer, number_of_clusters, init, preserve_sparsity):
    if preserve_sparsity == "auto":
        built = layer.built and quantizable_layer.supports(layer)
        weights = [getattr(layer, n) for n in quantizable_layer.quantizable_weights(layer)] if built else []
        preserve_sparsity = quantizable_layer.has_zeros(weights)
    return ClusterWeights(layer, number_of_clusters, init, preserve_sparsity=preserve_sparsity)


def cluster_weights(to_cluster, number_of_clusters, cluster_centroids_init=CentroidInitialization.KMEANS_PLUS_PLUS,
                    **kwargs):
    """tfmot's `cluster_weights`: a model's supported layers (or the given layer, or layers) share
    `number_of_clusters` values per kernel; see the module docstring for what differs.

    Args:
        to_cluster: a Sequential or functional Keras 3 model, a layer, or a list of layers.
        number_of_clusters: shared values per kernel, an integer >= 2.
        cluster_centroids_init: a `CentroidInitialization` (LINEAR or KMEANS_PLUS_PLUS, the default).
        **kwargs: `preserve_sparsity` (bool; default "auto") and `cluster_per_channel` (False only).
    """
    preserve_sparsity = kwargs.pop("preserve_sparsity", "auto")
    if kwargs.pop("cluster_per_channel", False):
        raise ValueError("Argument `cluster_per_channel` must be False: tfopt shares values per kernel. Received: "
                         "cluster_per_channel=True")
    if kwargs:
        raise TypeError(f"cluster_weights() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
    init = _centroid_init(cluster_centroids_init)
    if isinstance(to_cluster, keras.Model):
        return _cluster.cluster_weights(to_cluster, number_of_clusters, init, preserve_sparsity=preserve_sparsity)
    if isinstance(to_cluster, (list, tuple)):
        return [_wrap_layer(layer, number_of_clusters, init, preserve_sparsity) for layer in to_cluster]
    return _wrap_layer(to_cluster, number_of_clusters, init, preserve_sparsity)


def cluster_scope():
    """tfmot's `cluster_scope()`: the scope for loading clustered models; tfopt's classes are registered with Keras,
    so this one is empty and kept for code that uses it."""
    return keras.saving.CustomObjectScope({})
