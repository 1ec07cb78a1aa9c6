import pytest

from tfopt import _timing
from tfopt._timing import Timing, time_call, time_interleaved

pytestmark = pytest.mark.backend_agnostic


class FakeClock:
    """perf_counter stand-in: each callable advances it by its own cost, so medians are exact."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def costs(self, *seconds):
        calls = []

        def make(i, s):
            def fn():
                calls.append(i)
                self.now += s

            return fn

        return [make(i, s) for i, s in enumerate(seconds)], calls


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(_timing.time, "perf_counter", fake)
    return fake


def test_interleaves_and_alternates_the_order(clock):
    fns, calls = clock.costs(1.0, 2.0, 3.0)
    time_interleaved(fns, repeats=3, warmup=1)
    warmup, rounds = calls[:3], calls[3:]
    assert warmup == [0, 1, 2]
    assert rounds == [0, 1, 2, 2, 1, 0, 0, 1, 2]


def test_medians_are_per_callable(clock):
    fns, _ = clock.costs(0.5, 2.0)
    a, b = time_interleaved(fns, repeats=5, warmup=0)
    assert a.median == 0.5 and b.median == 2.0 and a.iqr == 0.0
    assert len(a.samples) == 5


def test_time_call_counts_warmup_and_repeats(clock):
    (fn,), calls = clock.costs(0.25)
    timing = time_call(fn, repeats=4, warmup=2)
    assert len(calls) == 6 and timing.median == 0.25


def test_timing_statistics():
    t = Timing.from_samples([1.0, 2.0, 3.0, 4.0, 100.0])
    assert t.median == 3.0
    assert t.iqr == pytest.approx(52.0 - 1.5)  # quartiles 1.5 and 52.0 (exclusive method)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"repeats": 0}, ValueError, "`repeats` must be an integer >= 1. Received: repeats=0"),
        ({"warmup": -1}, ValueError, "`warmup` must be an integer >= 0. Received: warmup=-1"),
        ({"fns": []}, TypeError, "`fns` must be a non-empty list of callables"),
        ({"fns": [1]}, TypeError, "`fns` must be a non-empty list of callables"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    kwargs = {"fns": [lambda: None], **kwargs}
    with pytest.raises(error, match=message):
        time_interleaved(**kwargs)


def test_self_timed_callables_record_what_they_return(clock):
    fns, calls = clock.costs(1.0, 2.0)
    reported = iter([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])

    def own(fn):
        def call():
            fn()
            return next(reported)

        return call

    seen = []
    a, b = time_interleaved([own(f) for f in fns], repeats=2, warmup=1, self_timed=True,
                            on_call=lambda i, r: seen.append((i, r)))
    # Warm-up returns 0.1, 0.2 (ignored); round 0 runs a, b (0.3, 0.4); round 1 runs b, a (0.5, 0.6).
    assert a.samples == (0.3, 0.6) and b.samples == (0.4, 0.5)
    assert seen == [(0, 0), (1, 0), (0, 1), (1, 1), (1, 2), (0, 2)]
