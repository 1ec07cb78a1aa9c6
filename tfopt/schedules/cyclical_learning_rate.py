"""CyclicalLearningRate: Smith's triangular cycles, step for step the same as PyTorch's `CyclicLR`."""

import math

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules import _ops

MODES = ("triangular", "triangular2", "exp_range")


@keras.saving.register_keras_serializable(package="tfopt")
class CyclicalLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Cycles the learning rate between a base and a maximum rate along triangles.

    Instead of tuning one rate and a decay, pick a range (a learning-rate range test gives it: the rate where the
    loss starts falling and where it stops) and let the rate sweep it; training passes through good rates every
    cycle and escapes saddle points on the way up. Typical cycles are 2-10 epochs long (`step_size_up` of 2-10x
    the steps per epoch). This replaces TensorFlow Addons' `tfa.optimizers.CyclicalLearningRate` family
    (Triangular, Triangular2, ExponentialCyclical), and its values equal PyTorch's
    `torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr, max_lr, step_size_up, step_size_down, mode, gamma)`:
    `schedule(t)` is the rate PyTorch's optimizer uses on its `(t + 1)`-th step.

    With `t` the optimizer step (0 for the first update), `lr_b = base_learning_rate`,
    `lr_m = max_learning_rate`, `U = step_size_up`, `D = step_size_down` and `L = U + D` the cycle length:

        cycle = floor(t / L) + 1                      (1 for the first cycle)
        r     = t - (cycle - 1) * L                   (the step within the cycle)
        h     = r / U           if r <= U            (rising from 0 to 1)
                (L - r) / D     otherwise             (falling back towards 0)
        lr(t) = lr_b + (lr_m - lr_b) * h * scale

    with `scale = 1` ("triangular"), `scale = 1 / 2 ** (cycle - 1)` ("triangular2": the height halves every
    cycle), or `scale = gamma ** t` ("exp_range": the height decays every step, not every cycle, as in the paper
    and PyTorch). The rate is `lr_b` at step 0 and `lr_m` at step `U`.

    Args:
        base_learning_rate: `lr_b`, the lower bound, a number >= 0.
        max_learning_rate: `lr_m`, the upper bound, a number >= `base_learning_rate`.
        step_size_up: `U`, steps from the base to the maximum, an integer >= 1.
        step_size_down: `D`, steps from the maximum back to the base, an integer >= 1, or None for `U`.
            Defaults to None.
        mode: "triangular", "triangular2" or "exp_range". Defaults to "triangular".
        gamma: the per-step factor of "exp_range", in (0, 1]. Defaults to 1.0.

    Example:

    >>> schedule = CyclicalLearningRate(0.1, 0.5, step_size_up=4)
    >>> [round(float(schedule(t)), 6) for t in (0, 2, 4, 6, 8)]
    [0.1, 0.3, 0.5, 0.3, 0.1]

    References:
        - Smith, 2017, "Cyclical Learning Rates for Training Neural Networks", https://arxiv.org/abs/1506.01186
    """

    def __init__(
        self,
        base_learning_rate,
        max_learning_rate,
        step_size_up,
        step_size_down=None,
        mode="triangular",
        gamma=1.0,
    ):
        super().__init__()
        self.base_learning_rate = _checks.finite_number("base_learning_rate", base_learning_rate)
        self.max_learning_rate = _checks.finite_number("max_learning_rate", max_learning_rate)
        if self.max_learning_rate < self.base_learning_rate:
            raise ValueError(
                "Argument `max_learning_rate` must be >= `base_learning_rate` "
                f"(={self.base_learning_rate!r}). Received: max_learning_rate={max_learning_rate!r}"
            )
        self.step_size_up = _checks.integer("step_size_up", step_size_up, 1)
        self.step_size_down = None if step_size_down is None else _checks.integer("step_size_down", step_size_down, 1)
        self.mode = _checks.choice("mode", mode, MODES)
        self.gamma = _checks.number("gamma", gamma, 0, 1, low_open=True)

    def __call__(self, step):
        t = _ops.float_step(step)
        cycles_done, height = self._cycle_height(t)
        return self.base_learning_rate + (self.max_learning_rate - self.base_learning_rate) * height * self._scale(
            t, cycles_done)

    def _cycle_height(self, t):
        """(completed cycles, the triangle's height in [0, 1]) at the float step `t`."""
        up = self.step_size_up
        down = up if self.step_size_down is None else self.step_size_down
        length = up + down
        cycles_done, r = _ops.floor_divide(t, length)
        return cycles_done, ops.where(r <= up, r / up, (length - r) / down)

    def _scale(self, t, cycles_done):
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return ops.power(0.5, cycles_done)
        return ops.exp(t * math.log(self.gamma))

    def get_config(self):
        return {
            "base_learning_rate": self.base_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "step_size_up": self.step_size_up,
            "step_size_down": self.step_size_down,
            "mode": self.mode,
            "gamma": self.gamma,
        }
