"""PolynomialDecay: gradual magnitude pruning, sparsity rising from an initial to a final value (Zhu & Gupta)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.layers.pruning_schedule import PruningSchedule


@keras.saving.register_keras_serializable(package="tfopt")
class PolynomialDecay(PruningSchedule):
    """Gradual magnitude pruning: sparsity rises fast at first, then levels off at `final_sparsity`.

    The default for pruning to high sparsity: the network has time to recover between pruning steps, and prunes
    most while there are many redundant weights. Between `begin_step` and `end_step` the masks are recomputed
    every `frequency` steps; the values equal tfmot's `PolynomialDecay` with the same arguments at every step `t`:

        p(t)           = clip((t - begin_step) / (end_step - begin_step), 0, 1)
        sparsity(t)    = final_sparsity + (initial_sparsity - final_sparsity) * (1 - p(t)) ** power
        should_prune(t) = begin_step <= t <= end_step  and  (t - begin_step) mod frequency == 0

    Recipe (tfopt's, measured in benchmarks/pruning.py): fine-tune a trained model with its usual optimizer and
    learning rate, end the pruning at about 60% of the fine-tuning steps, and for 90% sparsity or more on a small
    model use a small `frequency` (1 to 10 steps). With few, coarse pruning steps each one removes a large share of
    the weights still left (85% -> 88% sparsity removes a fifth of them), which can cut the network more than the
    remaining steps repair: with 20 pruning steps one seed of the digits CNN lost 9 points at 90% sparsity, with a
    mask update at every step it lost 2.

    Args:
        initial_sparsity: sparsity at `begin_step`, in [0, 1).
        final_sparsity: sparsity from `end_step` on, in [0, 1).
        begin_step: first pruning step (1 = the first training batch), an integer >= 0.
        end_step: last pruning step, an integer > begin_step.
        power: exponent of the decay, a number > 0. Default 3 (the paper's).
        frequency: recompute the masks every this many steps, an integer >= 1. Default 100.

    References:
        Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model compression", 2017,
        https://arxiv.org/abs/1710.01878
    """

    def __init__(self, initial_sparsity, final_sparsity, begin_step, end_step, power=3, frequency=100):
        self.initial_sparsity = self._check_sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = self._check_sparsity("final_sparsity", final_sparsity)
        self.begin_step, self.end_step, self.frequency = self._check_steps(begin_step, end_step, frequency, False)
        self.power = _checks.finite_number("power", power, positive=True)

    @classmethod
    def over_steps(cls, final_sparsity, total_steps, *, end_fraction=0.7, frequency=None, power=3):
        """tfopt's gradual pruning recipe for a fine-tune of `total_steps` steps: sparsity rises from 0 to
        `final_sparsity` over the first `end_fraction` of them, so the rest fine-tunes at the final masks.

        The masks are recomputed every `frequency` steps (default `total_steps // 20`, at least 1), and the pruning
        ends on the last mask update at or before `end_fraction * total_steps`, so that update reaches
        `final_sparsity` exactly. Used by `tfopt compress`, the demo and `StructuredPruning`'s default.
        """
        total_steps = _checks.integer("total_steps", total_steps, 1)
        end_fraction = _checks.number("end_fraction", end_fraction, 0.0, 1.0, low_open=True)
        frequency = max(1, total_steps // 20) if frequency is None else _checks.integer("frequency", frequency, 1)
        end_step = max(frequency, frequency * (int(end_fraction * total_steps) // frequency))
        return cls(0.0, final_sparsity, begin_step=0, end_step=end_step, power=power, frequency=frequency)

    def __call__(self, step):
        step = ops.convert_to_tensor(step, dtype="int32")
        progress = ops.cast(step - self.begin_step, "float32") / float(self.end_step - self.begin_step)
        progress = ops.minimum(1.0, ops.maximum(0.0, progress))
        sparsity = (self.initial_sparsity - self.final_sparsity) * ops.power(1.0 - progress, self.power)
        sparsity = ops.cast(sparsity + self.final_sparsity, "float32")
        return self._should_prune_in_step(step, self.begin_step, self.end_step, self.frequency), sparsity

    def get_config(self):
        return {
            "initial_sparsity": self.initial_sparsity,
            "final_sparsity": self.final_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "power": self.power,
            "frequency": self.frequency,
        }
