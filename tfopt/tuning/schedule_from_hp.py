"""schedule_from_hp: a Keras Tuner search space over tfopt's learning-rate schedules and their shapes."""

import keras

from tfopt import _checks
from tfopt.schedules import CyclicalLearningRate, InverseSqrt, LinearDecay, OneCycle, StepDecay, WarmupStableDecay
from tfopt.tuning import _hp


def _constant(hp, p, peak, total):
    return peak


def _one_cycle(hp, p, peak, total):

    return OneCycle(peak, total, pct_start=hp.Float(f"{p}pct_start", 0.1, 0.5, default=0.3))


def _warmup_stable_decay(hp, p, peak, total):

    warmup = int(hp.Float(f"{p}warmup_fraction", 0.0, 0.2) * total)
    decay = max(1, int(hp.Float(f"{p}decay_fraction", 0.1, 0.5, default=0.2) * total))
    shape = hp.Choice(f"{p}decay_shape", ["linear", "cosine", "1-sqrt"])
    return WarmupStableDecay(peak, total, warmup, min(decay, total - warmup), decay_shape=shape)


def _cosine(hp, p, peak, total):
    warmup = int(hp.Float(f"{p}warmup_fraction", 0.0, 0.2) * total)
    return keras.optimizers.schedules.CosineDecay(0.0 if warmup else peak, max(1, total - warmup),
                                                  warmup_target=peak if warmup else None, warmup_steps=warmup)


def _linear_decay(hp, p, peak, total):

    return LinearDecay(peak, total, end_learning_rate=peak * hp.Float(f"{p}end_fraction", 0.0, 0.1))


def _step_decay(hp, p, peak, total):

    drops = hp.Int(f"{p}drops", 1, 3)
    return StepDecay(peak, max(1, total // (drops + 1)), gamma=hp.Choice(f"{p}gamma", [0.1, 0.3, 0.5]))


def _cyclical(hp, p, peak, total):

    cycles = hp.Int(f"{p}cycles", 1, 4)
    base = peak / hp.Float(f"{p}div_factor", 3.0, 30.0, sampling="log")
    mode = hp.Choice(f"{p}mode", ["triangular", "triangular2"])
    return CyclicalLearningRate(base, peak, max(1, total // (2 * cycles)), mode=mode)


def _inverse_sqrt(hp, p, peak, total):

    return InverseSqrt(peak, max(1, int(hp.Float(f"{p}warmup_fraction", 0.01, 0.2) * total)))


# Name -> f(hp, prefix, peak, total_steps) -> learning rate (a float for "constant", else a schedule).
SCHEDULES = {
    "constant": _constant,
    "one_cycle": _one_cycle,
    "warmup_stable_decay": _warmup_stable_decay,
    "cosine": _cosine,
    "linear_decay": _linear_decay,
    "step_decay": _step_decay,
    "cyclical": _cyclical,
    "inverse_sqrt": _inverse_sqrt,
}
DEFAULT_CHOICES = ("constant", "one_cycle", "warmup_stable_decay", "cosine")


def schedule_from_hp(hp, total_steps, learning_rate, choices=DEFAULT_CHOICES):
    """A learning-rate schedule chosen by Keras Tuner: which shape, and its settings, around a peak rate.

    Use it with `optimizer_from_hp(hp, schedule=lambda peak: schedule_from_hp(hp, total_steps, peak))` so the
    optimizer's sampled learning rate becomes the schedule's peak. It declares `schedule`, a Choice among
    `choices`, and each schedule's settings (active only when it is chosen), all relative to `total_steps` so
    that one space serves any training length:

        constant             the peak rate, unchanged (a float)
        one_cycle            OneCycle(peak, T, pct_start in [0.1, 0.5])
        warmup_stable_decay  WarmupStableDecay(peak, T, warm-up in [0, 0.2] T, decay in [0.1, 0.5] T,
                             decay_shape linear / cosine / 1-sqrt)
        cosine               Keras CosineDecay to 0 over T, after a linear warm-up of [0, 0.2] T
        linear_decay         LinearDecay(peak, T, end = peak x [0, 0.1])
        step_decay           StepDecay(peak, T / (drops + 1), gamma in {0.1, 0.3, 0.5}), drops in [1, 3]
        cyclical             CyclicalLearningRate(peak / div in [3, 30], peak, T / (2 cycles)), cycles in [1, 4],
                             triangular or triangular2
        inverse_sqrt         InverseSqrt(peak, warm-up in [0.01, 0.2] T)

    Args:
        hp: the `keras_tuner.HyperParameters` of the trial.
        total_steps: T, the optimizer steps of the whole training run, an integer >= 1.
        learning_rate: the peak learning rate, a number > 0 (usually the one `optimizer_from_hp` sampled).
        choices: names among the above. Default ("constant", "one_cycle", "warmup_stable_decay", "cosine").

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule`, or the float `learning_rate` for "constant".

    Example:

    >>> import keras_tuner
    >>> hp = keras_tuner.HyperParameters()
    >>> schedule = schedule_from_hp(hp, 1000, 0.01, choices=["one_cycle"])
    >>> type(schedule).__name__, hp.get("schedule/one_cycle/pct_start")
    ('OneCycle', 0.3)
    """
    _hp.check_hp(hp)
    total_steps = _checks.integer("total_steps", total_steps, 1)
    learning_rate = _checks.finite_number("learning_rate", learning_rate, positive=True)
    choices = _hp.check_choices("choices", choices, tuple(SCHEDULES))
    name = hp.Choice("schedule", list(choices))
    with hp.conditional_scope("schedule", [name]):
        return SCHEDULES[name](hp, f"schedule/{name}/", learning_rate, total_steps)
