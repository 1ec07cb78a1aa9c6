import re
import time

import pytest

from tests.acceleration.helpers import tiny_data, tiny_model
from tfopt.acceleration import diagnose_input
from tfopt.acceleration.input_pipeline import verdict, waiting_fraction


def test_waiting_fraction_is_clipped():
    assert waiting_fraction(1.0, 4.0) == 0.75
    assert waiting_fraction(2.0, 1.0) == 0.0
    assert waiting_fraction(0.0, 1.0) == 1.0


def test_verdicts_are_plain():
    assert verdict(0.62, 0.04) == "input-bound: 62% of each step waits for data; cache() and prefetch() bring it to 4%"
    assert verdict(0.15, 0.2).startswith(
        "partly input-bound: 15% of each step waits for data; cache() and prefetch() leave it at 20%"
    )
    assert verdict(0.05, 0.01).startswith("compute-bound: 5% of each step waits for data; a faster input pipeline")


def test_a_slow_python_map_is_diagnosed_input_bound():
    import tensorflow as tf

    x, y = tiny_data(256)

    def slow(v):
        time.sleep(0.02)  # a Python-side decode, 20 ms a batch: far longer than the tiny model's step
        return v

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    ds = ds.map(lambda a, b: (tf.numpy_function(slow, [a], tf.float32), b))
    ds = ds.map(lambda a, b: (tf.ensure_shape(a, [None, 8]), b))
    result = diagnose_input(tiny_model(), ds, rounds=3)
    assert result.waiting_fraction > 0.5
    assert result.improved_waiting_fraction < result.waiting_fraction  # the cache runs the map once
    assert result.input_ms > 20.0 * 0.9
    assert result.verdict.startswith("input-bound:")
    assert set(result.examples_per_second) == {"input", "step", "end_to_end", "improved"}


@pytest.mark.backend_agnostic
def test_arrays_are_diagnosed():
    x, y = tiny_data(256)
    result = diagnose_input(tiny_model(), x, y, batch_size=32, steps=8, rounds=3)
    assert 0.0 <= result.waiting_fraction <= 1.0 and result.step_ms > 0 and result.input_ms > 0
    assert re.match(r"(input-bound|partly input-bound|compute-bound): \d+%", result.verdict)
    assert result.examples_per_second["step"] == pytest.approx(32 / (result.step_ms / 1e3))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        (("model",), {}, TypeError, "`model` must be a keras.Model. Received: model of type str"),
        ((None,), {"rounds": 1}, ValueError, "`rounds` must be an integer >= 3. Received: rounds=1"),
        ((None,), {"warmup": 0}, ValueError, "`warmup` must be an integer >= 1. Received: warmup=0"),
    ],
)
def test_rejects_bad_arguments(args, kwargs, error, message):
    x, y = tiny_data(64)
    model = tiny_model() if args[0] is None else args[0]
    with pytest.raises(error, match=re.escape(message)):
        diagnose_input(model, x, y, **kwargs)


@pytest.mark.backend_agnostic
def test_rejects_an_uncompiled_model():
    import keras

    x, y = tiny_data(64)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="`model` must be compiled"):
        diagnose_input(model, x, y)
