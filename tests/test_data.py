import re

import numpy as np
import pytest

from tfopt.data import load_digits, make_dataset

pytestmark = pytest.mark.backend_agnostic


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _batches(ds):
    return [tuple(np.asarray(t) for t in batch) for batch in ds.as_numpy_iterator()]


def test_split_covers_every_example_once(digits):
    parts = [digits.indices[k] for k in ("train", "validation", "test")]
    joined = np.concatenate(parts)
    assert len(joined) == 1797
    assert np.array_equal(np.sort(joined), np.arange(1797))
    assert [len(p) for p in parts] == [1168, 270, 359]


def test_split_arrays_match_their_indices(digits):
    from sklearn.datasets import load_digits as sk_load_digits

    source = sk_load_digits()
    for x, y, key in (
        (digits.x_train, digits.y_train, "train"),
        (digits.x_val, digits.y_val, "validation"),
        (digits.x_test, digits.y_test, "test"),
    ):
        idx = digits.indices[key]
        np.testing.assert_array_equal(x[..., 0] * 16.0, source.images[idx])
        np.testing.assert_array_equal(y, source.target[idx])


def test_split_is_deterministic(digits):
    again = load_digits()
    for key in ("train", "validation", "test"):
        np.testing.assert_array_equal(digits.indices[key], again.indices[key])
    np.testing.assert_array_equal(digits.x_train, again.x_train)


def test_other_seed_gives_other_split(digits):
    other = load_digits(seed=1)
    assert not np.array_equal(np.sort(digits.indices["test"]), np.sort(other.indices["test"]))


def test_split_is_stratified(digits):
    overall = np.bincount(np.concatenate([digits.y_train, digits.y_val, digits.y_test]), minlength=10) / 1797
    for y in (digits.y_train, digits.y_val, digits.y_test):
        counts = np.bincount(y, minlength=10)
        # Stratification keeps every class within one example of its exact share.
        assert np.all(np.abs(counts - overall * len(y)) <= 1.0), counts


def test_images_are_float32_in_unit_range(digits):
    for x in (digits.x_train, digits.x_val, digits.x_test):
        assert x.dtype == np.float32 and x.shape[1:] == (8, 8, 1)
        assert x.min() == 0.0 and x.max() == 1.0
    assert digits.y_train.dtype == np.int32 and set(np.unique(digits.y_train)) == set(range(10))
    assert digits.input_shape == (8, 8, 1) and digits.num_classes == 10


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"validation_fraction": 0.0}, "`validation_fraction` must be a number in the open range (0, 1)"),
        ({"test_fraction": 1.5}, "`test_fraction` must be a number in the open range (0, 1)"),
        ({"test_fraction": "0.2"}, "`test_fraction` must be a number"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, "must be at most 0.9"),
        ({"seed": -1}, "`seed` must be an integer in [0, 2**32 - 1]. Received: seed=-1"),
        ({"seed": 1.5}, "`seed` must be an integer in [0, 2**32 - 1]. Received: seed=1.5"),
    ],
)
def test_load_digits_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_digits(**kwargs)


def test_pipeline_without_shuffle_yields_the_arrays_in_order():
    x = np.arange(10, dtype="float32").reshape(10, 1)
    y = np.arange(10, dtype="int32")
    batches = _batches(make_dataset(x, y, batch_size=4, shuffle=False))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_pipeline_reshuffles_each_epoch_and_repeats_with_the_seed():
    x = np.arange(64, dtype="float32")
    ds = make_dataset(x, batch_size=64, seed=3)
    first, second = (np.asarray(next(iter(ds))) for _ in range(2))
    assert sorted(first) == sorted(x) and not np.array_equal(first, x)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.asarray(next(iter(make_dataset(x, batch_size=64, seed=3)))), first)


def test_pipeline_drop_remainder():
    ds = make_dataset(np.zeros((10, 2), "float32"), batch_size=4, shuffle=False, drop_remainder=True)
    assert [b.shape[0] for b in ds.as_numpy_iterator()] == [4, 4]


def test_pipeline_maps_once_then_serves_from_cache():
    import tensorflow as tf

    calls = []

    def count(v):
        calls.append(1)
        return v

    def map_fn(x, y):
        return tf.py_function(count, [x], tf.float32) * 2.0, y

    x, y = np.arange(6, dtype="float32"), np.arange(6, dtype="int32")
    ds = make_dataset(x, y, batch_size=6, shuffle=False, map_fn=map_fn)
    for _ in range(3):
        xb, yb = _batches(ds)[0]
        np.testing.assert_array_equal(xb, 2 * x)
    assert len(calls) == 6  # three epochs, but each element was mapped once


def test_pipeline_feeds_fit():
    import keras

    keras.utils.set_random_seed(0)
    data = load_digits()
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(make_dataset(*data.train, batch_size=64), epochs=3, shuffle=False, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((np.zeros(3),), {"batch_size": 0}, ValueError, "`batch_size` must be an integer >= 1. Received: batch_size=0"),
        ((np.zeros(3),), {"batch_size": 2.0}, ValueError, "`batch_size` must be an integer >= 1"),
        ((np.zeros(3), np.zeros(2)), {}, ValueError, r"same number of examples. Received: len\(x\)=3, len\(y\)=2"),
        ((np.zeros((0, 2)),), {}, ValueError, "`x` must contain at least one example"),
        ((np.zeros(3),), {"map_fn": 1}, TypeError, "`map_fn` must be callable"),
        ((np.zeros(3),), {"seed": "a"}, ValueError, "`seed` must be an integer in"),
    ],
)
def test_pipeline_rejects_bad_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        make_dataset(*args, **kwargs)
