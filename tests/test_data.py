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
    "kwargs, error, message",
    [
        ({"validation_fraction": 0.0}, ValueError,
         "`validation_fraction` must be a number in (0.0, 1.0). Received: validation_fraction=0.0"),
        ({"test_fraction": 1.5}, ValueError,
         "`test_fraction` must be a number in (0.0, 1.0). Received: test_fraction=1.5"),
        ({"test_fraction": "0.2"}, TypeError,
         "`test_fraction` must be a number in (0.0, 1.0). Received: test_fraction='0.2' of type str"),
        ({"validation_fraction": 0.5, "test_fraction": 0.5}, ValueError, "must be at most 0.9"),
        ({"seed": -1}, ValueError, "`seed` must be an integer in [0, 4294967295]. Received: seed=-1"),
        ({"seed": 1.5}, TypeError, "`seed` must be an integer in [0, 4294967295]. Received: seed=1.5 of type float"),
    ],
)
def test_load_digits_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
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
        ((np.zeros(3),), {"batch_size": 2.0}, TypeError,
         "`batch_size` must be an integer >= 1. Received: batch_size=2.0 of type float"),
        ((np.zeros(3), np.zeros(2)), {}, ValueError, r"same number of examples. Received: len\(x\)=3, len\(y\)=2"),
        ((np.zeros((0, 2)),), {}, ValueError, "`x` must contain at least one example"),
        ((np.zeros(3),), {"map_fn": 1}, TypeError, "`map_fn` must be callable"),
        ((np.zeros(3),), {"seed": "a"}, TypeError, "`seed` must be an integer in"),
    ],
)
def test_pipeline_rejects_bad_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        make_dataset(*args, **kwargs)


# TFRecords: write_tfrecords / read_tfrecords.


def _tfrecord_arrays(n=103):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4, 3)).astype("float16"), rng.integers(0, 10, n).astype("int64")


def _concat(ds):
    parts = list(ds.as_numpy_iterator())
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p) for p in zip(*parts))
    return np.concatenate(parts)


@pytest.mark.parametrize("compression", [None, "GZIP", "ZLIB"])
@pytest.mark.parametrize("shards", [1, 4])
def test_tfrecord_round_trip_is_exact(tmp_path, compression, shards):
    from tfopt.data import read_tfrecords, write_tfrecords

    x, y = _tfrecord_arrays()
    paths = write_tfrecords(x, y, str(tmp_path / "part"), shards=shards, compression=compression)
    suffix = {None: ".tfrecord", "GZIP": ".tfrecord.gz", "ZLIB": ".tfrecord.zlib"}[compression]
    assert paths == [str(tmp_path / f"part-{k:05d}-of-{shards:05d}{suffix}") for k in range(shards)]
    xs, ys = _concat(read_tfrecords(str(tmp_path / "part-*"), batch_size=10, shuffle=False))
    assert xs.dtype == np.float16 and ys.dtype == np.int64 and xs.shape == (103, 4, 3)
    np.testing.assert_array_equal(xs, x)
    np.testing.assert_array_equal(ys, y)


def test_tfrecords_of_inputs_only_and_the_digits(tmp_path):
    from tfopt.data import read_tfrecords, write_tfrecords

    digits = load_digits()
    write_tfrecords(digits.x_train, None, str(tmp_path / "x"), shards=2, compression=None)
    xs = _concat(read_tfrecords(str(tmp_path / "x-*"), batch_size=64, shuffle=False))
    np.testing.assert_array_equal(xs, digits.x_train)


def test_tfrecord_shuffle_reshuffles_every_epoch_and_covers_every_example(tmp_path):
    from tfopt.data import read_tfrecords, write_tfrecords

    x, y = _tfrecord_arrays()
    write_tfrecords(x, y, str(tmp_path / "s"), shards=3)
    ds = read_tfrecords(str(tmp_path / "s-*"), batch_size=200, seed=1)
    first, second = (_concat(ds)[1] for _ in range(2))
    assert sorted(first) == sorted(y) and not np.array_equal(first, y) and not np.array_equal(first, second)


