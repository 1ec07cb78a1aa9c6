"""ScaledSchedule: any learning-rate schedule times a factor that can change during training."""


import keras
from keras import ops

from tfopt import _checks


@keras.saving.register_keras_serializable(package="tfopt")
class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A learning-rate schedule multiplied by a factor held in a variable, so the factor can change mid-run.

    Use it to lower (or raise) a whole schedule at once while keeping its shape: `tfopt.callbacks.
    ReduceLROnPlateau` wraps an optimizer's schedule in it and multiplies `factor` down when the monitored metric
    stops improving. The factor is a non-trainable `keras.Variable`: on the TensorFlow backend the compiled train
    step reads it at every step, so `schedule.factor.assign(0.1)` takes effect at the next step without
    retracing. On JAX the compiled step receives only the model's and the optimizer's tracked variables as
    inputs and captures this one as a constant, so after assigning it during `fit` rebuild the train function
    with `model.make_train_function(force=True)` (the callback does this for you). `get_config` stores the
    factor's current value, so a model saved after a reduction loads with the reduced rate.

    With `f` the factor and `s(t)` the wrapped schedule at optimizer step `t`:

        lr(t) = f * s(t)

    Args:
        schedule: the `keras.optimizers.schedules.LearningRateSchedule` to scale.
        factor: the initial factor `f`, a finite number > 0. Defaults to 1.0.

    Example:

    >>> base = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    >>> scaled = ScaledSchedule(base, factor=0.5)
    >>> round(float(scaled(10)), 6)
    0.025
    >>> _ = scaled.factor.assign(0.1)
    >>> round(float(scaled(10)), 6)
    0.005

    References:
        Keras's `ReduceLROnPlateau`, which this makes work for schedules:
        https://keras.io/api/callbacks/reduce_lr_on_plateau/
    """

    def __init__(self, schedule, factor=1.0):
        if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            raise TypeError(
                "Argument `schedule` must be a keras.optimizers.schedules.LearningRateSchedule. "
                f"Received: schedule={schedule!r} of type {type(schedule).__name__}"
            )
        factor = _checks.finite_number("factor", factor, positive=True)
        self.schedule = schedule
        self.factor = keras.Variable(float(factor), dtype="float32", trainable=False, name="schedule_factor")

    def __call__(self, step):
        value = ops.convert_to_tensor(self.schedule(step))
        return ops.multiply(value, ops.cast(self.factor, value.dtype))

    def get_config(self):
        return {
            "schedule": keras.optimizers.schedules.serialize(self.schedule),
            "factor": float(ops.convert_to_numpy(self.factor)),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.optimizers.schedules.deserialize(config["schedule"])
        return cls(**config)
