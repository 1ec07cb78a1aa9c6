"""`linear_scaling_rule`, the learning rate for a global batch (Goyal et al.); keras only, runs on any backend."""

from tfopt import _checks
from tfopt.schedules.warmup import Warmup


def linear_scaling_rule(base_learning_rate, global_batch_size, *, base_batch_size=256, warmup_steps=0):
    """The learning rate for a large global batch, from one tuned at `base_batch_size`, with a gradual warm-up.

    Data-parallel training multiplies the global batch by the number of replicas; SGD then takes `k` times fewer
    steps per epoch, each on a `k` times larger batch. Goyal et al. keep the training curve by multiplying the
    learning rate by `k` too, and avoid the early instability of the large rate with a linear warm-up from the
    base rate over the first epochs (5 in the paper). Use it when moving a recipe from one device to many; it
    holds for SGD with momentum up to about 8k examples per batch on ImageNet (beyond, see LARS).

    With `eta = base_learning_rate`, `k = global_batch_size / base_batch_size`, `W = warmup_steps` and `t` the
    optimizer step:

        t <  W:  lr(t) = eta + (k * eta - eta) * t / W
        t >= W:  lr(t) = k * eta

    Args:
        base_learning_rate: `eta`, the rate tuned at `base_batch_size`, a finite number > 0.
        global_batch_size: the batch summed over all replicas, an integer >= 1.
        base_batch_size: the batch `eta` was tuned at, an integer >= 1. Defaults to 256.
        warmup_steps: `W`, an integer >= 0; 0 starts at `k * eta`. Defaults to 0.

    Returns:
        A `tfopt.schedules.Warmup` schedule (serializable; pass it as an optimizer's `learning_rate`). Its
        constant rate after the warm-up, `k * eta`, is `schedule.schedule`.

    Example:

    >>> schedule = linear_scaling_rule(0.1, 1024, warmup_steps=100)
    >>> [round(float(schedule(t)), 6) for t in (0, 50, 100, 1000)]
    [0.1, 0.25, 0.4, 0.4]

    References:
        - Goyal et al., 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
          https://arxiv.org/abs/1706.02677
    """
    eta = _checks.finite_number("base_learning_rate", base_learning_rate, positive=True)
    global_batch_size = _checks.integer("global_batch_size", global_batch_size, 1)
    base_batch_size = _checks.integer("base_batch_size", base_batch_size, 1)
    warmup_steps = _checks.integer("warmup_steps", warmup_steps, 0)
    peak = eta * global_batch_size / base_batch_size
    return Warmup(peak, warmup_steps, initial_learning_rate=eta)
