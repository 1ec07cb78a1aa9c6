"""WarmupStableDecay: the WSD ("trapezoidal") schedule, warm-up, a long constant phase, then a short decay."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules import _ops

DECAY_SHAPES = ("linear", "cosine", "1-sqrt")


@keras.saving.register_keras_serializable(package="tfopt")
class WarmupStableDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Warm-up, stable, decay: linear warm-up to a peak, hold it, then decay over the last steps.

    The schedule behind MiniCPM and many recent language models, and a drop-in for cosine decay: it matches
    cosine's final loss when the decay takes 10-20% of training, and since the long constant phase does not
    depend on the training length, you can branch decays off a checkpoint of the stable phase instead of
    retraining for each budget. "1-sqrt" is the decay shape Hägele et al. found best; "linear" and "cosine" are
    the usual alternatives.

    With `t` the optimizer step (0 for the first update), `lr_peak = peak_learning_rate`,
    `lr_final = final_learning_rate`, `T = total_steps`, `W = warmup_steps`, `D = decay_steps` and
    `x = (t - (T - D)) / D` the progress of the decay:

        t < W:               lr(t) = lr_peak * t / W
        W <= t < T - D:      lr(t) = lr_peak
        T - D <= t <= T:     lr(t) = lr_final + (lr_peak - lr_final) * f(x)
        t > T:               lr(t) = lr_final

        "linear":  f(x) = 1 - x
        "cosine":  f(x) = (1 + cos(pi * x)) / 2
        "1-sqrt":  f(x) = 1 - sqrt(x)

    The warm-up starts at 0 on step 0 and reaches the peak on step `W`; the decay starts at the peak on step
    `T - D` and reaches `lr_final` on step `T` (the last of `T` training steps, `T - 1`, is one step short of it,
    as with Keras's `CosineDecay`).

    Args:
        peak_learning_rate: `lr_peak`, a number > 0.
        total_steps: `T`, an integer >= 1.
        warmup_steps: `W`, an integer >= 0 (0: no warm-up); `W + D <= T`.
        decay_steps: `D`, an integer >= 1; `W + D <= T`.
        decay_shape: "linear", "cosine" or "1-sqrt". Defaults to "linear".
        final_learning_rate: `lr_final`, in [0, peak_learning_rate]. Defaults to 0.0.

    Example:

    >>> schedule = WarmupStableDecay(1.0, total_steps=100, warmup_steps=10, decay_steps=20)
    >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 80, 90, 100, 10**7)]
    [0.0, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0]

    References:
        - Hägele et al., 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations",
          https://arxiv.org/abs/2405.18392
        - Hu et al., 2024, "MiniCPM: Unveiling the Potential of Small Language Models with Scalable Training
          Strategies", https://arxiv.org/abs/2404.06395
    """

    def __init__(
        self,
        peak_learning_rate,
        total_steps,
        warmup_steps,
        decay_steps,
        decay_shape="linear",
        final_learning_rate=0.0,
    ):
        super().__init__()
        self.peak_learning_rate = _checks.finite_number("peak_learning_rate", peak_learning_rate, positive=True)
        self.total_steps = _checks.integer("total_steps", total_steps, 1)
        self.warmup_steps = _checks.integer("warmup_steps", warmup_steps, 0)
        if self.warmup_steps > self.total_steps:
            raise ValueError(
                f"Argument `warmup_steps` must be <= `total_steps` (={self.total_steps}). "
                f"Received: warmup_steps={warmup_steps!r}"
            )
        self.decay_steps = _checks.integer("decay_steps", decay_steps, 1)
        if self.warmup_steps + self.decay_steps > self.total_steps:
            raise ValueError(
                f"Arguments `warmup_steps` + `decay_steps` must be <= `total_steps` (={self.total_steps}). "
                f"Received: warmup_steps={warmup_steps!r}, decay_steps={decay_steps!r}"
            )
        self.decay_shape = _checks.choice("decay_shape", decay_shape, DECAY_SHAPES)
        self.final_learning_rate = _checks.number("final_learning_rate", final_learning_rate, 0,
                                                  self.peak_learning_rate)

    def __call__(self, step):
        t = ops.minimum(_ops.float_step(step), float(self.total_steps))
        peak, final = self.peak_learning_rate, self.final_learning_rate
        decay_start = self.total_steps - self.decay_steps
        # Progress of the decay and what is left of it, each from a difference of exact integers.
        done = ops.maximum(t - decay_start, 0.0) / self.decay_steps
        left = ops.minimum((self.total_steps - t) / self.decay_steps, 1.0)
        if self.decay_shape == "linear":
            decay = _ops.interpolate(peak, final, done, left, "linear")
        elif self.decay_shape == "cosine":
            decay = _ops.interpolate(peak, final, done, left, "cos")
        else:
            # 1 - sqrt(x) = (1 - x) / (1 + sqrt(x)): no cancellation as x -> 1.
            decay = final + (peak - final) * left / (1.0 + ops.sqrt(done))
        if self.warmup_steps == 0:
            return decay
        warm = peak * ops.minimum(t / self.warmup_steps, 1.0)
        return ops.where(t < self.warmup_steps, warm, decay)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "decay_shape": self.decay_shape,
            "final_learning_rate": self.final_learning_rate,
        }
