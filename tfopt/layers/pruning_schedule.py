"""PruningSchedule: the base of the pruning schedules (what sparsity when), a pure function of the training step."""

import abc

import keras
from keras import ops

from tfopt import _checks


@keras.saving.register_keras_serializable(package="tfopt")
class PruningSchedule(abc.ABC):
    """When to update the pruning masks, and to what sparsity: `should_prune, sparsity = schedule(step)`.

    A schedule is a pure function of the training step (the count of training batches, 1 at the first one, as in
    tfmot), so a resumed run gives the same values as an unbroken one. `PruneLowMagnitude` calls it every training
    step and recomputes its masks when `should_prune` is true. Subclass it for a custom schedule: implement
    `__call__(step)` with `keras.ops` (it runs inside the compiled training step on every backend) and
    `get_config()`, and register the subclass with `keras.saving.register_keras_serializable`.

    `should_prune` is the tfmot rule, for `begin_step`, `end_step` (-1: no end) and `frequency`:

        should_prune(t) = begin_step <= t  and  (t <= end_step or end_step == -1)
                          and  (t - begin_step) mod frequency == 0
    """

    @abc.abstractmethod
    def __call__(self, step):
        """Returns `(should_prune, sparsity)`: a boolean scalar tensor and a float32 scalar tensor in [0, 1)."""

    @abc.abstractmethod
    def get_config(self):
        """The constructor arguments, as a dict."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @staticmethod
    def _should_prune_in_step(step, begin_step, end_step, frequency):
        step = ops.convert_to_tensor(step, dtype="int32")
        in_range = ops.logical_and(
            ops.greater_equal(step, begin_step),
            ops.logical_or(ops.less_equal(step, end_step), end_step < 0),
        )
        on_turn = ops.equal(ops.mod(step - begin_step, frequency), 0)
        return ops.logical_and(in_range, on_turn)

    @staticmethod
    def _check_steps(begin_step, end_step, frequency, allow_no_end):
        """Validates the steps; returns them as ints."""
        begin_step = _checks.integer("begin_step", begin_step, 0)
        if allow_no_end and end_step == -1 and not isinstance(end_step, bool):
            end_step = -1
        else:
            low = begin_step if allow_no_end else begin_step + 1
            allowed = f"an integer >= begin_step ({begin_step}), or -1" if allow_no_end else (
                f"an integer > begin_step ({begin_step})")
            if not _checks._is_integer(end_step):
                raise TypeError(f"Argument `end_step` must be {allowed}. Received: end_step={end_step!r} of type "
                                f"{type(end_step).__name__}")
            if end_step < low:
                raise ValueError(f"Argument `end_step` must be {allowed}. Received: end_step={end_step!r}")
            end_step = int(end_step)
        frequency = _checks.integer("frequency", frequency, 1)
        return begin_step, end_step, frequency

    @staticmethod
    def _check_sparsity(name, value):
        return _checks.number(name, value, 0.0, 1.0, high_open=True)
