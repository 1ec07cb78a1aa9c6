"""ConstantSparsity: prune to one sparsity, every `frequency` steps between `begin_step` and `end_step`."""

import keras
from keras import ops

from tfopt.layers.pruning_schedule import PruningSchedule


@keras.saving.register_keras_serializable(package="tfopt")
class ConstantSparsity(PruningSchedule):
    """The same target sparsity at every pruning step (one-shot pruning, then re-pruning as weights move).

    Use it to prune a trained model in one go and fine-tune, or for N:M sparsity (where the pattern fixes the
    sparsity and the schedule only says when the pattern is recomputed). For gradual pruning from dense, which
    usually loses less accuracy at high sparsity, use `PolynomialDecay`. The values equal tfmot's
    `ConstantSparsity` with the same arguments at every step `t`:

        should_prune(t) = begin_step <= t  and  (t <= end_step or end_step == -1)
                          and  (t - begin_step) mod frequency == 0
        sparsity(t)     = target_sparsity

    Args:
        target_sparsity: fraction of weights set to zero, in [0, 1).
        begin_step: first training step (1 = the first batch) at which masks are computed, an integer >= 0.
        end_step: last step at which masks are recomputed, an integer >= begin_step, or -1 (default) for no end.
        frequency: recompute the masks every this many steps, an integer >= 1. Default 100.

    References:
        Zhu & Gupta, "To prune, or not to prune: exploring the efficacy of pruning for model compression", 2017,
        https://arxiv.org/abs/1710.01878
    """

    def __init__(self, target_sparsity, begin_step, end_step=-1, frequency=100):
        self.target_sparsity = self._check_sparsity("target_sparsity", target_sparsity)
        self.begin_step, self.end_step, self.frequency = self._check_steps(begin_step, end_step, frequency, True)

    def __call__(self, step):
        should_prune = self._should_prune_in_step(step, self.begin_step, self.end_step, self.frequency)
        return should_prune, ops.convert_to_tensor(self.target_sparsity, dtype="float32")

    def get_config(self):
        return {
            "target_sparsity": self.target_sparsity,
            "begin_step": self.begin_step,
            "end_step": self.end_step,
            "frequency": self.frequency,
        }
