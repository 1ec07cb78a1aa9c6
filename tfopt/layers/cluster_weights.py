"""ClusterWeights: weight sharing for one layer, with trainable centroids (keras.ops only)."""

import keras
import numpy as np
from keras import ops

from tfopt import _checks
from tfopt.layers import quantizable_layer

__all__ = ["CENTROID_INITS", "ClusterWeights", "initial_centroids"]

CENTROID_INITS = ("kmeans++", "linear")


def initial_centroids(values, number_of_clusters, centroid_init="kmeans++", seed=0, iterations=20):
    """Initial centroids of a weight's values (NumPy, at wrap time).

    "linear": `n` values evenly spaced from `min(w)` to `max(w)` (Han et al.'s recommendation: it keeps the rare
    large weights, which matter most, at their own centroids). "kmeans++": k-means++ seeding (Arthur and
    Vassilvitskii 2007: each next seed drawn with probability proportional to the squared distance to the nearest
    seed so far), refined by `iterations` Lloyd steps (1-D k-means); it fits dense regions of the distribution.
    Returns a float64 array of `n` sorted centroids.
    """
    values = np.asarray(values, "float64").reshape(-1)
    if centroid_init == "linear":
        return np.linspace(values.min(), values.max(), number_of_clusters)
    rng = np.random.default_rng(seed)
    centroids = [values[rng.integers(len(values))]]
    for _ in range(1, number_of_clusters):
        distance = np.min((values[:, None] - np.asarray(centroids)[None, :]) ** 2, axis=1)
        total = distance.sum()
        index = rng.choice(len(values), p=distance / total) if total > 0 else rng.integers(len(values))
        centroids.append(values[index])
    centroids = np.sort(np.asarray(centroids))
    for _ in range(iterations):
        assignment = np.argmin(np.abs(values[:, None] - centroids[None, :]), axis=1)
        for k in range(number_of_clusters):
            members = values[assignment == k]
            if len(members):
                centroids[k] = members.mean()
    return np.sort(centroids)


@keras.saving.register_keras_serializable(package="tfopt")
class ClusterWeights(keras.layers.Wrapper):
    """Weight sharing (Han et al. 2016): every kernel entry takes the value of its nearest of `n` centroids.

    Use it (through `tfopt.compression.cluster_weights`) to fine-tune a trained model whose kernels then hold at
    most `n` distinct values: after `strip_clustering` the file stores the same number of floats, but they
    compress far better (gzip, or a palette of `log2(n)`-bit indices), and the model stays a plain float model that
    any runtime runs. 16-32 clusters usually keep the accuracy of a small CNN.

    In the forward pass, for each kernel entry `w_i` and centroids `c_1 .. c_n` (trainable, initialised from the
    kernel by "kmeans++" or "linear"):

        a(i) = argmin_k |w_i - c_k|            (assignment, recomputed every step)
        w'_i = c_a(i)                          (value used)

    Gradients: each centroid gets the sum of the gradients of the entries assigned to it (the gather's gradient,
    as in tfmot), and each original weight gets its own entry's gradient (straight-through), so weights can move
    to another cluster during fine-tuning.

    With `preserve_sparsity`, zero is one of the `n` shared values and stays fixed: entries that were exactly zero
    when the wrapper was built stay zero (a fixed mask), the other entries share `n - 1` trainable centroids
    initialised from the non-zero entries. So a pruned model keeps its zeros through clustering.

    Args:
        layer: Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, or a layer implementing `tfopt.layers.QuantizableLayer`.
        number_of_clusters: `n`, an integer >= 2.
        centroid_init: "kmeans++" (default) or "linear".
        seed: seed of the k-means++ draws. Default 0.
        preserve_sparsity: keep zero entries at zero (see above). Default False.
        **kwargs: base `Layer` arguments (`name`, ...).

    References:
        - Han, Mao and Dally, 2016, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained
          Quantization and Huffman Coding", https://arxiv.org/abs/1510.00149
        - Arthur and Vassilvitskii, 2007, "k-means++: The Advantages of Careful Seeding"
    """

    def __init__(self, layer, number_of_clusters, centroid_init="kmeans++", seed=0, preserve_sparsity=False, **kwargs):
        if not isinstance(layer, keras.layers.Layer) or not quantizable_layer.supports(layer):
            raise ValueError(
                "Argument `layer` must be a Dense, Conv1D/2D/3D or DepthwiseConv1D/2D layer, or implement "
                f"tfopt.layers.QuantizableLayer. Received: layer={layer!r}"
            )
        super().__init__(layer, **kwargs)
        # A first layer given `input_shape` (Keras 2 style) still gives its Sequential model an input.
        if getattr(layer, "_input_shape_arg", None) is not None:
            self._input_shape_arg = layer._input_shape_arg
        self.number_of_clusters = _checks.integer("number_of_clusters", number_of_clusters, 2)
        self.centroid_init = _checks.choice("centroid_init", centroid_init, CENTROID_INITS)
        self.seed = _checks.integer("seed", seed, 0)
        self.preserve_sparsity = bool(preserve_sparsity)

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
        self._names = list(quantizable_layer.quantizable_weights(self.layer))
        self._centroids, self._masks = {}, {}
        shared = self.number_of_clusters - 1 if self.preserve_sparsity else self.number_of_clusters
        for name in self._names:
            weight = getattr(self.layer, name)
            values = keras.ops.convert_to_numpy(weight)
            if self.preserve_sparsity:
                mask = self.add_weight(name=f"{name}_mask", shape=weight.shape, initializer="ones", trainable=False)
                mask.assign((values != 0).astype(mask.dtype))
                self._masks[name] = mask
                values = values[values != 0] if np.any(values != 0) else values
            start = initial_centroids(values, shared, self.centroid_init, self.seed) if shared > 1 else [values.mean()]
            variable = self.add_weight(name=f"{name}_centroids", shape=(shared,), initializer="zeros", trainable=True)
            variable.assign(np.asarray(start).astype(variable.dtype))
            self._centroids[name] = variable
        self.built = True

    def centroids(self, name="kernel"):
        """The centroid variable of one clustered weight."""
        return self._centroids[name]

    def assignments(self, name="kernel"):
        """Index of the nearest centroid for each entry of the weight (same shape as the weight)."""
        weight = getattr(self.layer, name)
        distance = ops.abs(ops.expand_dims(weight, -1) - self._centroids[name])
        return ops.argmin(distance, axis=-1)

    def clustered_weights(self):
        """`{name: value}` of the clustered weights as the forward pass uses them."""
        values = {}
        for name in self._names:
            weight = getattr(self.layer, name)
            shared = ops.take(self._centroids[name], ops.stop_gradient(self.assignments(name)))
            value = shared + (weight - ops.stop_gradient(weight))  # value exactly `shared`
            values[name] = value * self._masks[name] if name in self._masks else value
        return values

    def call(self, inputs):
        outputs = quantizable_layer.call_with_weights(self.layer, inputs, self.clustered_weights())
        activation = getattr(self.layer, "activation", None)
        return outputs if activation is None else activation(outputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            number_of_clusters=self.number_of_clusters,
            centroid_init=self.centroid_init,
            seed=self.seed,
            preserve_sparsity=self.preserve_sparsity,
        )
        return config
