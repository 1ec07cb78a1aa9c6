"""UpdatePruningStep: tfmot's callback name, for pruned models; writes the masks into the stored weights."""

import warnings

import keras
import numpy as np

from tfopt.compression.prune import collect_wrappers


@keras.saving.register_keras_serializable(package="tfopt")
class UpdatePruningStep(keras.callbacks.Callback):
    """Keeps the stored weights of a pruned model exactly sparse at every epoch end and at the end of training.

    tfopt's `PruneLowMagnitude` needs no callback to follow the training step: each wrapper counts its training
    batches in its own `pruning_step` and updates its masks inside the training step, so forgetting this callback
    cannot make pruning silently stop (as it could with tfmot, which therefore raises without it). What the
    wrappers cannot do inside a compiled JAX step is overwrite a trainable weight; they compute with `weight * mask`
    instead, so the pruned weights are zero in every forward pass, while the stored variables may keep the value
    a weight had when it was pruned (or what momentum, weight decay or an EMA overwrite made of it). This callback
    writes `weight * mask` into the stored weights after every epoch and after training (after Keras's EMA
    overwrite with `use_ema=True`), so `model.get_weights()`, checkpoints (`ModelCheckpoint`, `BackupAndRestore`)
    and the saved model hold the zeros. `tfopt.compression.strip_pruning` does the same for the final model.

    At the start of training it also checks that the model has pruning wrappers, raising a ValueError otherwise
    (the callback was given to the wrong model), and warns once when a wrapper's schedule would not prune in this
    `fit`: no step `t` of the run (`step + 1` to `step + epochs * steps_per_epoch`, from the wrapper's own step)
    has `should_prune(t)` with a sparsity above 0. tfmot and tfopt then both fine-tune at 0% sparsity without a
    word; the usual cause is `end_step` below `frequency` (the first pruning step is `begin_step + frequency`
    unless `begin_step >= 1`) or a `begin_step` after the last step.

    Example:

    >>> import numpy as np
    >>> from tfopt.compression import ConstantSparsity, prune_low_magnitude
    >>> model = prune_low_magnitude(keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)]),
    ...                             ConstantSparsity(0.5, begin_step=1, frequency=1))
    >>> model.compile(keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    >>> _ = model.fit(np.ones((8, 4)), np.ones((8, 4)), epochs=2, verbose=0, callbacks=[UpdatePruningStep()])
    >>> int(np.count_nonzero(model.layers[0].layer.kernel.numpy()))
    8
    """

    def __init__(self):
        super().__init__()
        self._wrappers = []

    def on_train_begin(self, logs=None):

        self._wrappers = collect_wrappers(self.model)
        if not self._wrappers:
            raise ValueError(
                f"UpdatePruningStep was given to model {self.model.name!r}, which has no pruning wrappers: prune it "
                "first with tfopt.compression.prune_low_magnitude."
            )
        self._warn_if_never_pruning()

    def _warn_if_never_pruning(self):
        steps, epochs = (self.params or {}).get("steps"), (self.params or {}).get("epochs")
        horizon = steps * epochs if steps and epochs else None
        idle = {}
        for wrapper in self._wrappers:
            start = int(keras.ops.convert_to_numpy(wrapper.pruning_step)) if wrapper.built else 0
            reason = never_prunes(wrapper.pruning_schedule, start, horizon)
            if reason:
                idle.setdefault(reason, []).append(repr(wrapper.name))
        if idle:
            lines = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in idle.items())
            warnings.warn(
                f"UpdatePruningStep: the pruning schedule never prunes in this fit, so these layers train at 0% "
                f"sparsity: {lines}. Lower `frequency` or `begin_step`, or raise `end_step`.",
                stacklevel=2,
            )

    def _apply_masks(self):
        for wrapper in self._wrappers:
            if wrapper.built:
                wrapper.apply_masks()

    def on_epoch_end(self, epoch=None, logs=None, batch=None):  # tfmot's guides call on_epoch_end(batch=...)
        self._apply_masks()

    def on_train_end(self, logs=None):
        self._apply_masks()

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _pruning_steps(schedule, first, last):
    """The steps in [first, last] (last None: no end) at which a schedule with begin/end/frequency prunes: the first
    and last such steps, or []."""
    begin, end, frequency = schedule.begin_step, schedule.end_step, schedule.frequency
    low = max(first, begin)
    t0 = begin + -(-(low - begin) // frequency) * frequency
    high = end if end >= 0 else None
    if last is not None:
        high = last if high is None else min(high, last)
    if high is not None and t0 > high:
        return []
    if high is None:
        return [t0]
    return [t0, t0 + (high - t0) // frequency * frequency]


def never_prunes(schedule, step, horizon):
    """Why `schedule` prunes to no sparsity above 0 in the steps `step + 1 .. step + horizon` (`horizon` None: no
    end), or "" when it does (or when it is a custom schedule without `begin_step`/`end_step`/`frequency`)."""
    if not all(hasattr(schedule, a) for a in ("begin_step", "end_step", "frequency")):
        return ""
    last = None if horizon is None else step + horizon
    steps = _pruning_steps(schedule, step + 1, last)
    window = f"steps {step + 1} to {last}" if last is not None else f"steps from {step + 1}"
    arguments = (f"begin_step={schedule.begin_step}, end_step={schedule.end_step}, "
                 f"frequency={schedule.frequency}")
    if not steps:
        return f"no pruning step in {window} ({arguments})"
    sparsity = [float(np.asarray(keras.ops.convert_to_numpy(schedule(t)[1]))) for t in steps]
    if max(sparsity) <= 0.0:
        return f"sparsity 0 at every pruning step in {window} ({arguments})"
    return ""
