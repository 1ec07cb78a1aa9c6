"""NonFiniteGuard: stop or skip the training steps whose gradients or weights are not finite."""

import math
import weakref

import keras

from tfopt import _checks
from tfopt.callbacks._summary_writer import SummaryWriterCallback
from tfopt.optimizers import _nonfinite

# Per model, the train functions traced with a guard: {(mode, id(optimizer)): (the plain function, the guarded
# one)}. A later `fit` with the same guard reuses the guarded function instead of tracing a new one.
_TRAIN_FUNCTIONS = weakref.WeakKeyDictionary()


def _guarded_optimizer(optimizer):
    """The optimizer the guard goes on: a `LossScaleOptimizer`'s inner one (the scaler must still see its
    overflowing steps to lower the scale), else the model's optimizer itself."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.inner_optimizer
    return optimizer


def _finite_logs(logs):
    """Whether every number in the (already read) batch logs is finite."""
    return all(math.isfinite(v) for v in (logs or {}).values() if isinstance(v, (int, float)))


def _first_nonfinite_weight(model):
    """The path of the first trainable weight with a NaN or inf, else None (one reduction on the device, one
    scalar read, unless one is found)."""
    variables = model.trainable_variables
    if not variables or bool(keras.ops.convert_to_numpy(keras.ops.isfinite(_nonfinite.probe(variables)))):
        return None
    flags = keras.ops.convert_to_numpy(_nonfinite.all_finite(variables))
    bad = [v.path for v, ok in zip(variables, flags) if not ok]
    return bad[0] if bad else None


@keras.saving.register_keras_serializable(package="tfopt")
class NonFiniteGuard(SummaryWriterCallback):
    """Catches dead training: per step, inside the compiled train function, checks that every gradient and, after
    the update, every weight is finite.

    Keras's `TerminateOnNaN` watches the loss only, and a loss can stay finite while a weight is NaN (one NaN input
    through a ReLU network leaves the first kernel NaN and every prediction flat, at a loss of ln(classes)). This
    callback puts a check on the model's optimizer (any Keras or tfopt optimizer or wrapper; under mixed precision
    the one inside the `LossScaleOptimizer`) for the length of `fit`:

        finite = all(isfinite(g)) for every gradient g        (before the update)
        mode="skip":  a non-finite step is left out: no weight, slot or step counter changes
        mode="raise": the first non-finite step freezes the updates, and `fit` stops with a `FloatingPointError`
                      naming the variable and the step; the weights are those of the last finite step
        a weight that is not finite after an update stops `fit` in both modes (it cannot be skipped)

    The check is keras.ops (TensorFlow and JAX) and adds no device-to-host copy to the step: its state is one
    optimizer variable, read every `check_every` batches (or at once after a non-finite logged loss) where Keras
    reads the step's logs (in Keras's batch-end
    worker thread when no other callback needs the batch end synchronously). The count of
    skipped steps of the `fit` is `skipped_steps` in the batch and epoch logs (so in `History`) and, with `log_dir`, a
    TensorBoard scalar. tfopt's optimizers and wrappers also take `skip_nonfinite=True`, the same skip without the
    callback.

    Args:
        mode: "raise" (default) or "skip".
        check_every: read the state every this many batches (and after any batch whose logged loss is not finite,
            and at every epoch end), an integer >= 1. Default 10: each read is a device-to-host copy, and in
            "raise" mode the updates freeze at the first bad step, so a later read loses nothing but the steps
            in between.
        log_dir: None (default) or the TensorBoard folder; the scalar goes to `log_dir/nonfinite`.
        update_freq: "epoch" (default) or every how many batches to write the scalar (its step: the optimizer's
            step when `fit` began plus the batches trained).

    Example:

    >>> import numpy as np
    >>> x = np.ones((8, 2), "float32"); x[0, 0] = np.nan
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> history = model.fit(x, np.ones((8, 1)), batch_size=4, verbose=0, callbacks=[NonFiniteGuard("skip")])
    >>> history.history["skipped_steps"]
    [1]
    """

    subdir = "nonfinite"
    async_safe = True  # its batch-end read runs beside the next step, as Keras's logs do without it

    def __init__(self, mode="raise", check_every=10, log_dir=None, update_freq="epoch"):
        super().__init__(log_dir, update_freq, optional_log_dir=True)
        self.mode = _checks.choice("mode", mode, _nonfinite.MODES)
        self.check_every = _checks.integer("check_every", check_every, 1)
        self._optimizer = None
        self._batches = 0
        self._skipped = 0
        self._plain_function = None
        self._skipped_before = 0
        self._error = None
        self._pending = None
        self._first_step = 0

    def on_train_begin(self, logs=None):
        optimizer = getattr(self._model, "optimizer", None)
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError("NonFiniteGuard needs a model compiled with a keras.optimizers.Optimizer. Received: "
                            f"model.optimizer={optimizer!r} of type {type(optimizer).__name__}")
        self._optimizer = _guarded_optimizer(optimizer)
        _nonfinite.install(self._optimizer, self.mode)
        if self.mode == "raise":
            _nonfinite.reset_record(self._optimizer)
        # `fit` made (or kept) its train function before this call and looks it up at every step: put a function
        # that traces the guarded `apply` in its place for this `fit`, and the plain one back at the end.
        self._plain_function = self._model.train_function
        functions = _TRAIN_FUNCTIONS.setdefault(self._model, {})
        key = (self.mode, id(self._optimizer))
        plain, guarded = functions.get(key, (None, None))
        if guarded is not None and plain is self._plain_function:
            self._model.train_function = guarded
        else:
            self._model.make_train_function(force=True)
            functions[key] = (self._plain_function, self._model.train_function)
        self._batches = 0
        self._skipped = 0
        self._error = None
        self._skipped_before = _nonfinite.status(self._optimizer)[0] if self._optimizer.built else 0
        # The TensorBoard step: the optimizer step at the start plus the batches seen (read here, in the main
        # thread; the batch-end hook must not read the optimizer's variables).
        self._first_step = int(keras.ops.convert_to_numpy(self._optimizer.iterations))
        super().on_train_begin(logs)

    # `self._model`, not `self.model`: on JAX, Keras's `Callback.model` syncs the whole train state into the
    # variables at each access, which costs a pass per step and, from Keras's batch-end worker thread, races the
    # training loop.

    def _current_state(self):
        """The guard's state now, as a tensor: on JAX from the train state `fit` holds between steps (until it
        syncs it into the variables)."""
        state = getattr(self._model, "_jax_state", None)
        if state and not getattr(self._model, "_jax_state_synced", True):
            for variable, current in zip(self._model.optimizer.variables, state["optimizer_variables"]):
                if variable is self._optimizer._nonfinite_state:
                    return current
        return self._optimizer._nonfinite_state.value

    def on_train_batch_begin(self, batch, logs=None):
        if keras.backend.backend() == "jax":
            # JAX donates the train state to the next step: the batch-end read (maybe in another thread) takes a
            # copy made here, in the main thread, before the step runs (an asynchronous device copy, no wait).
            self._pending = keras.ops.copy(self._current_state())
        super().on_train_batch_begin(batch, logs)

    def _read(self, final=False):
        value = self._pending if (keras.backend.backend() == "jax" and not final) else None
        return _nonfinite.status(self._optimizer, value)

    def _check(self, logs, final=False):
        skipped, kind, name, step = self._read(final)
        skipped -= self._skipped_before
        self._skipped = skipped
        if logs is not None:
            logs["skipped_steps"] = skipped
        if kind is None and final:
            # A weight the last update of the epoch made non-finite meets no later step's check: look now.
            name = _first_nonfinite_weight(self._model)
            kind, step = ("weight", int(keras.ops.convert_to_numpy(self._optimizer.iterations)) - 1) if name else (
                None, None)
        if kind is None or (self.mode == "skip" and kind in ("gradient", "overflow")):
            return None
        if kind == "gradient":
            what = f"the gradient of `{name}` is not finite (NaN or inf) at training step {step}"
            advice = ("Check the inputs and labels for NaN/inf, lower the learning rate, or use "
                      "NonFiniteGuard(mode='skip') to leave such steps out.")
        elif kind == "overflow":
            what = (f"the gradients are too large to sum in float32 (the largest: `{name}`) at training step "
                    f"{step}")
            advice = "Lower the learning rate, clip the gradients or scale the loss down."
        else:
            what = f"the value after the update of `{name}` is not finite (NaN or inf) at training step {step}"
            advice = "A weight that turned non-finite cannot be skipped: lower the learning rate or clip the gradients."
        return (f"NonFiniteGuard: {what} (optimizer iterations={step}); fit stopped with the weights of the last "
                f"finite step. {advice}")

    def _stop(self, message):
        """Ends `fit` with the error, in the main thread: the weights of the last finite step into the model (on
        JAX from the train state), the guard taken off, then the exception."""
        if hasattr(self._model, "jax_state_sync"):
            self._model.jax_state_sync()
        self._remove()
        raise FloatingPointError(message)

    def on_train_batch_end(self, batch, logs=None):
        # Keras may call this in a worker thread (`async_safe`), so that the step's logs and this read do not make
        # the next step wait: a bad step stops the loop here, and the error is raised in the main thread, at the
        # epoch's or the training's end (the updates are frozen meanwhile).
        self._batches += 1
        due = self._batches % self.check_every == 0 or not _finite_logs(logs)
        if due and self._error is None:
            self._error = self._check(logs)
            if self._error is not None:
                self._model.stop_training = True
        if self.update_freq != "epoch" and self._batches % self.update_freq == 0:
            self.summarize(self.write_summaries, step=self._first_step + self._batches)

    def on_epoch_end(self, epoch, logs=None):
        message = self._error or self._check(logs, final=True)
        if message is not None:
            self._stop(message)
        if self.update_freq == "epoch":
            self.summarize(self.write_summaries, step=self._first_step + self._batches)

    def write_summaries(self, tf, step):
        tf.summary.scalar("skipped_steps", self._skipped, step=step)

    def _remove(self):
        if self._optimizer is None:
            return
        keep = getattr(self._optimizer, "skip_nonfinite", False) is True
        if keep:
            _nonfinite.install(self._optimizer, "skip")
        else:
            _nonfinite.uninstall(self._optimizer)
        self._optimizer = None
        self._model.train_function = self._plain_function

    def on_train_end(self, logs=None):
        if self._error is not None:
            self._stop(self._error)
        self._remove()
        super().on_train_end(logs)

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "check_every": self.check_every})
        return config
