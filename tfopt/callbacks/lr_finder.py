"""LRFinder and find_learning_rate: the learning-rate range test (Smith 2017)."""

import math

import keras
import numpy as np
from keras import ops

from tfopt import _checks
from tfopt.callbacks import _optimizer


@keras.saving.register_keras_serializable(package="tfopt")
class LRFinder(keras.callbacks.Callback):
    """The learning-rate range test: train briefly at exponentially growing rates and watch the loss.

    Use it before a real training run to pick the learning rate (or a one-cycle schedule's peak): the loss
    falls fastest around a good rate and blows up past the largest usable one. `find_learning_rate` runs it on
    a model and data for you; as a callback it works in your own `model.fit` (it stops the run itself). When
    `fit` ends the callback restores the model's weights, the optimizer's variables (slots, `iterations` and
    the learning rate included), so the model is exactly as it was before; only data-iterator and random state
    move on. The optimizer must be created with a float learning rate; with a schedule it raises a
    `ValueError` at the start of `fit`.

    Step `i` (i = 0, 1, ..., N - 1, N = num_steps) trains one batch at

        lr_i = lr_min * (lr_max / lr_min) ** (i / (N - 1))

    and records that batch's loss `L_i` (the callback resets the loss metric before each batch, so Keras's
    running mean is the batch loss), smoothed with bias correction (`s` = smoothing):

        avg_i = s * avg_{i-1} + (1 - s) * L_i,   avg_{-1} = 0
        smoothed_i = avg_i / (1 - s ** (i + 1))

    It stops after step N - 1, or as soon as `smoothed_i > stop_factor * min(smoothed_0..i-1)` (divergence;
    the test is meant for positive losses, and a best smoothed loss <= 0 never counts as diverged) or the loss
    is not finite. `suggestion()` returns the rate at the steepest descent of the smoothed loss
    against log10(lr); `plot(path)` draws the curve.

    Args:
        min_learning_rate: `lr_min`, the first rate, a number > 0. Defaults to 1e-7.
        max_learning_rate: `lr_max`, the last rate, a number > `min_learning_rate`. Defaults to 10.
        num_steps: `N`, the number of steps (batches) of the sweep, an integer >= 2. Defaults to 100.
        smoothing: `s`, the loss smoothing, in [0, 1) (0 = no smoothing). Defaults to 0.98.
        stop_factor: stop when the smoothed loss exceeds this multiple of the best one, a number > 1.
            Defaults to 4.

    Attributes:
        history: a dict with "lrs" (the rate of each step), "losses" (the smoothed losses, as plotted) and
            "raw_losses" (the batch losses), one entry per completed step.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(256, 4)).astype("float32")
    >>> y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(keras.optimizers.SGD(0.01), loss="mse")
    >>> finder = find_learning_rate(model, (x, y), min_learning_rate=1e-4, max_learning_rate=10.0,
    ...                             num_steps=60, batch_size=32)
    >>> 1e-4 <= finder.suggestion() <= 10.0
    True

    References:
        Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017 (section 3.3).
        https://arxiv.org/abs/1506.01186
    """

    def __init__(self, min_learning_rate=1e-7, max_learning_rate=10.0, num_steps=100, smoothing=0.98, stop_factor=4):
        super().__init__()
        self.min_learning_rate = _checks.finite_number("min_learning_rate", min_learning_rate, positive=True)
        self.max_learning_rate = _checks.finite_number("max_learning_rate", max_learning_rate, positive=True)
        if self.max_learning_rate <= self.min_learning_rate:
            raise ValueError(
                "Argument `max_learning_rate` must be greater than `min_learning_rate`. Received: "
                f"min_learning_rate={min_learning_rate!r}, max_learning_rate={max_learning_rate!r}"
            )
        self.num_steps = _checks.integer("num_steps", num_steps, 2)
        self.smoothing = _checks.number("smoothing", smoothing, 0, 1, high_open=True)
        self.stop_factor = _checks.number("stop_factor", stop_factor, 1, math.inf, low_open=True, high_open=True)
        self.history = {"lrs": [], "losses": [], "raw_losses": []}
        self._saved = None

    def learning_rate_at(self, step):
        """`lr_i` of the sweep for step `i`."""
        ratio = self.max_learning_rate / self.min_learning_rate
        rate = self.min_learning_rate * ratio ** (step / (self.num_steps - 1))
        return min(max(rate, self.min_learning_rate), self.max_learning_rate)

    def on_train_begin(self, logs=None):
        model = self.model
        if not _optimizer.is_settable(model.optimizer):
            raise ValueError(
                "LRFinder sets the learning rate of each step itself, so compile the model with a float learning "
                f"rate for the range test (e.g. keras.optimizers.Adam(1e-3)). Received: "
                f"{_optimizer.describe(model.optimizer)}."
            )
        self.history = {"lrs": [], "losses": [], "raw_losses": []}
        self._step = 0
        self._average = 0.0
        self._best = math.inf
        self._saved = (
            [np.array(w, copy=True) for w in model.get_weights()],
            [np.array(ops.convert_to_numpy(v), copy=True) for v in model.optimizer.variables],
        )

    def on_train_batch_begin(self, batch, logs=None):
        # `self.model` syncs the JAX training state, so these writes reach the next train step.
        model = self.model
        model.reset_metrics()
        _optimizer.unwrap(model.optimizer).learning_rate = self.learning_rate_at(self._step)

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", math.nan))
        step = self._step
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing ** (step + 1))
        self.history["lrs"].append(self.learning_rate_at(step))
        self.history["losses"].append(smoothed)
        self.history["raw_losses"].append(loss)
        self._step = step + 1
        diverged = 0 < self._best < smoothed / self.stop_factor
        if not math.isfinite(smoothed) or diverged or self._step >= self.num_steps:
            self.model.stop_training = True
        self._best = min(self._best, smoothed)

    def on_train_end(self, logs=None):
        if self._saved is None:
            return
        weights, optimizer_values = self._saved
        self.model.set_weights(weights)
        for variable, value in zip(self.model.optimizer.variables, optimizer_values):
            variable.assign(value)
        self._saved = None

    def suggestion(self, skip_start=10, skip_end=5, method="steepest"):
        """The learning rate where the smoothed loss falls fastest against log10(lr), or a tenth of the rate at
        its lowest point.

        `method="steepest"` (the default, Smith 2017):
        The gradient d(smoothed loss) / d(log10 lr) is taken with `numpy.gradient` over the recorded points and
        averaged over a moving window of a tenth of them (at least 1), so one noisy batch cannot make the
        steepest point; the most negative averaged gradient wins. Only the descent counts: points after the
        lowest smoothed loss are left out, as are the noisy ends: the first `skip_start` points, where the
        smoothed loss still carries the start-up of the average, and the last `skip_end` points, where the loss
        is diverging. When fewer than 3 points would remain, the ends are trimmed proportionally instead (a
        fifth of the points at the start, a tenth at the end).

        `method="minimum"`: a tenth of the rate at the lowest smoothed loss inside the same window, the
        "one order of magnitude below the minimum" rule of fast.ai's one-cycle recipes. It depends on one point
        of the curve rather than on its slope, so it is the steadier choice when the descent is long and even
        (the smoothed loss then falls at nearly the same slope over decades, and the steepest point is noise);
        it suits a one-cycle peak.

        Args:
            skip_start: points skipped at the start, an integer >= 0. Defaults to 10.
            skip_end: points skipped at the end, an integer >= 0. Defaults to 5.
            method: "steepest" or "minimum". Defaults to "steepest".

        Returns:
            The suggested learning rate, a float in [min_learning_rate, max_learning_rate].
        """
        skip_start = _checks.integer("skip_start", skip_start, 0)
        skip_end = _checks.integer("skip_end", skip_end, 0)
        if method not in ("steepest", "minimum"):
            raise ValueError(f"Argument `method` must be one of 'steepest', 'minimum'. Received: method={method!r}")
        lrs = np.asarray(self.history["lrs"], dtype="float64")
        losses = np.asarray(self.history["losses"], dtype="float64")
        finite = np.isfinite(losses)
        lrs, losses = lrs[finite], losses[finite]
        if lrs.size < 3:
            raise ValueError(
                "The range test recorded fewer than 3 finite losses, too few for a suggestion. Run it with more "
                f"`num_steps` or a lower `min_learning_rate`. Recorded: {lrs.size}"
            )
        if lrs.size - skip_start - skip_end < 3:
            skip_start, skip_end = lrs.size // 5, lrs.size // 10
        if method == "minimum":
            lowest = lrs[skip_start : lrs.size - skip_end][int(np.argmin(losses[skip_start : lrs.size - skip_end]))]
            return float(max(lowest / 10.0, self.min_learning_rate))
        descent_end = max(int(np.argmin(losses)) + 1, skip_start + 3)
        window = slice(skip_start, min(lrs.size - skip_end, descent_end))
        lrs, losses = lrs[window], losses[window]
        gradient = np.gradient(losses, np.log10(lrs))
        width = max(1, lrs.size // 10)
        averaged = np.convolve(gradient, np.ones(width) / width, mode="same")
        return float(lrs[int(np.argmin(averaged))])

    def plot(self, path, skip_start=10, skip_end=5):
        """Writes the smoothed loss against the learning rate (log axis) to a PNG, the suggestion marked.

        Args:
            path: the file to write.
            skip_start, skip_end: passed to `suggestion`.

        Returns:
            `path`.
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(6, 4), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.plot(self.history["lrs"], self.history["losses"], label="smoothed loss")
        suggested = self.suggestion(skip_start, skip_end)
        loss_at = self.history["losses"][self.history["lrs"].index(suggested)]
        axes.scatter([suggested], [loss_at], color="red", zorder=3, label=f"suggestion {suggested:.3g}")
        axes.set_xscale("log")
        axes.set_xlabel("learning rate")
        axes.set_ylabel("loss")
        axes.set_title("Learning-rate range test")
        axes.legend()
        figure.tight_layout()
        figure.savefig(path, format="png")
        return path

    def get_config(self):
        return {
            "min_learning_rate": self.min_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "num_steps": self.num_steps,
            "smoothing": self.smoothing,
            "stop_factor": self.stop_factor,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def find_learning_rate(
    model,
    data,
    min_learning_rate=1e-7,
    max_learning_rate=10.0,
    num_steps=100,
    smoothing=0.98,
    stop_factor=4,
    batch_size=32,
    verbose=0,
):
    """Runs the learning-rate range test (`LRFinder`) on a compiled model and returns the finder.

    The model is left exactly as it was (weights and optimizer state); read the result from the finder:
    `finder.suggestion()`, `finder.plot("lr.png")`, `finder.history`.

    Args:
        model: a compiled `keras.Model` whose optimizer has a float learning rate.
        data: a `tf.data.Dataset` of batches (repeated as needed), or a tuple `(x, y)` of arrays.
        min_learning_rate, max_learning_rate, num_steps, smoothing, stop_factor: the `LRFinder` arguments.
        batch_size: the batch size for `(x, y)` arrays, an integer >= 1 (ignored for a dataset). Defaults to 32.
        verbose: passed to `fit`. Defaults to 0.

    Returns:
        The `LRFinder` after the run.
    """
    finder = LRFinder(min_learning_rate, max_learning_rate, num_steps, smoothing, stop_factor)
    batch_size = _checks.integer("batch_size", batch_size, 1)
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError(
                "Argument `data` must be a tf.data.Dataset or a tuple (x, y) of arrays. Received: a "
                f"{type(data).__name__} of length {len(data)}"
            )
        x, y = data
        steps_per_epoch = math.ceil(len(x) / batch_size)
        epochs = math.ceil(finder.num_steps / steps_per_epoch)
        model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[finder], verbose=verbose)
    elif hasattr(data, "repeat") and hasattr(data, "element_spec"):
        dataset = data.repeat()
        model.fit(dataset, steps_per_epoch=finder.num_steps, shuffle=False, callbacks=[finder], verbose=verbose)
    else:
        raise TypeError(
            "Argument `data` must be a tf.data.Dataset or a tuple (x, y) of arrays. "
            f"Received: data of type {type(data).__name__}"
        )
    return finder
