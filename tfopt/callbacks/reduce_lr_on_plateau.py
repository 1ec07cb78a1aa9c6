"""ReduceLROnPlateau: Keras's callback, extended to optimizers whose learning rate is a schedule."""

import warnings

import keras
from keras import ops

from tfopt import _checks
from tfopt.callbacks import _optimizer
from tfopt.schedules.scaled import ScaledSchedule

MODES = ("auto", "min", "max")


@keras.saving.register_keras_serializable(package="tfopt")
class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Multiplies the learning rate by `factor` when a metric stops improving, for float rates and schedules.

    A drop-in for `keras.callbacks.ReduceLROnPlateau` (same arguments, same decisions): use it when the
    optimizer's learning rate is a `LearningRateSchedule` (a warm-up, a cosine decay), where Keras's callback
    raises a `TypeError`. With a float learning rate it behaves exactly like Keras's. With a schedule `s` it
    wraps the schedule once, at the start of `fit`, in `tfopt.schedules.ScaledSchedule(s, factor=1.0)` and
    lowers that factor instead, so the schedule keeps its shape at a lower level. The wrapper stays in the
    optimizer after `fit`: the next `fit` (with this callback or not) and a model saved with
    `model.save` keep the reduced rate.

    Swapping the schedule changes what the compiled train step computes, so when it swaps one in the callback
    rebuilds the train function (`model.make_train_function(force=True)`); a train function traced by an
    earlier `fit` would otherwise still call the unscaled schedule. An optimizer that already holds a
    `ScaledSchedule` (a second `fit`, a loaded model) is used as it is. On JAX, where the compiled step
    captures the factor as a constant, the train function is also rebuilt after each reduction.

    At the end of each epoch, with `lr(t)` the effective rate at the current optimizer step `t` (the float
    rate, or `factor * s(t)`): after `patience` epochs without an improvement of more than `min_delta` in
    `monitor` (and outside the `cooldown` epochs that follow a reduction), if `lr(t) > min_lr`,

        lr_new = max(lr(t) * factor, min_lr)

    which for a schedule means `ScaledSchedule.factor <- lr_new / s(t)`. `min_lr` bounds the effective rate at
    the reduction; the schedule's own decay afterwards is not clamped. Like Keras's callback it also writes the
    current learning rate into the epoch logs as "learning_rate".

    Args:
        monitor: the logged quantity to watch. Defaults to "val_loss".
        factor: the multiplier of the learning rate, in (0, 1). Defaults to 0.1.
        patience: epochs without improvement before a reduction, an integer >= 0. Defaults to 10.
        verbose: 0 (quiet) or 1 (print a message at each reduction). Defaults to 0.
        mode: "min", "max" or "auto" (the direction from the metric's name, as in Keras). Defaults to "auto".
        min_delta: the smallest change that counts as an improvement, a number >= 0. Defaults to 1e-4.
        cooldown: epochs to wait after a reduction before counting again, an integer >= 0. Defaults to 0.
        min_lr: the lower bound of the effective learning rate, a number >= 0. Defaults to 0.0.

    Example:

    >>> import numpy as np
    >>> schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=100)
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(schedule), loss="mse")
    >>> reduce = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1e9)
    >>> _ = model.fit(np.ones((4, 2)), np.ones((4, 1)), epochs=3, verbose=0, callbacks=[reduce])
    >>> model.optimizer.get_config()["learning_rate"]["config"]["factor"]  # halved after epochs 2 and 3
    0.25

    References:
        Keras's `ReduceLROnPlateau`: https://keras.io/api/callbacks/reduce_lr_on_plateau/
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        if not isinstance(monitor, str):
            raise TypeError(f"Argument `monitor` must be a string. Received: monitor={monitor!r}")
        factor = _checks.number("factor", factor, 0, 1, low_open=True, high_open=True)
        patience = _checks.integer("patience", patience, 0)
        verbose = _checks.integer("verbose", verbose, 0)
        _checks.choice("mode", mode, MODES)
        min_delta = _checks.finite_number("min_delta", min_delta)
        cooldown = _checks.integer("cooldown", cooldown, 0)
        min_lr = _checks.finite_number("min_lr", min_lr)
        super().__init__(
            monitor=monitor,
            factor=factor,
            patience=patience,
            verbose=verbose,
            mode=mode,
            min_delta=min_delta,
            cooldown=cooldown,
            min_lr=min_lr,
        )
        self._init_config = {
            "monitor": monitor,
            "factor": factor,
            "patience": patience,
            "verbose": verbose,
            "mode": mode,
            "min_delta": min_delta,
            "cooldown": cooldown,
            "min_lr": min_lr,
        }

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        optimizers = getattr(self.model.optimizer, "optimizers", None) or [self.model.optimizer]
        swapped = [self._install_scaled_schedule(optimizer) for optimizer in optimizers]
        if any(swapped):
            self.model.make_train_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            validated = any(key.startswith("val_") for key in logs)
            if self.monitor.startswith("val_") and not validated:
                # An epoch without validation (`validation_freq`, or no validation data): Keras warns and waits.
                warnings.warn(f"ReduceLROnPlateau: `{self.monitor}` is not in this epoch's logs (no validation "
                              f"this epoch); logged: {', '.join(sorted(logs)) or 'nothing'}", stacklevel=2)
                return
            raise ValueError(
                f"Argument `monitor` must name a quantity the model logs. Received: monitor={self.monitor!r}, but "
                f"the logs hold {', '.join(repr(key) for key in sorted(logs)) or 'nothing'}"
            )
        super().on_epoch_end(epoch, logs)

    def _install_scaled_schedule(self, optimizer):
        """Wraps a schedule in ScaledSchedule; True when the optimizer's learning rate object changed."""
        optimizer = _optimizer.unwrap(optimizer)
        rate = _optimizer.learning_rate_object(optimizer)
        if _optimizer.is_settable(optimizer) or isinstance(rate, ScaledSchedule):
            return False
        if not isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            raise ValueError(
                "ReduceLROnPlateau can lower a float learning rate or a LearningRateSchedule, but this optimizer "
                f"computes its learning rate from a plain callable: {_optimizer.describe(optimizer)}. Wrap it "
                "in a keras.optimizers.schedules.LearningRateSchedule."
            )
        optimizer.learning_rate = ScaledSchedule(rate)
        return True

    def _reduce_optimizer_lr(self, optimizer, epoch, name=""):
        optimizer = _optimizer.unwrap(optimizer)
        rate = _optimizer.learning_rate_object(optimizer)
        if not isinstance(rate, ScaledSchedule):
            return super()._reduce_optimizer_lr(optimizer, epoch, name)
        base = float(ops.convert_to_numpy(rate.schedule(optimizer.iterations)))
        old_lr = float(ops.convert_to_numpy(optimizer.learning_rate))
        # The same comparison as Keras's float path, on the effective rate.
        if not old_lr > ops.convert_to_numpy(ops.cast(self.min_lr, "float32")) or base <= 0:
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        rate.factor.assign(new_lr / base)
        if keras.backend.backend() == "jax":
            self.model.make_train_function(force=True)
        if self.verbose > 0:
            name_str = f" {name}" if name else ""
            print(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing{name_str} learning rate to {new_lr} "
                f"(schedule factor {new_lr / base:.6g})."
            )
        return True

    def get_config(self):
        return dict(self._init_config)

    @classmethod
    def from_config(cls, config):
        return cls(**config)
