"""Sequential: schedules run one after another, each from its own step 0."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules import _ops


@keras.saving.register_keras_serializable(package="tfopt")
class Sequential(keras.optimizers.schedules.LearningRateSchedule):
    """Runs `schedules[i]` between `boundaries[i - 1]` and `boundaries[i]`, each restarted at its own step 0.

    Builds any multi-phase schedule from simple ones, the way optax's `join_schedules` and PyTorch's
    `SequentialLR` do: a warm-up, a constant phase and a decay; a cosine decay followed by a constant tail;
    fine-tuning phases with their own rates. Numbers stand for constant rates. Like every tfopt schedule it is a
    pure function of the step, so a run resumed from a checkpoint sees the same rates as an unbroken one.

    With `t` the optimizer step (0 for the first update), schedules `s_0 .. s_n` and boundaries
    `b_1 < .. < b_n` (and `b_0 = 0`):

        lr(t) = s_i(t - b_i)   for b_i <= t < b_{i+1}   (the last schedule runs for every t >= b_n)

    so on a boundary step the next schedule already runs, from its step 0.

    Args:
        schedules: a list of `keras.optimizers.schedules.LearningRateSchedule` or numbers >= 0, at least one.
        boundaries: a list of `len(schedules) - 1` strictly increasing integers >= 1, the steps where the next
            schedule takes over.

    Example:

    >>> warm = keras.optimizers.schedules.PolynomialDecay(0.0, 10, end_learning_rate=0.1)
    >>> schedule = Sequential([warm, 0.1, 0.01], boundaries=[10, 50])
    >>> [round(float(schedule(t)), 6) for t in (0, 5, 10, 49, 50)]
    [0.0, 0.05, 0.1, 0.1, 0.01]

    References:
        - optax `join_schedules`, https://optax.readthedocs.io/en/latest/api/optimizer_schedules.html
        - PyTorch `SequentialLR`, https://pytorch.org/docs/stable/generated/torch.optim.lr_scheduler.SequentialLR.html
    """

    def __init__(self, schedules, boundaries):
        super().__init__()
        if not isinstance(schedules, (list, tuple)) or not schedules:
            raise TypeError(
                "Argument `schedules` must be a non-empty list of LearningRateSchedule or numbers >= 0. "
                f"Received: schedules={schedules!r}"
            )
        self.schedules = [_checks.schedule_or_rate(f"schedules[{i}]", s) for i, s in enumerate(schedules)]
        if not isinstance(boundaries, (list, tuple)):
            raise TypeError(f"Argument `boundaries` must be a list of integers. Received: boundaries={boundaries!r}")
        if len(boundaries) != len(self.schedules) - 1:
            raise ValueError(
                f"Argument `boundaries` must have len(schedules) - 1 = {len(self.schedules) - 1} entries. "
                f"Received: boundaries={list(boundaries)!r} with {len(boundaries)} entries"
            )
        self.boundaries = [_checks.integer(f"boundaries[{i}]", b, 1) for i, b in enumerate(boundaries)]
        if any(b >= c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(
                f"Argument `boundaries` must be strictly increasing. Received: boundaries={self.boundaries!r}"
            )

    def __call__(self, step):
        step = ops.convert_to_tensor(step)
        lr = _ops.evaluate(self.schedules[0], step)
        t = _ops.float_step(step)
        for boundary, schedule in zip(self.boundaries, self.schedules[1:]):
            lr = ops.where(t >= boundary, _ops.evaluate(schedule, _ops.shifted_step(step, boundary)), lr)
        return lr

    def get_config(self):
        return {"schedules": [_ops.serialize(s) for s in self.schedules], "boundaries": list(self.boundaries)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedules"] = [_ops.deserialize(s) for s in config["schedules"]]
        return cls(**config)
