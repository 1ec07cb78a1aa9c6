"""cache_teacher_outputs: the teacher's predictions computed once, for distillation runs that reuse them."""

import os

import keras
import numpy as np

from tfopt import _checks
from tfopt.models._distillation import INPUTS_KEY, TEACHER_KEY


def cache_teacher_outputs(teacher, x, y=None, *, batch_size=256, path=None):
    """Runs the teacher over the data once and returns the data with its outputs, for `CachedDistiller`.

    A distillation run calls the teacher on every batch of every epoch, although a frozen teacher gives the
    same output for the same example each time. With the outputs cached, `tfopt.models.CachedDistiller` (a
    `keras.distillation.Distiller` that reads them) trains the student at the cost of the student alone: the
    saving is the teacher's forward pass times the number of epochs, and grows with the teacher/student size
    ratio. `fit` may shuffle the returned arrays freely (each example keeps its own outputs).

    What makes cached outputs stale, and what is checked: a teacher sees each input once here, so the inputs must
    be the same every epoch. A `tf.data` pipeline (or any iterable of `(x, y)` batches) is read twice; if the
    two passes do not hold the same examples (in any order: shuffling is fine), the pipeline augments at random
    and a `ValueError` says so. Random augmentation layers *inside the student* (`keras.layers.RandomFlip`, ...)
    are fine: the teacher never sees their output, with or without the cache. Augmentation you add to the
    returned data afterwards cannot be seen from here: cache the final, un-augmented inputs.

    Args:
        teacher: the trained `keras.Model` whose outputs to cache (called with `training=False`).
        x: the inputs (an array, or a list/dict of arrays), or a dataset / iterable of `(x, y)` batches with
            `y=None`.
        y: the targets, when `x` holds arrays. Default None.
        batch_size: prediction batch size, an integer >= 1. Default 256.
        path: optional `.npz` file: outputs are read from it when it exists (after checking that it was built
            from the same data) and written to it otherwise, so a second run skips the teacher altogether.

    Returns:
        `(inputs, y)`: `inputs` is `{"inputs": x, "teacher_outputs": outputs}` as NumPy arrays; pass both to
        `CachedDistiller.fit` (`distiller.fit(*cached, ...)`, or `validation_data=cached` for validation data).

    Example:

    >>> import numpy as np
    >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> inputs, labels = cache_teacher_outputs(teacher, np.ones((10, 4)), np.zeros(10))
    >>> inputs["teacher_outputs"].shape
    (10, 3)
    """
    if not isinstance(teacher, keras.Model):
        raise TypeError(f"Argument `teacher` must be a keras.Model. Received: teacher of type {type(teacher).__name__}")
    batch_size = _checks.integer("batch_size", batch_size, 1)
    if path is not None and not os.fspath(path).endswith(".npz"):
        raise ValueError(f"Argument `path` must name a .npz file (NumPy adds the suffix otherwise). Received: "
                         f"path={os.fspath(path)!r}")
    if y is None and _is_batches(x):
        x, y = _read_batches(x)
    elif y is None:
        raise ValueError(
            "Argument `y` is required when `x` holds arrays; pass a dataset of (x, y) batches as `x` otherwise. "
            "Received: y=None"
        )
    x = keras.tree.map_structure(np.asarray, x)
    y = keras.tree.map_structure(np.asarray, y)
    count = _length(x)
    if _length(y) != count:
        raise ValueError(f"Arguments `x` and `y` must hold the same number of examples. Received: {count} and "
                         f"{_length(y)}")
    fingerprint = _fingerprint(x)
    outputs = _read_cache(path, count, fingerprint) if path is not None and os.path.isfile(path) else None
    if outputs is None:
        outputs = teacher.predict(x, batch_size=batch_size, verbose=0)
        if path is not None:
            np.savez(path, teacher_outputs=outputs, fingerprint=fingerprint)
    return {INPUTS_KEY: x, TEACHER_KEY: outputs}, y


def _is_batches(x):
    return not isinstance(x, (np.ndarray, list, tuple, dict)) and hasattr(x, "__iter__") and not hasattr(x, "shape")


def _read_batches(dataset):
    """All `(x, y)` of a dataset as arrays; a ValueError when a second pass gives different examples."""
    passes = []
    for _ in range(2):
        xs, ys = [], []
        for batch in dataset:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError("Argument `x`: a dataset must yield (x, y) batches to be cached. Received a batch "
                                 f"of type {type(batch).__name__}")
            xs.append(keras.tree.map_structure(np.asarray, batch[0]))
            ys.append(keras.tree.map_structure(np.asarray, batch[1]))
        if not xs:
            raise ValueError("Argument `x`: the dataset is empty")
        passes.append((_concatenate(xs), _concatenate(ys)))
    (x, y), (x_again, _) = passes
    if _length(x) != _length(x_again) or not np.allclose(
        _sorted_rows(_fingerprint(x)), _sorted_rows(_fingerprint(x_again)), rtol=1e-6, atol=1e-6
    ):
        raise ValueError(
            "Argument `x`: the dataset gives different inputs on each pass (random augmentation in the pipeline), "
            "so teacher outputs cached from one pass would be stale on the next. Cache the un-augmented data, or "
            "distill with the live teacher (keras.distillation.Distiller) when the augmentation must stay."
        )
    return x, y


def _concatenate(batches):
    return keras.tree.map_structure(lambda *parts: np.concatenate(parts, axis=0), *batches)


def _length(data):
    return len(keras.tree.flatten(data)[0])


def _fingerprint(x):
    """Per example: the sum and the sum of squares of all its input values (float64), side by side."""
    flat = [np.reshape(np.asarray(t, dtype="float64"), (len(t), -1)) for t in keras.tree.flatten(x)]
    values = np.concatenate(flat, axis=1)
    return np.stack([values.sum(axis=1), np.square(values).sum(axis=1)], axis=1)


def _sorted_rows(rows):
    return rows[np.lexsort(rows.T[::-1])]


def _read_cache(path, count, fingerprint):
    with np.load(path, allow_pickle=False) as archive:
        outputs, cached = archive["teacher_outputs"], archive["fingerprint"]
    if len(outputs) != count:
        raise ValueError(
            f"Argument `path`: the cache {path!r} was built from a dataset of {len(outputs)} examples; the data "
            f"has {count}. Delete the file or pass another `path` to rebuild it."
        )
    if cached.shape != fingerprint.shape or not np.allclose(cached, fingerprint, rtol=1e-6, atol=1e-6):
        raise ValueError(
            f"Argument `path`: the cache {path!r} was built from different data of the same length (or in another "
            "order). Delete the file or pass another `path` to rebuild it."
        )
    return outputs
