"""Wall-clock timing shared by the model report, the benchmarks and the fit profiler.

Timings on a shared machine drift and jitter, so nothing here times a thing once: every measure is the median of
repeated calls after warm-up, and comparisons interleave their candidates (A, B, A, B, ...) so that drift touches
all of them alike.
"""

import statistics
import time
from dataclasses import dataclass

from tfopt import _checks


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median, the interquartile range and every sample."""

    median: float
    iqr: float
    samples: tuple

    @classmethod
    def from_samples(cls, samples):
        samples = tuple(float(s) for s in samples)
        if len(samples) >= 4:
            q1, _, q3 = statistics.quantiles(samples, n=4)
        else:
            q1, q3 = min(samples), max(samples)
        return cls(median=statistics.median(samples), iqr=q3 - q1, samples=samples)




def time_call(fn, *, repeats=30, warmup=3):
    """Times `fn()` `repeats` times after `warmup` untimed calls; returns a `Timing`."""
    return time_interleaved([fn], repeats=repeats, warmup=warmup)[0]


def time_interleaved(fns, *, repeats=30, warmup=3, self_timed=False, on_call=None):
    """Times several callables in interleaved rounds; returns one `Timing` per callable.

    Each round calls every callable once; odd rounds run them in reverse order so that no callable always runs
    right after the same neighbour (caches, frequency scaling and allocator state carry over between calls).

    Args:
        fns: the callables.
        repeats: timed rounds. Default 30.
        warmup: untimed rounds before them. Default 3.
        self_timed: when True each callable returns the seconds to record (it times only the part that matters,
            e.g. the epoch inside `fit` without its set-up) instead of being timed from outside. Default False.
        on_call: optional `on_call(index, round)` called after every call, warm-up rounds included (progress).
    """
    _checks.integer("repeats", repeats, 1)
    _checks.integer("warmup", warmup, 0)
    fns = list(fns)
    if not fns or not all(callable(f) for f in fns):
        raise TypeError(f"Argument `fns` must be a non-empty list of callables. Received: fns={fns!r}")
    for r in range(warmup):
        for i, fn in enumerate(fns):
            fn()
            if on_call is not None:
                on_call(i, r)
    samples = [[] for _ in fns]
    order = list(range(len(fns)))
    for r in range(repeats):
        for i in order if r % 2 == 0 else reversed(order):
            start = time.perf_counter()
            result = fns[i]()
            samples[i].append(float(result) if self_timed else time.perf_counter() - start)
            if on_call is not None:
                on_call(i, warmup + r)
    return [Timing.from_samples(s) for s in samples]
