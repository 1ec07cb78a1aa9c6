"""The profiler's unit of measurement: one epoch of `fit` over a fixed slice of the data, timed from inside `fit`.

An epoch is timed from Keras's `on_epoch_begin` to its `on_epoch_end`: the per-epoch costs (a fresh iterator, a
shuffle, the first batch's latency) and every train step count; `fit`'s own set-up, paid once per `fit` call and
not per epoch, does not.
"""

import time

import keras
import numpy as np

from tfopt import _checks
from tfopt.data import make_dataset


class EpochClock(keras.callbacks.Callback):
    """Records the seconds and the mean training loss of the last epoch `fit` ran."""

    def __init__(self):
        super().__init__()
        self.seconds = None
        self.loss = None
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self._start
        loss = (logs or {}).get("loss")
        self.loss = None if loss is None else float(loss)


def _is_dataset(x):
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - tfopt depends on TensorFlow
        return False
    return isinstance(x, tf.data.Dataset)




class Feed:
    """How to call `fit` for one epoch of a given input: positional and keyword arguments, and its size."""

    def __init__(self, args, kwargs, steps, examples):
        self.args, self.kwargs, self.steps, self.examples = args, kwargs, steps, examples

    def fit_epoch(self, model, clock):
        model.fit(*self.args, **self.kwargs, epochs=1, verbose=0, callbacks=[clock])
        return clock.seconds


class ProfileData:
    """The slice of the user's data every measurement trains on: `steps` batches, the same for every candidate.

    Arrays: the first `steps * batch_size` examples (so every epoch is `steps` full batches and no partial batch
    compiles a second program). A `tf.data.Dataset` of batches: its first `steps` batches (`take`), each epoch
    re-iterated from the start as `fit` does.
    """

    DEFAULT_STEPS = 32

    def __init__(self, x, y=None, *, batch_size=None, steps=None):
        if steps is not None:
            _checks.integer("steps", steps, 1)
        self.is_dataset = _is_dataset(x)
        if self.is_dataset:
            self._init_dataset(x, y, batch_size, steps)
        else:
            self._init_arrays(x, y, batch_size, steps)

    def _init_arrays(self, x, y, batch_size, steps):
        if not hasattr(x, "__len__") or not hasattr(x, "shape"):
            raise TypeError(
                "Argument `x` must be a NumPy array (with `y`) or a `tf.data.Dataset` of (inputs, targets) batches. "
                f"Received: x of type {type(x).__name__}"
            )
        n = len(x)
        if n == 0:
            raise ValueError("Argument `x` must contain at least one example. Received: an empty array")
        if y is None:
            raise ValueError("Argument `y` is required when `x` is an array. Received: y=None")
        if len(y) != n:
            raise ValueError(
                f"Arguments `x` and `y` must have the same number of examples. Received: len(x)={n}, len(y)={len(y)}"
            )
        batch_size = 32 if batch_size is None else batch_size
        _checks.integer("batch_size", batch_size, 1)
        available = n // batch_size
        if available < 1:
            raise ValueError(
                f"Argument `x` must hold at least one full batch of batch_size={batch_size} examples. "
                f"Received: {n} examples"
            )
        if steps is None:
            steps = min(self.DEFAULT_STEPS, available)
        elif steps > available:
            raise ValueError(
                f"Argument `steps` must be at most the number of full batches in `x` ({available} of "
                f"batch_size={batch_size}). Received: steps={steps}"
            )
        self.batch_size, self.steps = int(batch_size), int(steps)
        used = self.steps * self.batch_size
        self.x, self.y = np.asarray(x[:used]), np.asarray(y[:used])

    def _init_dataset(self, ds, y, batch_size, steps):
        import tensorflow as tf

        if y is not None:
            raise ValueError("Argument `y` must be None when `x` is a `tf.data.Dataset` (it yields the targets).")
        if batch_size is not None:
            raise ValueError(
                "Argument `batch_size` must be None when `x` is a `tf.data.Dataset` (the dataset batches). "
                f"Received: batch_size={batch_size!r}"
            )
        wanted = self.DEFAULT_STEPS if steps is None else steps
        cardinality = int(ds.take(wanted).cardinality())
        if cardinality < 0:  # unknown (e.g. after filter): count once
            cardinality = sum(1 for _ in ds.take(wanted))
        if cardinality == 0:
            raise ValueError("Argument `x` must contain at least one example. Received: an empty dataset")
        if steps is not None and cardinality < steps:
            raise ValueError(
                f"Argument `steps` must be at most the number of batches in `x` ({cardinality}). "
                f"Received: steps={steps}"
            )
        self.steps = cardinality
        self.dataset = ds.take(self.steps)
        first = next(iter(self.dataset))
        inputs = first[0] if isinstance(first, tuple) else first
        self.batch_size = int(tf.shape(tf.nest.flatten(inputs)[0])[0])
        self._tf = tf

    def feed(self, pipeline="given", batch_multiplier=1, seed=0):
        """The `Feed` of one epoch for an input pipeline ("given" or "tfopt") at a batch size multiple."""
        steps = max(1, self.steps // batch_multiplier)
        batch = self.batch_size * batch_multiplier
        if self.is_dataset:
            tf = self._tf
            ds = self.dataset
            if batch_multiplier != 1:
                ds = ds.unbatch().batch(batch, drop_remainder=True).take(steps)
            if pipeline == "tfopt":
                ds = ds.cache().prefetch(tf.data.AUTOTUNE)
            return Feed((ds,), {"shuffle": False}, steps, steps * batch)
        used = steps * batch
        x, y = self.x[:used], self.y[:used]
        if pipeline == "tfopt":

            return Feed((make_dataset(x, y, batch_size=batch, seed=seed),), {"shuffle": False}, steps, used)
        return Feed((x, y), {"batch_size": batch}, steps, used)

    def step_alone_feed(self):
        """One batch, held in memory and repeated `steps` times: the train step with (almost) no input cost."""
        import tensorflow as tf

        if self.is_dataset:
            batch = next(iter(self.dataset))
        else:
            batch = (self.x[: self.batch_size], self.y[: self.batch_size])
        ds = tf.data.Dataset.from_tensors(batch).cache().repeat(self.steps)
        return Feed((ds,), {"shuffle": False}, self.steps, self.steps * self.batch_size)

    def input_alone(self, seed=0):
        """A callable that produces one epoch of batches with no model and returns its seconds.

        A dataset is iterated as `fit` would (a fresh iterator each epoch). Arrays have no pipeline of their own:
        the batches are shuffled and sliced from memory, as Keras's array adapter does.
        """
        rng = np.random.default_rng(seed)

        if self.is_dataset:

            def run():
                start = time.perf_counter()
                for _ in self.dataset:
                    pass
                return time.perf_counter() - start

            return run

        def run():
            start = time.perf_counter()
            order = rng.permutation(len(self.x))
            for i in range(self.steps):
                index = order[i * self.batch_size : (i + 1) * self.batch_size]
                self.x[index], self.y[index]  # noqa: B018 - the slicing is what is timed
            return time.perf_counter() - start

        return run
