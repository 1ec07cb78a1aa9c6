"""InverseSqrt: linear warm-up, then decay with the inverse square root of the step (the Transformer schedule)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules import _ops


@keras.saving.register_keras_serializable(package="tfopt")
class InverseSqrt(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak_learning_rate`, then `peak * sqrt(warmup_steps / t)`.

    The schedule of the original Transformer ("Noam") and of fairseq's `inverse_sqrt`, for training of unknown
    length: it never reaches zero, so you can stop or continue at any step; the decay is slow (the rate halves
    when the step quadruples). Vaswani et al. write it as `d_model ** -0.5 * min(t ** -0.5, t * W ** -1.5)`, whose
    peak depends on the model width; here the peak is an argument.

    With `t` the optimizer step (0 for the first update), `lr_peak = peak_learning_rate` and
    `W = warmup_steps`:

        t <  W:   lr(t) = lr_peak * t / W
        t >= W:   lr(t) = lr_peak * sqrt(W / t)

    Step 0 gives 0 (the warm-up starts from zero, as fairseq's `inverse_sqrt` with `warmup_init_lr=0`), the peak
    is reached on step `W`, and the square root is only taken for `t >= W >= 1`, so no step divides by zero. This
    equals `min(t / W, sqrt(W / t)) * lr_peak` of the paper's shape for every `t >= 1`.

    Args:
        peak_learning_rate: `lr_peak`, the rate at step `W`, a number > 0.
        warmup_steps: `W`, an integer >= 1.

    Example:

    >>> schedule = InverseSqrt(1.0, warmup_steps=4)
    >>> [round(float(schedule(t)), 6) for t in (0, 2, 4, 16, 64)]
    [0.0, 0.5, 1.0, 0.5, 0.25]

    References:
        - Vaswani et al., 2017, "Attention Is All You Need", section 5.3, https://arxiv.org/abs/1706.03762
    """

    def __init__(self, peak_learning_rate, warmup_steps):
        super().__init__()
        self.peak_learning_rate = _checks.finite_number("peak_learning_rate", peak_learning_rate, positive=True)
        self.warmup_steps = _checks.integer("warmup_steps", warmup_steps, 1)

    def __call__(self, step):
        t = _ops.float_step(step)
        warm = self.peak_learning_rate * t / self.warmup_steps
        decay = self.peak_learning_rate * ops.sqrt(self.warmup_steps / ops.maximum(t, float(self.warmup_steps)))
        return ops.where(t < self.warmup_steps, warm, decay)

    def get_config(self):
        return {"peak_learning_rate": self.peak_learning_rate, "warmup_steps": self.warmup_steps}
