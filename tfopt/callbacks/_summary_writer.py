"""The TensorBoard plumbing shared by tfopt's summary callbacks: the `log_dir` and `update_freq` arguments, one
event file writer per `fit`, and when to write (every epoch, or every `update_freq` optimizer steps).

It writes with `tf.summary`, so it needs TensorFlow installed (a tfopt dependency); it works under any Keras
backend.
"""

import os

import keras

from tfopt import _checks
from tfopt.callbacks import _optimizer


class SummaryWriterCallback(keras.callbacks.Callback):
    """Base class: subclasses set `subdir` (the event file folder under `log_dir`) and implement
    `write_summaries(tf, step)`, called inside the writer's default context. A subclass whose summaries are
    optional sets `log_dir_optional = True`: with `log_dir=None` it writes nothing."""

    subdir = ""
    log_dir_optional = False

    def __init__(self, log_dir, update_freq="epoch"):
        super().__init__()
        self.log_dir = _checks.log_dir(log_dir, optional=self.log_dir_optional)
        if update_freq != "epoch":
            update_freq = _checks.integer("update_freq", update_freq, 1)
        self.update_freq = update_freq
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.log_dir is None:
            return
        import tensorflow as tf

        self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, self.subdir))

    def _write(self):
        import tensorflow as tf

        step = _optimizer.iterations(self.model.optimizer)
        with self._writer.as_default():
            self.write_summaries(tf, step)
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
