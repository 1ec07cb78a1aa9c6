"""cluster_weights and strip_clustering: weight sharing for a whole model (Han et al. 2016)."""

import keras
import numpy as np

from tfopt import _checks
from tfopt.compression import _model_graph
from tfopt.layers import quantizable_layer
from tfopt.layers.cluster_weights import CENTROID_INITS, ClusterWeights

__all__ = ["cluster_weights", "strip_clustering"]


def cluster_weights(model, number_of_clusters, centroid_init="kmeans++", *, seed=0, preserve_sparsity="auto"):
    """Returns a copy of `model` whose Dense/Conv/Depthwise kernels share `number_of_clusters` values each.

    Every supported layer is wrapped in a `ClusterWeights` whose centroids start from its trained kernel; fine-tune
    the result with `compile`/`fit` for a few epochs (centroids and assignments adapt), then call
    `strip_clustering` to get a plain Keras model whose kernels hold at most `number_of_clusters` distinct values
    each. Other layers (and biases) are copied unchanged. Clustering composes with int8 export: the shared values
    land on at most `number_of_clusters` int8 levels per channel.

    Args:
        model: a built Sequential or functional `keras.Model` (trained).
        number_of_clusters: shared values per kernel, an integer >= 2 (16 keeps 4-bit indices).
        centroid_init: "kmeans++" (default) or "linear"; see `tfopt.layers.ClusterWeights`.
        seed: seed of the k-means++ draws. Default 0.
        preserve_sparsity: "auto" (default: for kernels that have exactly-zero entries, e.g. pruned ones), True or
            False: zero is kept as one of the shared values and zero entries stay zero.

    Returns:
        A new, uncompiled `keras.Model` with the same weights, wrapped for clustering.

    References:
        - Han, Mao and Dally, 2016, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained
          Quantization and Huffman Coding", https://arxiv.org/abs/1510.00149
    """
    number_of_clusters = _checks.integer("number_of_clusters", number_of_clusters, 2)
    _checks.choice("centroid_init", centroid_init, CENTROID_INITS)
    _checks.integer("seed", seed, 0)
    if preserve_sparsity not in ("auto", True, False):
        raise ValueError(
            f"Argument `preserve_sparsity` must be one of 'auto', True, False. Received: "
            f"preserve_sparsity={preserve_sparsity!r}"
        )
    _model_graph.check_model(model)

    def should_wrap(layer):
        return quantizable_layer.supports(layer) and not isinstance(layer, ClusterWeights)

    # More clusters than weights would leave every weight its own "cluster": nothing shared, nothing compressed.
    sizes = {}
    for layer in model.layers:
        names = quantizable_layer.quantizable_weights(layer) if should_wrap(layer) else []
        if names:
            sizes[layer.name] = min(int(np.prod(getattr(layer, name).shape)) for name in names)
    _checks.clusters("number_of_clusters", number_of_clusters, sizes)

    def make_wrapper(layer, fresh):
        if preserve_sparsity == "auto":
            weights = [getattr(fresh, n) for n in quantizable_layer.quantizable_weights(fresh)]
            sparse = quantizable_layer.has_zeros(weights)
        else:
            sparse = preserve_sparsity
        return ClusterWeights(
            fresh, number_of_clusters, centroid_init, seed=seed, preserve_sparsity=sparse, name=f"cluster_{layer.name}"
        )

    return _model_graph.clone_with_wrappers(model, should_wrap, make_wrapper)


def strip_clustering(model):
    """Returns a plain copy of a clustered model: each `ClusterWeights` replaced by its layer, whose kernel holds
    the shared values (at most `number_of_clusters` distinct ones). The result is uncompiled."""
    _model_graph.check_model(model)
    if not any(isinstance(layer, ClusterWeights) for layer in model.layers):
        raise ValueError(f"Argument `model` has no ClusterWeights layer to strip. Received: model {model.name!r}")
    shared = {}

    def clone(layer):
        if not isinstance(layer, ClusterWeights):
            return layer.__class__.from_config(layer.get_config())
        inner = layer.layer
        fresh = inner.__class__.from_config(inner.get_config())
        fresh.build_from_config(inner.get_build_config())
        values = {k: keras.ops.convert_to_numpy(v) for k, v in layer.clustered_weights().items()}
        weights = []
        for variable in inner.weights:
            name = next((k for k in values if getattr(inner, k) is variable), None)
            weights.append(np.asarray(values[name]) if name else keras.ops.convert_to_numpy(variable))
        fresh.set_weights(weights)
        shared[fresh.name] = layer.name
        return fresh

    stripped = keras.models.clone_model(model, clone_function=clone)
    for layer in stripped.layers:
        if layer.name not in shared and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return stripped
