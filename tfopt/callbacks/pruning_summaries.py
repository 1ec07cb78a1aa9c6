"""PruningSummaries: per-layer sparsity and threshold of a pruned model as TensorBoard scalars.

It writes with `tf.summary`, so it needs TensorFlow installed (a tfopt dependency); it works under any Keras
backend.
"""

import os

import keras
import numpy as np

from tfopt import _checks
from tfopt.callbacks import _optimizer


@keras.saving.register_keras_serializable(package="tfopt")
class PruningSummaries(keras.callbacks.Callback):
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

    def __init__(self, log_dir, update_freq="epoch"):
        super().__init__()
        if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
            raise TypeError(f"Argument `log_dir` must be a non-empty path (str or os.PathLike). Received: "
                            f"log_dir={log_dir!r} of type {type(log_dir).__name__}")
        self.log_dir = os.fspath(log_dir)
        if update_freq != "epoch":
            update_freq = _checks.integer("update_freq", update_freq, 1)
        self.update_freq = update_freq
        self._writer = None
        self._wrappers = []

    def on_train_begin(self, logs=None):
        import tensorflow as tf

        from tfopt.compression.prune import collect_wrappers

        self._wrappers = collect_wrappers(self.model)
        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "pruning"))

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

    def _write(self):
        import tensorflow as tf

        step = _optimizer.iterations(self.model.optimizer)
        with self._writer.as_default():
            for tag, value in self.scalars().items():
                tf.summary.scalar(tag, value, step=step)
        self._writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._writer is None:
            return
        if _optimizer.iterations(self.model.optimizer) % self.update_freq == 0:
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        if self.update_freq == "epoch" and self._writer is not None:
            self._write()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self):
        return {"log_dir": self.log_dir, "update_freq": self.update_freq}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
