"""OneCycle: Smith's one-cycle policy, step for step the same as PyTorch's `OneCycleLR`."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.schedules import _ops

ANNEAL_STRATEGIES = ("cos", "linear")


@keras.saving.register_keras_serializable(package="tfopt")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle policy: warm up to `max_learning_rate`, then anneal far below the start.

    Use it for a fixed training budget when you want fast convergence ("super-convergence"): the large rate in
    the middle regularises, the long anneal to a tiny rate at the end settles the weights. Pick
    `max_learning_rate` with a learning-rate range test (or about 3-10x the rate you would keep constant); train
    for exactly `total_steps` optimizer steps. The values equal PyTorch's
    `torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps, pct_start, anneal_strategy,
    div_factor=..., final_div_factor=..., three_phase=...)` (its learning rates; it also cycles momentum, which
    this schedule does not): `schedule(t)` is the rate PyTorch's optimizer uses on its `(t + 1)`-th step.

    With `t` the optimizer step (0 for the first update), `T = total_steps`, `p = pct_start`:

        lr_max = max_learning_rate
        lr_init = lr_max / div_factor
        lr_min = lr_init / final_div_factor

    and the phases (start step `s`, end step `e`, from rate `a` to rate `b`), as in PyTorch:

        three_phase=False:  [0, p*T - 1]: lr_init -> lr_max;   [p*T - 1, T - 1]: lr_max -> lr_min
        three_phase=True:   [0, p*T - 1]: lr_init -> lr_max;   [p*T - 1, 2*p*T - 2]: lr_max -> lr_init;
                            [2*p*T - 2, T - 1]: lr_init -> lr_min

    Step `t` belongs to the first phase with `t <= e` (the last phase takes the rest), `x = (t - s) / (e - s)`:

        "cos":     lr(t) = b + (a - b) * (1 + cos(pi * x)) / 2
        "linear":  lr(t) = a + (b - a) * x

    From step `T - 1` on the rate stays at `lr_min` (PyTorch raises an error past `T`). Where `p*T - 1 = 0` the
    first phase is the single step 0, where PyTorch divides by zero; here it gives `lr_init`.

    Args:
        max_learning_rate: `lr_max`, the peak rate, a number > 0.
        total_steps: `T`, the number of optimizer steps in the cycle, an integer >= 1.
        pct_start: `p`, the fraction of the steps spent increasing the rate, in (0, 1); in (0, 0.5] when
            `three_phase=True`. Defaults to 0.3.
        div_factor: `lr_init = lr_max / div_factor`, a number > 0. Defaults to 25.0.
        final_div_factor: `lr_min = lr_init / final_div_factor`, a number > 0. Defaults to 1e4.
        anneal_strategy: "cos" or "linear". Defaults to "cos".
        three_phase: when True, the rate comes back down to `lr_init` symmetrically before annealing to `lr_min`
            (the shape of fast.ai's original); when False (default) it anneals from the peak straight to
            `lr_min`.

    Example:

    >>> schedule = OneCycle(1.0, total_steps=10, pct_start=0.5, anneal_strategy="linear", div_factor=10.0,
    ...                     final_div_factor=10.0)
    >>> [round(float(schedule(t)), 6) for t in (0, 2, 4, 9, 100)]
    [0.1, 0.55, 1.0, 0.01, 0.01]

    References:
        - Smith, 2018, "A disciplined approach to neural network hyper-parameters: Part 1 -- learning rate, batch
          size, momentum, and weight decay", https://arxiv.org/abs/1803.09820
        - Smith and Topin, 2019, "Super-Convergence: Very Fast Training of Neural Networks Using Large Learning
          Rates", https://arxiv.org/abs/1708.07120
    """

    def __init__(
        self,
        max_learning_rate,
        total_steps,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        anneal_strategy="cos",
        three_phase=False,
    ):
        super().__init__()
        self.max_learning_rate = _checks.finite_number("max_learning_rate", max_learning_rate, positive=True)
        self.total_steps = _checks.integer("total_steps", total_steps, 1)
        _checks.boolean("three_phase", three_phase)
        self.three_phase = three_phase
        if three_phase:
            # The rise and the mirrored fall take 2 * pct_start of the steps; the final anneal needs the rest.
            self.pct_start = _checks.number("pct_start", pct_start, 0, 0.5, low_open=True,
                                            condition="when `three_phase=True`")
        else:
            self.pct_start = _checks.number("pct_start", pct_start, 0, 1, low_open=True, high_open=True)
        self.div_factor = _checks.finite_number("div_factor", div_factor, positive=True)
        self.final_div_factor = _checks.finite_number("final_div_factor", final_div_factor, positive=True)
        self.anneal_strategy = _checks.choice("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)

    def __call__(self, step):
        lr_init = self.max_learning_rate / self.div_factor
        phases = one_cycle_phases(self.total_steps, self.pct_start, self.three_phase,
                                  lr_init, self.max_learning_rate, lr_init / self.final_div_factor)
        t = ops.minimum(_ops.float_step(step), float(self.total_steps - 1))
        return one_cycle_value(t, phases, self.anneal_strategy)

    def get_config(self):
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
            "anneal_strategy": self.anneal_strategy,
            "three_phase": self.three_phase,
        }


def one_cycle_phases(total_steps, pct_start, three_phase, start, peak, end):
    """(first step, last step, from, to) of each phase of a one-cycle curve, in PyTorch's float64 arithmetic.

    Two phases: `start` -> `peak` over steps [0, p*T - 1], then `peak` -> `end` up to T - 1. Three phases
    (`three_phase=True`): `start` -> `peak`, `peak` -> `start` up to 2*p*T - 2, then `start` -> `end`. The learning
    rate rises from max/div_factor to its peak; the momentum (callbacks.MomentumCycle) falls from its maximum to its
    base, the mirror image, on the same steps.
    """
    up_end = float(pct_start * total_steps) - 1
    last = float(total_steps - 1)
    if not three_phase:
        return [(0.0, up_end, start, peak), (up_end, last, peak, end)]
    down_end = float(2 * pct_start * total_steps) - 2
    return [(0.0, up_end, start, peak), (up_end, down_end, peak, start), (down_end, last, start, end)]


def one_cycle_value(t, phases, anneal_strategy):
    """The curve of `phases` at the float step tensor `t` (at most the last phase's end), annealed "cos" or
    "linear": step `t` belongs to the first phase with `t <= end`, as in PyTorch's OneCycleLR."""
    value = None
    # Walk the phases backwards so that the first phase with t <= end wins.
    for index in reversed(range(len(phases))):
        start, end, value_start, value_end = phases[index]
        if end == start:
            # A phase of zero length holds only its start step, at its start value.
            done, left = 0.0 * t, 1.0 + 0.0 * t
        else:
            done = _ops.minus(t, start) / (end - start)
            left = -_ops.minus(t, end) / (end - start)
        here = _ops.interpolate(value_start, value_end, done, left, anneal_strategy)
        value = here if value is None else ops.where(t <= end, here, value)
    return value
