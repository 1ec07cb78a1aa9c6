"""Warmup: a linear or exponential ramp in front of any schedule (or constant rate)."""

import math

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules import _ops

SHAPES = ("linear", "exponential")


@keras.saving.register_keras_serializable(package="tfopt")
class Warmup(keras.optimizers.schedules.LearningRateSchedule):
    """Ramps the learning rate up to where `schedule` starts, then runs `schedule` from its own step 0.

    Large batches, Adam-family optimizers on Transformers and freshly initialised deep networks often diverge in
    the first updates at the full rate; a short warm-up (1-5% of training, or a few hundred to a few thousand
    steps) avoids it. This wraps any `LearningRateSchedule` (Keras built-ins, tfopt's, your own) or a constant
    rate, so the decay keeps its own arguments and the warm-up is added on top.

    With `t` the optimizer step (0 for the first update), `W = warmup_steps`, `lr_init = initial_learning_rate`
    and `target = schedule(0)`:

        t <  W, "linear":       lr(t) = lr_init + (target - lr_init) * t / W
        t <  W, "exponential":  lr(t) = lr_init * (target / lr_init) ** (t / W)
        t >= W:                 lr(t) = schedule(t - W)

    so the ramp starts at `lr_init` on step 0 and reaches `target` on step `W`, where `schedule` runs from its
    step 0 (it is delayed by `W` steps, not cut short). The exponential ramp rises by the same factor every step,
    which spends more of the warm-up at small rates; it needs `lr_init > 0` and `target > 0`.
    `warmup_steps=0` gives `schedule` unchanged.

    Args:
        schedule: the schedule to run after the warm-up: a `keras.optimizers.schedules.LearningRateSchedule`, or
            a number >= 0 for a constant rate.
        warmup_steps: `W`, an integer >= 0.
        initial_learning_rate: `lr_init`, the rate at step 0, a number >= 0 (> 0 for "exponential").
            Defaults to 0.0.
        shape: "linear" or "exponential". Defaults to "linear".

    Example:

    >>> decay = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=100)
    >>> schedule = Warmup(decay, warmup_steps=10)
    >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 110)]
    [0.0, 0.05, 0.1, 0.0]

    References:
        - Goyal et al., 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (gradual linear
          warm-up), https://arxiv.org/abs/1706.02677
        - Vaswani et al., 2017, "Attention Is All You Need" (warm-up for Transformers),
          https://arxiv.org/abs/1706.03762
    """

    def __init__(self, schedule, warmup_steps, initial_learning_rate=0.0, shape="linear"):
        super().__init__()
        self.schedule = _checks.schedule_or_rate("schedule", schedule)
        self.warmup_steps = _checks.integer("warmup_steps", warmup_steps, 0)
        self.shape = _checks.choice("shape", shape, SHAPES)
        self.initial_learning_rate = _checks.finite_number(
            "initial_learning_rate", initial_learning_rate, positive=shape == "exponential"
        )
        if shape == "exponential":
            target = float(ops.convert_to_numpy(_ops.evaluate(self.schedule, 0)))
            if not target > 0:
                raise ValueError(
                    "Argument `schedule` must start at a learning rate > 0 for shape='exponential' (the ramp is "
                    f"geometric). Received: schedule with schedule(0)={target!r}"
                )

    def __call__(self, step):
        after = _ops.evaluate(self.schedule, _ops.shifted_step(step, self.warmup_steps))
        if self.warmup_steps == 0:
            return after
        target = _ops.evaluate(self.schedule, 0)
        t = ops.minimum(_ops.float_step(step), float(self.warmup_steps))
        done = t / self.warmup_steps
        if self.shape == "linear":
            left = (self.warmup_steps - t) / self.warmup_steps
            ramp = _ops.interpolate(self.initial_learning_rate, target, done, left, "linear")
        else:
            log_init = math.log(self.initial_learning_rate)
            ramp = self.initial_learning_rate * ops.exp((ops.log(target) - log_init) * done)
        return ops.where(_ops.float_step(step) < self.warmup_steps, ramp, after)

    def get_config(self):
        return {
            "schedule": _ops.serialize(self.schedule),
            "warmup_steps": self.warmup_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "shape": self.shape,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = _ops.deserialize(config["schedule"])
        return cls(**config)
