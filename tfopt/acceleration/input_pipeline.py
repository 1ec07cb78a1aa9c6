"""Input-pipeline diagnosis: how much of each train step waits for data, and what tfopt's pipeline changes."""

from dataclasses import asdict, dataclass

from tfopt import _checks
from tfopt._timing import time_interleaved
from tfopt.acceleration._timed_epoch import EpochClock, ProfileData

INPUT_BOUND = 0.30
PARTLY_INPUT_BOUND = 0.10


@dataclass(frozen=True)
class InputDiagnosis:
    """What `diagnose_input` measured, per train step (medians over interleaved rounds).

    Attributes:
        input_ms: producing one batch with no model (iterating the input alone).
        step_ms: one train step on a batch held in memory (the step alone).
        end_to_end_ms: one train step fed by the input as given.
        improved_ms: one train step fed by tfopt's pipeline (cache, shuffle, prefetch for arrays;
            `cache().prefetch()` for a dataset).
        waiting_fraction: `clip(1 - step_ms / end_to_end_ms, 0, 1)`, the share of each step spent waiting for data.
        improved_waiting_fraction: the same with tfopt's pipeline.
        examples_per_second: throughput of "input", "step", "end_to_end" and "improved".
        verdict: one plain sentence.
    """

    input_ms: float
    step_ms: float
    end_to_end_ms: float
    improved_ms: float
    waiting_fraction: float
    improved_waiting_fraction: float
    examples_per_second: dict
    verdict: str

    def to_dict(self):
        return asdict(self)


def waiting_fraction(step_seconds, end_to_end_seconds):
    """`1 - step / end_to_end`, clipped to [0, 1]: the part of an end-to-end step not explained by compute."""
    return min(1.0, max(0.0, 1.0 - step_seconds / end_to_end_seconds))


def verdict(waiting, improved):
    """The plain sentence for a waiting fraction and the one tfopt's pipeline reaches."""
    change = (
        f"cache() and prefetch() bring it to {improved:.0%}"
        if improved < waiting
        else f"cache() and prefetch() leave it at {improved:.0%}"
    )
    if waiting >= INPUT_BOUND:
        return f"input-bound: {waiting:.0%} of each step waits for data; {change}"
    if waiting >= PARTLY_INPUT_BOUND:
        return f"partly input-bound: {waiting:.0%} of each step waits for data; {change}"
    return f"compute-bound: {waiting:.0%} of each step waits for data; a faster input pipeline gains little ({change})"


def diagnose_input(model, x, y=None, *, batch_size=None, steps=None, rounds=5, warmup=1, seed=0, on_call=None):
    """Measures whether training `model` on this input waits for data.

    Four things are timed in interleaved rounds, one epoch of `steps` batches each: the input alone (iterating
    it with no model), the train step alone (one batch held in memory, repeated), the step fed end to end by the
    input as given, and the step fed by tfopt's pipeline. With `t_step` and `t_e2e` the median seconds per step,

        waiting = clip(1 - t_step / t_e2e, 0, 1)

    is the share of each end-to-end step that is not compute: time the step spent waiting for its batch.

    Args:
        model: a compiled `keras.Model` (it trains during the measurement).
        x: NumPy inputs (with `y`), or a `tf.data.Dataset` of `(inputs, targets)` batches.
        y: NumPy targets, or None for a dataset.
        batch_size: batch size for arrays (default 32); None for a dataset.
        steps: batches per timed epoch. Default: 32, or fewer when the data holds fewer.
        rounds: timed rounds, an integer >= 3. Default 5.
        warmup: untimed rounds first (compilation happens there), an integer >= 1. Default 1.
        seed: seed of the shuffles. Default 0.
        on_call: optional `on_call(index, round)` after every epoch (progress).

    Returns:
        An `InputDiagnosis`.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `model` must be a keras.Model. Received: model of type {type(model).__name__}")
    if not model.compiled:
        raise ValueError("Argument `model` must be compiled (it is trained while the input is measured).")
    _checks.integer("rounds", rounds, 3)
    _checks.integer("warmup", warmup, 1)
    data = ProfileData(x, y, batch_size=batch_size, steps=steps)
    return _diagnose(model, data, rounds=rounds, warmup=warmup, seed=seed, on_call=on_call)


def _diagnose(model, data, *, rounds, warmup, seed, on_call=None):
    clock = EpochClock()
    feeds = [data.step_alone_feed(), data.feed("given", seed=seed), data.feed("tfopt", seed=seed)]
    fns = [data.input_alone(seed)] + [lambda feed=feed: feed.fit_epoch(model, clock) for feed in feeds]
    timings = time_interleaved(fns, repeats=rounds, warmup=warmup, self_timed=True, on_call=on_call)
    input_s, step_s, e2e_s, improved_s = (t.median / data.steps for t in timings)
    return diagnosis_from_seconds(data.batch_size, input_s, step_s, e2e_s, improved_s)


def diagnosis_from_seconds(batch_size, input_s, step_s, e2e_s, improved_s):
    """The `InputDiagnosis` of four median seconds per batch: input alone, step alone, end to end, improved."""
    waiting = waiting_fraction(step_s, e2e_s)
    improved = waiting_fraction(step_s, improved_s)
    names = ("input", "step", "end_to_end", "improved")
    per_step = (input_s, step_s, e2e_s, improved_s)
    return InputDiagnosis(
        input_ms=1e3 * input_s,
        step_ms=1e3 * step_s,
        end_to_end_ms=1e3 * e2e_s,
        improved_ms=1e3 * improved_s,
        waiting_fraction=waiting,
        improved_waiting_fraction=improved,
        examples_per_second={k: batch_size / max(s, 1e-12) for k, s in zip(names, per_step)},
        verdict=verdict(waiting, improved),
    )
