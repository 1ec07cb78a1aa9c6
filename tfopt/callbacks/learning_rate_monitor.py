"""LearningRateMonitor: the learning rate in the epoch logs (so in `History`) and, per step, in TensorBoard.

The logs part uses only Keras and runs on every backend. The TensorBoard part (`log_dir`) writes with
`tf.summary`, so it needs TensorFlow installed (it is a tfopt dependency; it works under any Keras backend).
"""

import keras

from tfopt import _checks
from tfopt.callbacks import _optimizer
from tfopt.callbacks._summary_writer import SummaryWriterCallback

TAG = "learning_rate"


@keras.saving.register_keras_serializable(package="tfopt")
class LearningRateMonitor(SummaryWriterCallback):
    """Records the optimizer's learning rate, whether it is a float or a schedule.

    Use it to see what a schedule (or a callback such as `ReduceLROnPlateau` or `LearningRateDecay`) actually
    did: at the end of every epoch it puts the learning rate at the optimizer's current `iterations` into the
    epoch logs as "learning_rate", so `model.fit(...).history["learning_rate"]` holds one value per epoch, and
    `CSVLogger` or Keras's `TensorBoard` callback listed after this one record it too. With `log_dir` it also
    writes, every `every_n_steps` optimizer steps, the rate the optimizer used for that step as the scalar
    "learning_rate" to a TensorBoard event file in `log_dir/train` (next to Keras's `TensorBoard` scalars when
    both get the same `log_dir`).

    Values written:

        epoch logs:   learning_rate = lr(T),  T = optimizer.iterations after the epoch (the rate the next step
                      would use; for a float rate simply its current value)
        TensorBoard:  at step t (t = 0, n, 2n, ... with n = every_n_steps) the value lr(t) used by update t

    On JAX each TensorBoard value makes Keras copy the training state back into the variables, a small cost
    per written step; pick `every_n_steps` accordingly.

    Args:
        log_dir: directory for the TensorBoard event file, or None (default) to only add to the epoch logs.
        every_n_steps: write to TensorBoard every this many optimizer steps, an integer >= 1. Defaults to 1.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.05), loss="mse")
    >>> history = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=2, verbose=0,
    ...                     callbacks=[LearningRateMonitor()])
    >>> [round(v, 6) for v in history.history["learning_rate"]]
    [0.05, 0.05]
    """

    subdir = "train"

    def __init__(self, log_dir=None, every_n_steps=1):
        super().__init__(log_dir, optional_log_dir=True)
        self.every_n_steps = _checks.integer("every_n_steps", every_n_steps, 1)

    def on_train_batch_end(self, batch, logs=None):
        if self._writer is None:
            return
        # `self.model` syncs the JAX training state, so `iterations` counts the step that just ran.
        optimizer = self.model.optimizer
        step = _optimizer.iterations(optimizer) - 1
        if step % self.every_n_steps == 0:
            self.summarize(lambda tf, step: tf.summary.scalar(TAG, _optimizer.learning_rate_at(optimizer, step),
                                                              step=step), step, flush=False)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs[TAG] = _optimizer.current_learning_rate(self.model.optimizer)
        if self._writer is not None:
            self._writer.flush()

    def get_config(self):
        return {"log_dir": self.log_dir, "every_n_steps": self.every_n_steps}

