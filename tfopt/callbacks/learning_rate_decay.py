"""LearningRateDecay: set the optimizer's learning rate from a schedule at every batch (or every epoch)."""

import math

import keras
from keras import ops

from tfopt import _checks
from tfopt.callbacks import _optimizer

GRANULARITIES = ("batch", "epoch")


@keras.saving.register_keras_serializable(package="tfopt")
class LearningRateDecay(keras.callbacks.Callback):
    """Drives an optimizer's float learning rate from a schedule, per batch or per epoch.

    Keras's `LearningRateScheduler` changes the rate once per epoch only. Use this callback when the optimizer
    was compiled with a float learning rate and you want a per-step schedule without recompiling (for example
    to try schedules on a model whose optimizer you do not build yourself), or a per-epoch schedule written as a
    plain Python function. When you build the optimizer yourself, passing the schedule as its `learning_rate`
    is simpler and keeps the schedule in the saved model; this callback is for the float case, and raises a
    `ValueError` at the start of `fit` when the optimizer already holds a schedule.

    Before each training batch it sets

        granularity="batch":  lr = schedule(t),  t = the optimizer's `iterations` (its global step, which
                              continues across `fit` calls and resumes with a loaded model)
        granularity="epoch":  lr = schedule(e),  e = the epoch index `fit` reports (0-based, counting
                              `initial_epoch`)

    The rate is written into the optimizer's learning-rate variable, which the compiled train step reads, so
    the update of step `t` uses `schedule(t)`. With `steps_per_execution > 1` Keras calls the callback once
    per execution, so the rate changes every `steps_per_execution` steps. On JAX each change forces Keras to
    copy the training state back into the variables (the callback's `model` property does that), which costs
    a little time per batch.

    Args:
        schedule: a `keras.optimizers.schedules.LearningRateSchedule`, or a Python function of the step (or
            epoch) index returning the learning rate as a number >= 0.
        granularity: "batch" (default) to step the schedule with the optimizer's global step, "epoch" to step
            it with the epoch index.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.1), loss="mse")
    >>> decay = LearningRateDecay(lambda step: 0.1 / (1 + step))
    >>> _ = model.fit(np.ones((8, 2)), np.ones((8, 1)), batch_size=2, verbose=0, callbacks=[decay])
    >>> round(float(model.optimizer.learning_rate), 6)  # set before the 4th (last) step: 0.1 / 4
    0.025

    References:
        Keras's `LearningRateScheduler` (the per-epoch original): https://keras.io/api/callbacks/learning_rate_scheduler/
    """

    def __init__(self, schedule, granularity="batch"):
        super().__init__()
        if not (isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule) or callable(schedule)):
            raise TypeError(
                "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule or a callable "
                f"taking the step index. Received: schedule={schedule!r} of type {type(schedule).__name__}"
            )
        self.schedule = schedule
        self.granularity = _checks.choice("granularity", granularity, GRANULARITIES)

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        if not _optimizer.is_settable(optimizer):
            raise ValueError(
                "LearningRateDecay sets the optimizer's learning rate, so the optimizer must be created with a "
                "float `learning_rate`. This one computes it from a schedule or callable: "
                f"{_optimizer.describe(optimizer)}. Compile with a float learning rate, or pass the schedule "
                "to the optimizer directly instead of using this callback."
            )

    def on_epoch_begin(self, epoch, logs=None):
        if self.granularity == "epoch":
            self._set(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.granularity == "batch":
            # `self.model` syncs the JAX training state into the variables before we read and write them.
            self._set(_optimizer.iterations(self.model.optimizer))

    def _set(self, step):
        value = self.schedule(step)
        rate = float(ops.convert_to_numpy(value)) if not isinstance(value, (int, float)) else float(value)
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(
                f"The schedule must return a finite learning rate >= 0. Received: schedule({step})={rate!r}"
            )
        _optimizer.unwrap(self.model.optimizer).learning_rate = rate

    def get_config(self):
        if isinstance(self.schedule, keras.optimizers.schedules.LearningRateSchedule):
            schedule = keras.optimizers.schedules.serialize(self.schedule)
        else:
            schedule = keras.saving.serialize_keras_object(self.schedule)
        return {"schedule": schedule, "granularity": self.granularity}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)
