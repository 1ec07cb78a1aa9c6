"""The bundled real data set (scikit-learn's handwritten digits) and a `tf.data` input pipeline.

`load_digits` is plain NumPy and works on every Keras backend. `make_dataset` builds a `tf.data.Dataset`, which
Keras feeds to `fit` on the TensorFlow and JAX backends alike; it imports TensorFlow when called, not before.
`write_tfrecords` stores arrays as sharded, optionally compressed TFRecord files and `read_tfrecords` reads them
back as the same kind of pipeline, split per worker for multi-worker training.
"""

from dataclasses import dataclass

import numpy as np

from tfopt import _checks

__all__ = ["DigitsSplit", "load_digits", "make_dataset", "read_tfrecords", "write_tfrecords"]


@dataclass(frozen=True)
class DigitsSplit:
    """Train, validation and test arrays of the digits data.

    Images are float32 of shape `(n, 8, 8, 1)` in [0, 1]; labels are int32 class indices in [0, 10).
    `indices` maps "train", "validation" and "test" to the positions of their examples in scikit-learn's order.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    indices: dict
    num_classes: int = 10

    @property
    def train(self):
        return self.x_train, self.y_train

    @property
    def validation(self):
        return self.x_val, self.y_val

    @property
    def test(self):
        return self.x_test, self.y_test

    @property
    def input_shape(self):
        return self.x_train.shape[1:]






def load_digits(*, validation_fraction=0.15, test_fraction=0.2, seed=0):
    """Loads scikit-learn's 1,797 8x8 handwritten digits, split into train, validation and test.

    The split is stratified (each part keeps the class proportions of the whole) and deterministic: the same
    `seed` gives the same split on every machine. Pixel values (0-16 in the source) are scaled to [0, 1].

    Args:
        validation_fraction: fraction of all examples held out for validation, in (0, 1). Default 0.15.
        test_fraction: fraction of all examples held out for testing, in (0, 1). Default 0.2.
            The two fractions must leave at least one example per class for training.
        seed: integer seed of the split. Default 0.

    Returns:
        A `DigitsSplit`.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    _checks.number("validation_fraction", validation_fraction, 0.0, 1.0, low_open=True, high_open=True)
    _checks.number("test_fraction", test_fraction, 0.0, 1.0, low_open=True, high_open=True)
    if validation_fraction + test_fraction > 0.9:
        raise ValueError(
            "Arguments `validation_fraction` + `test_fraction` must be at most 0.9 so that training data remains. "
            f"Received: validation_fraction={validation_fraction}, test_fraction={test_fraction}"
        )
    _checks.integer("seed", seed, 0, 2**32 - 1)

    digits = sk_load_digits()
    x = (digits.images.astype("float32") / 16.0)[..., None]
    y = digits.target.astype("int32")
    n_test = int(round(test_fraction * len(y)))
    n_val = int(round(validation_fraction * len(y)))
    rest, test = train_test_split(np.arange(len(y)), test_size=n_test, stratify=y, random_state=int(seed))
    train, val = train_test_split(rest, test_size=n_val, stratify=y[rest], random_state=int(seed) + 1)
    return DigitsSplit(
        x[train], y[train], x[val], y[val], x[test], y[test], indices={"train": train, "validation": val, "test": test}
    )


def make_dataset(
    x,
    y=None,
    *,
    batch_size=32,
    shuffle=True,
    seed=0,
    map_fn=None,
    cache=True,
    prefetch=True,
    drop_remainder=False,
):
    """Builds the `tf.data` input pipeline every tfopt stage uses.

    The pipeline is `from_tensor_slices -> map (parallel, optional) -> cache -> shuffle -> batch -> prefetch`:
    preprocessing runs once and in parallel, the cache keeps its result in memory, shuffling happens anew every
    epoch on the cached elements, and prefetching overlaps input with the train step (AUTOTUNE picks the
    parallelism and buffer sizes).

    Args:
        x: array of inputs (first axis: examples).
        y: optional array of targets with the same first dimension as `x`.
        batch_size: positive integer. Default 32.
        shuffle: reshuffle the examples each epoch. Default True.
        seed: integer seed of the shuffle, so that runs repeat. Default 0.
        map_fn: optional deterministic preprocessing, called on each element (`(x, y)` or `x`) with
            `num_parallel_calls=AUTOTUNE`; it runs before the cache, so random augmentation does not belong here.
        cache: keep the (mapped) elements in memory after the first epoch. Default True.
        prefetch: prefetch batches with AUTOTUNE. Default True.
        drop_remainder: drop the last incomplete batch. Default False.

    Returns:
        A `tf.data.Dataset` of batches, ready for `model.fit`, `evaluate` or `predict`.
    """
    import tensorflow as tf

    batch_size = _checks.integer("batch_size", batch_size, 1)
    _checks.integer("seed", seed, 0, 2**32 - 1)
    for flag, value in (("shuffle", shuffle), ("cache", cache), ("prefetch", prefetch),
                        ("drop_remainder", drop_remainder)):
        _checks.boolean(flag, value)
    if map_fn is not None and not callable(map_fn):
        raise TypeError(f"Argument `map_fn` must be callable or None. Received: map_fn={map_fn!r}")
    n = _checks.examples("x", x)
    if n == 0:
        raise ValueError("Argument `x` must contain at least one example. Received: an empty array")
    if y is not None and _checks.examples("y", y) != n:
        raise ValueError(
            f"Arguments `x` and `y` must have the same number of examples. Received: len(x)={n}, "
            f"len(y)={_checks.examples('y', y)}"
        )
    if drop_remainder and n < batch_size:
        raise ValueError(
            f"Argument `batch_size` must be at most the number of examples with `drop_remainder=True`, which "
            f"would otherwise leave no batch (and `fit` an empty history). Received: batch_size={batch_size} for "
            f"{n} examples"
        )

    autotune = tf.data.AUTOTUNE
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if map_fn is not None:
        ds = ds.map(map_fn, num_parallel_calls=autotune)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if prefetch:
        ds = ds.prefetch(autotune)
    return ds


_COMPRESSIONS = {None: "", "GZIP": ".gz", "ZLIB": ".zlib"}






def write_tfrecords(x, y, path, *, shards=1, compression="GZIP"):
    """Writes arrays as TFRecord files that `read_tfrecords` reads back exactly.

    Each example is one `tf.train.Example` holding the raw bytes of `x[i]` (and `y[i]`) with its dtype and shape,
    so any dtype and shape round-trips bit for bit. Example `i` goes to shard `i % shards`: the shards differ in
    size by at most one example, and reading them interleaved in order gives back the original order.

    Args:
        x: array of inputs (first axis: examples).
        y: array of targets with the same first dimension, or None.
        path: path prefix of the files; shard `k` of `n` is `{path}-{k:05d}-of-{n:05d}.tfrecord` plus `.gz` or
            `.zlib` when compressed. Folders are created as needed.
        shards: number of files, an integer >= 1 and at most the number of examples. Default 1.
            Use at least as many as the workers that will read them (one file per worker lets
            `MultiWorkerMirroredStrategy` shard by file).
        compression: "GZIP", "ZLIB" or None. Default "GZIP".

    Returns:
        The list of file paths written, in shard order.
    """
    import os

    import tensorflow as tf

    _checks.choice("compression", compression, tuple(_COMPRESSIONS))
    _checks.integer("shards", shards, 1)
    x = np.asarray(x)
    n = len(x)
    if n == 0:
        raise ValueError("Argument `x` must contain at least one example. Received: an empty array")
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(
                f"Arguments `x` and `y` must have the same number of examples. Received: len(x)={n}, len(y)={len(y)}"
            )
    if shards > n:
        raise ValueError(
            f"Argument `shards` must be at most the number of examples ({n}). Received: shards={shards}"
        )
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TypeError(f"Argument `path` must be a non-empty path. Received: path={path!r}")
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    arrays = {"x": x} if y is None else {"x": x, "y": y}
    for name, array in arrays.items():
        if array.dtype == object:
            raise TypeError(f"Argument `{name}` must be a numeric array. Received: dtype=object")

    def feature(array):
        array = np.asarray(array)  # tobytes() is C order; a 0-d element stays 0-d
        return {
            "bytes": tf.train.Feature(bytes_list=tf.train.BytesList(value=[array.tobytes()])),
            "dtype": tf.train.Feature(bytes_list=tf.train.BytesList(value=[array.dtype.str.encode()])),
            "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(array.shape))),
        }

    paths = [f"{path}-{k:05d}-of-{shards:05d}.tfrecord{_COMPRESSIONS[compression]}" for k in range(shards)]
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    for k, file_path in enumerate(paths):
        with tf.io.TFRecordWriter(file_path, options) as writer:
            for i in range(k, n, shards):
                features = {}
                for name, array in arrays.items():
                    for key, value in feature(array[i]).items():
                        features[f"{name}_{key}"] = value
                example = tf.train.Example(features=tf.train.Features(feature=features))
                writer.write(example.SerializeToString())
    return paths


def _compression_of(file_path):
    if file_path.endswith(".gz"):
        return "GZIP"
    if file_path.endswith(".zlib"):
        return "ZLIB"
    return None


def read_tfrecords(
    pattern,
    batch_size=32,
    *,
    compression="auto",
    shuffle=True,
    shuffle_buffer=10_000,
    seed=0,
    cache=True,
    prefetch=True,
    drop_remainder=False,
    num_workers=1,
    worker_index=0,
    input_context=None,
):
    """Reads files written by `write_tfrecords` as a `tf.data` pipeline of `(x, y)` (or `x`) batches.

    The pipeline is `list files -> (this worker's files) -> interleave over files (parallel reads) -> parse and
    decode (parallel) -> (this worker's records) -> cache -> shuffle -> batch -> prefetch`. Elements equal the
    written arrays exactly (dtype, shape and bytes); with `shuffle=False` and a single worker they come in the
    written order.

    Per-worker sharding: with `num_workers` = W > 1 (or a `tf.distribute.InputContext`, as
    `strategy.distribute_datasets_from_function` passes), worker w reads the files `w, w + W, ...` when there are
    at least W files, else every W-th record; workers never overlap and together cover every example. Left at one
    worker, the pipeline starts from the file list, so `MultiWorkerMirroredStrategy`'s auto-shard policy (AUTO or
    FILE) splits it by file itself when it is given to `strategy.experimental_distribute_dataset`.

    Args:
        pattern: a glob pattern, a file path or a list of paths.
        batch_size: positive integer; the global batch size when `input_context` is given (each worker then
            batches `input_context.get_per_replica_batch_size(batch_size)`). Default 32.
        compression: "auto" (from the file extension: `.gz` GZIP, `.zlib` ZLIB, else none), "GZIP", "ZLIB" or
            None. Default "auto".
        shuffle: reshuffle the examples each epoch. Default True.
        shuffle_buffer: examples in the shuffle buffer, an integer >= 1. Default 10,000.
        seed: integer seed of the shuffle. Default 0.
        cache: keep the decoded examples in memory after the first epoch. Default True.
        prefetch: prefetch batches with AUTOTUNE. Default True.
        drop_remainder: drop the last incomplete batch. Default False.
        num_workers: number of input workers, an integer >= 1. Default 1.
        worker_index: this worker's index in [0, num_workers). Default 0.
        input_context: optional `tf.distribute.InputContext`; overrides `num_workers` and `worker_index`.

    Returns:
        A `tf.data.Dataset` of batches.
    """
    import glob
    import os

    import tensorflow as tf

    _checks.integer("batch_size", batch_size, 1)
    _checks.integer("shuffle_buffer", shuffle_buffer, 1)
    _checks.integer("seed", seed, 0, 2**32 - 1)
    if compression != "auto":
        _checks.choice("compression", compression, tuple(_COMPRESSIONS))
    if input_context is not None:
        if not isinstance(input_context, tf.distribute.InputContext):
            raise TypeError(
                "Argument `input_context` must be a tf.distribute.InputContext or None. "
                f"Received: input_context={input_context!r}"
            )
        num_workers, worker_index = input_context.num_input_pipelines, input_context.input_pipeline_id
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    _checks.integer("num_workers", num_workers, 1)
    _checks.integer("worker_index", worker_index, 0, num_workers - 1)
    if isinstance(pattern, (list, tuple)):
        files = [os.fspath(p) for p in pattern]
        missing = [p for p in files if not os.path.isfile(p)]
    else:
        files = sorted(glob.glob(os.fspath(pattern)))
        missing = [] if files else [pattern]
    if not files or missing:
        raise ValueError(f"Argument `pattern` matches no TFRecord file. Received: pattern={pattern!r}")
    kinds = {_compression_of(f) if compression == "auto" else compression for f in files}
    if len(kinds) != 1:
        raise ValueError(f"Argument `pattern` mixes compressions {sorted(map(str, kinds))}; read them separately.")
    kind = kinds.pop() or ""

    # The element spec comes from the first record: decoding needs the dtype before the graph is built.
    first = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(files[0], kind))).numpy())
    names = [name for name in ("x", "y") if f"{name}_bytes" in first.features.feature]
    specs = {
        name: (
            tf.as_dtype(np.dtype(first.features.feature[f"{name}_dtype"].bytes_list.value[0].decode())),
            list(first.features.feature[f"{name}_shape"].int64_list.value),
        )
        for name in names
    }
    description = {}
    for name in names:
        description[f"{name}_bytes"] = tf.io.FixedLenFeature([], tf.string)

    def decode(record):
        parsed = tf.io.parse_single_example(record, description)
        values = tuple(
            tf.reshape(tf.io.decode_raw(parsed[f"{name}_bytes"], dtype), tf.constant(shape, tf.int64))
            for name, (dtype, shape) in specs.items()
        )
        return values if len(values) > 1 else values[0]

    autotune = tf.data.AUTOTUNE
    by_file = num_workers > 1 and len(files) >= num_workers
    if by_file:
        files = files[worker_index::num_workers]
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, kind),
        cycle_length=len(files),
        block_length=1,
        num_parallel_calls=autotune,
        deterministic=True,
    )
    ds = ds.map(decode, num_parallel_calls=autotune, deterministic=True)
    if num_workers > 1 and not by_file:
        ds = ds.shard(num_workers, worker_index)
    if num_workers > 1:
        # Sharded here already; a strategy must not shard again.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        ds = ds.with_options(options)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(int(shuffle_buffer), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if prefetch:
        ds = ds.prefetch(autotune)
    return ds
