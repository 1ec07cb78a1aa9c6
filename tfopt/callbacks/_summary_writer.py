"""The TensorBoard plumbing shared by every tfopt callback that writes summaries: the `log_dir` and `update_freq`
arguments, one event file writer per `fit` (opened at the start of training, closed at its end), and when to
write (every epoch, or every `update_freq` optimizer steps).

It writes with `tf.summary`, so it needs TensorFlow installed (a tfopt dependency); it works under any Keras
backend.
"""

import os

import keras

from tfopt import _checks
from tfopt.callbacks import _optimizer


class SummaryWriterCallback(keras.callbacks.Callback):
    """Base class of tfopt's summary callbacks.

    Subclasses set `subdir` (the event file folder under `log_dir`) and either implement
    `write_summaries(tf, step)` (called inside the writer's context at each epoch end, or every `update_freq`
    optimizer steps) or override `record()` and call `summarize(write)` themselves. With `optional_log_dir`,
    `log_dir=None` is allowed and nothing is written.
    """

    subdir = ""

    def __init__(self, log_dir, update_freq="epoch", *, optional_log_dir=False):
        super().__init__()
        self.log_dir = _checks.log_dir(log_dir, optional=optional_log_dir)
        if update_freq != "epoch":
            update_freq = _checks.integer("update_freq", update_freq, 1)
        self.update_freq = update_freq
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.log_dir is not None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, self.subdir))

    def summarize(self, write, step=None, flush=True):
        """Calls `write(tf, step)` inside the event file writer's context, `step` defaulting to the optimizer's
        `iterations`; does nothing when no writer is open (no `log_dir`, or outside `fit`)."""
        if self._writer is None:
            return
        import tensorflow as tf

        if step is None:
            step = _optimizer.iterations(self.model.optimizer)
        with self._writer.as_default():
            write(tf, step)
        if flush:
            self._writer.flush()

    def record(self):
        """One logged point: by default the subclass's `write_summaries(tf, step)` into the event file."""
        self.summarize(self.write_summaries)

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or (self._writer is None and self.log_dir is not None):
            return
        if _optimizer.iterations(self.model.optimizer) % self.update_freq == 0:
            self.record()

    def on_epoch_end(self, epoch, logs=None):
        if self.update_freq == "epoch":
            self.record()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def get_config(self):
        return {"log_dir": self.log_dir, "update_freq": self.update_freq}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