@pytest.mark.parametrize("shards", [1, 3, 4])
def test_tfrecord_workers_split_without_overlap(tmp_path, shards):
    import tensorflow as tf

    from tfopt.data import read_tfrecords, write_tfrecords

    x = np.arange(50, dtype="int32")
    write_tfrecords(x, None, str(tmp_path / "w"), shards=shards)
    pattern = str(tmp_path / "w-*")
    parts = [_concat(read_tfrecords(pattern, 8, shuffle=False, num_workers=2, worker_index=w)) for w in range(2)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(np.concatenate(parts)) == list(x)
    assert abs(len(parts[0]) - len(parts[1])) <= 25 if shards == 3 else abs(len(parts[0]) - len(parts[1])) <= 1
    contexts = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=w, num_replicas_in_sync=2)
                for w in range(2)]
    by_context = [_concat(read_tfrecords(pattern, 16, shuffle=False, input_context=c)) for c in contexts]
    for a, b in zip(parts, by_context):
        np.testing.assert_array_equal(a, b)
    first_batch = next(iter(read_tfrecords(pattern, 16, shuffle=False, input_context=contexts[0])))
    assert first_batch.shape[0] == 8  # the global batch of 16 split over 2 replicas


def test_tfrecord_pipeline_lets_multiworker_auto_shard_split_by_file(tmp_path):
    # The rewrite MultiWorkerMirroredStrategy applies to each worker's copy of the dataset (private TF API: no
    # public entry point applies it without starting several worker processes).
    from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset

    from tfopt.data import read_tfrecords, write_tfrecords

    x = np.arange(40, dtype="int32")
    write_tfrecords(x, None, str(tmp_path / "a"), shards=4)
    # One pipeline per worker, as each worker process builds its own.
    parts = [
        sorted(_concat(_AutoShardDataset(read_tfrecords(str(tmp_path / "a-*"), 5, shuffle=False), 2, w)))
        for w in range(2)
    ]
    # Files 0 and 2 hold the examples i % 4 in {0, 2}: worker 0 got whole files, not every other record.
    assert parts[0] == [i for i in range(40) if i % 4 in (0, 2)]
    assert parts[1] == [i for i in range(40) if i % 4 in (1, 3)]


def test_gzip_shrinks_the_digits(tmp_path):
    import os

    from tfopt.data import write_tfrecords

    digits = load_digits()
    sizes = {}
    for compression in (None, "GZIP"):
        paths = write_tfrecords(*digits.train, str(tmp_path / str(compression)), compression=compression)
        sizes[compression] = sum(os.path.getsize(p) for p in paths)
    assert sizes["GZIP"] < 0.5 * sizes[None]


@pytest.mark.parametrize(
    "args, kwargs, error, message",
    [
        ((np.zeros(3), None), {"compression": "LZ4"}, ValueError,
         "`compression` must be one of None, 'GZIP', 'ZLIB'. Received: compression='LZ4'"),
        ((np.zeros(3), None), {"shards": 0}, ValueError, "`shards` must be an integer >= 1. Received: shards=0"),
        ((np.zeros(3), None), {"shards": 4}, ValueError, "`shards` must be at most the number of examples (3)"),
        ((np.zeros(0), None), {}, ValueError, "`x` must contain at least one example"),
        ((np.zeros(3), np.zeros(2)), {}, ValueError, "same number of examples. Received: len(x)=3, len(y)=2"),
        ((np.array([None, 1], dtype=object), None), {}, TypeError, "`x` must be a numeric array"),
    ],
)
def test_write_tfrecords_rejects_bad_arguments(tmp_path, args, kwargs, error, message):
    from tfopt.data import write_tfrecords

    with pytest.raises(error, match=re.escape(message)):
        write_tfrecords(*args, str(tmp_path / "bad"), **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"pattern": "missing-*"}, ValueError, "`pattern` matches no TFRecord file. Received: pattern="),
        ({"compression": "LZ4"}, ValueError,
         "`compression` must be one of None, 'GZIP', 'ZLIB'. Received: compression='LZ4'"),
        ({"batch_size": 0}, ValueError, "`batch_size` must be an integer >= 1. Received: batch_size=0"),
        ({"num_workers": 2, "worker_index": 2}, ValueError, "`worker_index` must be an integer in [0, 1]"),
        ({"input_context": 3}, TypeError, "`input_context` must be a tf.distribute.InputContext or None"),
    ],
)
def test_read_tfrecords_rejects_bad_arguments(tmp_path, kwargs, error, message):
    from tfopt.data import read_tfrecords, write_tfrecords

    write_tfrecords(np.zeros(3), None, str(tmp_path / "ok"))
    kwargs = {"pattern": str(tmp_path / "ok-*"), **kwargs}
    if kwargs["pattern"] == "missing-*":
        kwargs["pattern"] = str(tmp_path / "missing-*")
    with pytest.raises(error, match=re.escape(message)):
        read_tfrecords(**kwargs)
