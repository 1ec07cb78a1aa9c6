"""WeightHistograms: TensorBoard histograms of the weights inside tfopt's wrappers (pruning, QAT, clustering), as
the forward pass uses them and as they are stored.

It writes with `tf.summary`, so it needs TensorFlow installed (a tfopt dependency); it works under any Keras
backend.
"""

import keras
import numpy as np

from tfopt import _checks
from tfopt.callbacks._summary_writer import SummaryWriterCallback
from tfopt.layers.cluster_weights import ClusterWeights
from tfopt.layers.prune_low_magnitude import PruneLowMagnitude
from tfopt.layers.quantize_wrapper import QuantizeWrapper


def effective_weights(wrapper):
    """`{weight name: value}` of what a tfopt wrapper computes with: masked (`PruneLowMagnitude`), fake-quantized
    to int8 (`QuantizeWrapper`) or shared centroids (`ClusterWeights`); `{}` for any other layer."""

    if not wrapper.built:
        return {}
    if isinstance(wrapper, PruneLowMagnitude):
        return {v.name: value for v, value in zip(wrapper.pruned_weights, wrapper.masked_weights())}
    if isinstance(wrapper, QuantizeWrapper):
        return dict(wrapper.quantized_weights())
    if isinstance(wrapper, ClusterWeights):
        return dict(wrapper.clustered_weights())
    return {}


@keras.saving.register_keras_serializable(package="tfopt")
class WeightHistograms(SummaryWriterCallback):
    """Writes a histogram of every weight a tfopt wrapper transforms, before and after the transformation.

    Use it to see what compression does to a distribution: the spike at zero that pruning grows, the 255 levels
    QAT rounds a kernel to, the few values clustering leaves. For each `PruneLowMagnitude`, `QuantizeWrapper` and
    `ClusterWeights` in the model (nested models included) and each weight it transforms, it writes two histograms
    to an event file in `log_dir/weights`, at the optimizer step:

        <wrapper>/<weight>          the value the forward pass uses: w * mask, q(w), or centroid[assignment(w)]
        <wrapper>/<weight>/stored   the trained variable w itself

    With `include_unwrapped=True` every other layer's weights are written too, as `<layer>/<weight>` (stored
    values). It writes at the end of every epoch, or every `update_freq` optimizer steps when that is an integer.

    Args:
        log_dir: directory for the TensorBoard logs (str or os.PathLike).
        update_freq: "epoch" (default), or an integer >= 1: write every this many optimizer steps.
        buckets: histogram buckets, an integer >= 2. Default 30 (TensorBoard's).
        include_unwrapped: also write the weights of layers no tfopt wrapper holds. Default False.
    """

    subdir = "weights"

    def __init__(self, log_dir, update_freq="epoch", buckets=30, include_unwrapped=False):
        super().__init__(log_dir, update_freq)
        self.buckets = _checks.integer("buckets", buckets, 2)
        _checks.boolean("include_unwrapped", include_unwrapped)
        self.include_unwrapped = include_unwrapped

    def histograms(self):
        """The values written: a dict tag -> NumPy array."""
        values = {}
        for layer in _layers(self.model):
            effective = effective_weights(layer)
            if effective:
                stored = {v.name: v for v in layer.layer.weights}
                for name, value in effective.items():
                    values[f"{layer.name}/{name}"] = keras.ops.convert_to_numpy(value)
                    if name in stored:
                        values[f"{layer.name}/{name}/stored"] = keras.ops.convert_to_numpy(stored[name])
            elif self.include_unwrapped and not isinstance(layer, keras.Model):
                for variable in layer.weights:
                    values[f"{layer.name}/{variable.name}"] = keras.ops.convert_to_numpy(variable)
        return values

    def write_summaries(self, tf, step):
        from tensorboard.plugins.histogram import metadata

        for tag, value in self.histograms().items():
            # Bucketed in NumPy and written as one tensor: tf.summary.histogram's eager ops cost ~20x more.
            tf.summary.write(tag, buckets(value, self.buckets), step=step,
                             metadata=metadata.create_summary_metadata(tag, ""))

    def get_config(self):
        return {**super().get_config(), "buckets": self.buckets, "include_unwrapped": self.include_unwrapped}


def buckets(value, count):
    """The `(count, 3)` float64 array of (left edge, right edge, count) rows TensorBoard's histogram plugin reads:
    `count` equal-width buckets from the minimum to the maximum (the last one closed), or one bucket when all
    values are equal."""
    value = np.asarray(value, dtype=np.float64).ravel()
    if value.size == 0:
        return np.zeros((0, 3))
    low, high = float(value.min()), float(value.max())
    if low == high:
        return np.array([[low, high, float(value.size)]])
    counts, edges = np.histogram(value, bins=count, range=(low, high))
    return np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)


def _layers(model):
    """Every layer of `model`, nested models opened, wrappers not (they are written as one)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer
