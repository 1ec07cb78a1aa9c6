"""The bundled real data set (scikit-learn's handwritten digits) and a `tf.data` input pipeline.

`load_digits` is plain NumPy and works on every Keras backend. `make_dataset` builds a `tf.data.Dataset`, which
Keras feeds to `fit` on the TensorFlow and JAX backends alike; it imports TensorFlow when called, not before.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["DigitsSplit", "load_digits", "make_dataset"]


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


def _check_fraction(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"Argument `{name}` must be a number in the open range (0, 1). Received: {name}={value!r}")


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"Argument `seed` must be an integer in [0, 2**32 - 1]. Received: seed={seed!r}")


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

    _check_fraction("validation_fraction", validation_fraction)
    _check_fraction("test_fraction", test_fraction)
    if validation_fraction + test_fraction > 0.9:
        raise ValueError(
            "Arguments `validation_fraction` + `test_fraction` must be at most 0.9 so that training data remains. "
            f"Received: validation_fraction={validation_fraction}, test_fraction={test_fraction}"
        )
    _check_seed(seed)

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

    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"Argument `batch_size` must be an integer >= 1. Received: batch_size={batch_size!r}")
    _check_seed(seed)
    if map_fn is not None and not callable(map_fn):
        raise TypeError(f"Argument `map_fn` must be callable or None. Received: map_fn={map_fn!r}")
    n = len(x)
    if n == 0:
        raise ValueError("Argument `x` must contain at least one example. Received: an empty array")
    if y is not None and len(y) != n:
        raise ValueError(
            f"Arguments `x` and `y` must have the same number of examples. Received: len(x)={n}, len(y)={len(y)}"
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
