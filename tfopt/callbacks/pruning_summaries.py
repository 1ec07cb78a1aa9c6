"""PruningSummaries: per-layer sparsity and threshold of a pruned model as TensorBoard scalars.

It writes with `tf.summary`, so it needs TensorFlow installed (a tfopt dependency); it works under any Keras
backend.
"""

import keras
import numpy as np

from tfopt.callbacks._summary_writer import SummaryWriterCallback
from tfopt.compression.prune import collect_wrappers


@keras.saving.register_keras_serializable(package="tfopt")
class PruningSummaries(SummaryWriterCallback):
    """Logs the sparsity and the magnitude threshold of every pruned weight to TensorBoard.

    Use it to watch a pruning schedule act: for each weight a `PruneLowMagnitude` masks, it writes the scalars
    `<layer>/<weight>/sparsity` (the fraction of zeros in its mask) and `<layer>/<weight>/threshold` (the last
    magnitude threshold: weights with a smaller score were pruned), plus `total/sparsity` over all of them, to an
    event file in `log_dir/pruning`, at the optimizer step (`iterations`). It writes at the end of every epoch, or
    every `update_freq` optimizer steps when `update_freq` is an integer (on JAX each write copies the training
    state back to the variables, a small cost per written step).

        sparsity(w) = 1 - mean(mask(w)),   total = 1 - sum(mask) / sum(size) over the pruned weights

    Args:
        log_dir: directory for the TensorBoard logs (str or os.PathLike).
        update_freq: "epoch" (default), or an integer >= 1: write every this many optimizer steps.
    """

    subdir = "pruning"

    def __init__(self, log_dir, update_freq="epoch"):
        super().__init__(log_dir, update_freq)
        self._wrappers = []

    def on_train_begin(self, logs=None):

        self._wrappers = collect_wrappers(self.model)
        super().on_train_begin(logs)

    def scalars(self):
        """The values written: a dict tag -> float."""
        values, kept, size = {}, 0.0, 0
        for wrapper in self._wrappers:
            if not wrapper.built:
                continue
            for variable, mask, threshold in zip(wrapper.pruned_weights, wrapper.masks, wrapper.thresholds):
                mask = keras.ops.convert_to_numpy(mask)
                tag = f"{wrapper.name}/{variable.name}"
                values[f"{tag}/sparsity"] = float(1.0 - np.mean(mask))
                values[f"{tag}/threshold"] = float(keras.ops.convert_to_numpy(threshold))
                kept += float(np.sum(mask))
                size += mask.size
        if size:
            values["total/sparsity"] = 1.0 - kept / size
        return values

    def write_summaries(self, tf, step):
        for tag, value in self.scalars().items():
            tf.summary.scalar(tag, value, step=step)
