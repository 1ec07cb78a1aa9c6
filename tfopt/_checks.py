"""Argument checks for the whole of tfopt: the one place they live.

Each error names the argument, the allowed range and the value received: a `TypeError` for a value of the wrong
type, a `ValueError` for one out of range.
"""

import inspect
import math
import numbers
import os

# Keras and NumPy are imported by the checks that need them, on first use, so that `tfopt.cli` can check its
# flags with these functions before Keras (and its backend) loads.


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def number(name, value, low=None, high=None, *, low_open=False, high_open=False, allow_inf=False, condition="",
           optional=False):
    """A real number in the interval from `low` to `high`, returned as a Python float.

    The one interval convention of tfopt: both ends are closed unless `low_open` / `high_open` says otherwise;
    either end may be None (unbounded). NaN is always refused, and so is an infinity unless `allow_inf` (which
    admits +inf when `high` is None). `condition` (e.g. "when `three_phase=True`") follows the interval in the
    message. With `optional`, None passes through.
    """
    if optional and value is None:
        return None
    if low is not None and high is not None:
        allowed = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"a {'' if allow_inf else 'finite '}number {'>' if low_open else '>='} {low}"
    else:
        allowed = "a finite number"
    if condition:
        allowed = f"{allowed} {condition}"
    if optional:
        allowed = f"{allowed} or None"
    if not _is_real(value):
        raise TypeError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    finite = math.isfinite(value) or (allow_inf and high is None and value == math.inf)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not finite or below or above:
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")
    return float(value)


def finite_number(name, value, positive=False):
    """A finite real number, > 0 when `positive`, else >= 0 (a learning rate, a factor, a delta), as a float."""
    return number(name, value, low=0, low_open=positive)


def integer(name, value, minimum, maximum=None, *, optional=False):
    """An integer >= `minimum` (and <= `maximum` when given), returned as a Python int; with `optional`, None
    passes through."""
    if optional and value is None:
        return None
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
    if optional:
        allowed = f"{allowed} or None"
    if not _is_integer(value):
        raise TypeError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"Argument `{name}` must be {allowed}. Received: {name}={value!r}")
    return int(value)


def boolean(name, value):
    """A Python bool (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"Argument `{name}` must be a bool. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    return value


def learning_rate(value, positive=False):
    """An optimizer's learning rate: a number >= 0 (> 0 when `positive`), a `LearningRateSchedule` or a callable;
    numbers become floats. A schedule or a callable is evaluated once, at step 0, and refused when that value is
    not a finite number >= 0 (a callable returning NaN, a schedule that overflows at once)."""
    import keras

    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        _first_learning_rate(value)
        return value
    allowed = "a finite number > 0" if positive else "a finite number >= 0"
    if not _is_real(value):
        raise TypeError(f"Argument `learning_rate` must be {allowed}, a `LearningRateSchedule` or a callable. "
                        f"Received: learning_rate={value!r} of type {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"Argument `learning_rate` must be {allowed}, a `LearningRateSchedule` or a callable. "
                         f"Received: learning_rate={value!r}")
    return float(value)


def weight_decay(value):
    """None (no decay) or a number >= 0, returned as a float."""
    if value is None:
        return None
    return number("weight_decay", value, low=0.0)


def choice(name, value, allowed):
    """One of the strings in `allowed`."""
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"Argument `{name}` must be one of {listed}. Received: {name}={value!r}")
    return value


def schedule_or_rate(name, value):
    """A `LearningRateSchedule`, or a number >= 0 that stands for a constant learning rate (returned as float)."""
    import keras

    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule):
        return value
    if _is_real(value):
        return finite_number(name, value)
    raise TypeError(f"Argument `{name}` must be a keras.optimizers.schedules.LearningRateSchedule or a number "
                    f">= 0. Received: {name}={value!r} of type {type(value).__name__}")


def log_dir(value, optional=False):
    """A non-empty path (str or os.PathLike) as a string; None passes through when `optional`."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        allowed = "a non-empty path (str or os.PathLike)" + (" or None" if optional else "")
        raise TypeError(f"Argument `log_dir` must be {allowed}. Received: log_dir={value!r} of type "
                        f"{type(value).__name__}")
    return os.fspath(value)


def n_m_structure(name, value, optional=False):
    """An N:M sparsity structure (N non-zero weights in every M): the string "N:M" or a pair of integers with
    0 < N < M, returned as the tuple `(n, m)`; with `optional`, None passes through."""
    if optional and value is None:
        return None
    if isinstance(value, str):
        parts = value.split(":")
        pair = tuple(int(p) for p in parts) if len(parts) == 2 and all(p.isdigit() for p in parts) else None
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_integer(v) for v in value):
        pair = tuple(int(v) for v in value)
    else:
        raise TypeError(f"Argument `{name}` must be a string 'N:M' or a pair (N, M) of integers, e.g. '2:4'. "
                        f"Received: {name}={value!r} of type {type(value).__name__}")
    if pair is None or not 0 < pair[0] < pair[1]:
        raise ValueError(f"Argument `{name}` must be 'N:M' with 0 < N < M, e.g. '2:4'. Received: {name}={value!r}")
    return pair


def _first_learning_rate(value):
    """Refuses a schedule or callable whose step-0 learning rate is NaN, infinite or negative.

    Keras calls a schedule with the step and a callable with no argument; one that cannot be called before
    training starts (it reads state that does not exist yet) is left to Keras.
    """
    import keras


    is_schedule = isinstance(value, keras.optimizers.schedules.LearningRateSchedule)
    try:
        rate = value(0) if is_schedule else value()
        rate = float(keras.ops.convert_to_numpy(rate))
    except Exception:  # noqa: BLE001 - an uncallable-yet callable is not ours to judge here
        return
    if not math.isfinite(rate) or rate < 0:
        kind = "schedule" if is_schedule else "callable"
        raise ValueError(f"Argument `learning_rate` must give a finite number >= 0 at the first step. Received: a "
                         f"{kind} {value!r} whose learning rate at step 0 is {rate!r}")


# The options of `keras.optimizers.Optimizer.__init__` and their allowed values, checked for every tfopt optimizer
# and for the optimizer inside every tfopt wrapper (Keras itself lets e.g. `clipnorm=-1e-4` switch clipping off).
def _positive_or_none(name, value):
    return number(name, value, 0, low_open=True, optional=True)


_OPTIMIZER_OPTIONS = {
    "clipnorm": _positive_or_none,
    "clipvalue": _positive_or_none,
    "global_clipnorm": _positive_or_none,
    "weight_decay": lambda name, value: number(name, value, 0, optional=True),
    "use_ema": boolean,
    "ema_momentum": lambda name, value: number(name, value, 0, 1),
    "ema_overwrite_frequency": lambda name, value: integer(name, value, 1, optional=True),
    "loss_scale_factor": _positive_or_none,
    "gradient_accumulation_steps": lambda name, value: integer(name, value, 2, optional=True),
}


def optimizer_options(options, prefix=""):
    """Checks the Keras base optimizer options present in the dict `options` (clipnorm, clipvalue,
    global_clipnorm, weight_decay, use_ema, ema_momentum, ema_overwrite_frequency, loss_scale_factor,
    gradient_accumulation_steps); returns `options` with the checked values. `prefix` (e.g. "optimizer.") goes
    before each name in the messages, for the options of a wrapped optimizer."""
    checked = dict(options)
    for key, check in _OPTIMIZER_OPTIONS.items():
        if key in checked:
            value = check(prefix + key, checked[key])
            # Integers stay integers (Keras compares them), numbers become floats.
            checked[key] = value
    clipping = [key for key in ("clipnorm", "clipvalue", "global_clipnorm") if checked.get(key) is not None]
    if len(clipping) > 1:
        raise ValueError(f"Only one of `{prefix}clipnorm`, `{prefix}clipvalue` and `{prefix}global_clipnorm` may "
                         f"be set. Received: " + ", ".join(f"{prefix}{key}={checked[key]!r}" for key in clipping))
    return checked


def optimizer(value, name="optimizer"):
    """A built or unbuilt `keras.optimizers.Optimizer` whose options and current learning rate are valid (a
    wrapper's inner optimizer: `Lookahead(Adam(float("nan")))` is refused naming `optimizer.learning_rate`)."""
    import keras

    if not isinstance(value, keras.optimizers.Optimizer):
        raise TypeError(f"Argument `{name}` must be a keras.optimizers.Optimizer. Received: {name}={value!r} of "
                        f"type {type(value).__name__}")
    options = {key: getattr(value, key) for key in _OPTIMIZER_OPTIONS if hasattr(value, key)}
    if options.get("weight_decay") == 0.0:
        options["weight_decay"] = None
    optimizer_options(options, prefix=f"{name}.")
    raw = getattr(value, "_learning_rate", None)
    if isinstance(raw, keras.optimizers.schedules.LearningRateSchedule) or (callable(raw) and not
                                                                            isinstance(raw, keras.Variable)):
        try:
            _first_learning_rate(raw)
        except ValueError as error:
            raise ValueError(str(error).replace("`learning_rate`", f"`{name}.learning_rate`")) from None
        return value
    rate = float(keras.ops.convert_to_numpy(value.learning_rate))
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"Argument `{name}.learning_rate` must be a finite number >= 0. Received: "
                         f"{name}.learning_rate={rate!r}")
    return value


def examples(name, value):
    """The number of examples (the first dimension) of an array-like input: a NumPy array, a tensor, a list or a
    tuple, or a dict of them (all of one length). None, a string or a scalar is a TypeError."""
    if isinstance(value, dict) and value:
        counts = {key: examples(f"{name}[{key!r}]", item) for key, item in value.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f"Argument `{name}` must hold arrays of one length. Received lengths {counts}")
        return next(iter(counts.values()))
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) > 0 and not isinstance(value, (str, bytes)):
        return int(shape[0]) if shape[0] is not None else len(value)
    if isinstance(value, (list, tuple)):
        return len(value)
    raise TypeError(f"Argument `{name}` must be an array of examples (a NumPy array, a tensor, a list, or a dict "
                    f"of them) with the examples on the first axis. Received: {name}={value!r} of type "
                    f"{type(value).__name__}")


def path(name, value, suffix=None):
    """A path (str or os.PathLike), ending in `suffix` when given, returned as a string."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise TypeError(f"Argument `{name}` must be a non-empty path (str or os.PathLike). Received: {name}={value!r}"
                        f" of type {type(value).__name__}")
    value = os.fspath(value)
    if suffix is not None and not value.endswith(suffix):
        raise ValueError(f"Argument `{name}` must end in `{suffix}`. Received: {name}={value!r}")
    return value


def writable_path(name, value, suffix=None, make_folders=False):
    """A path a file can be written to, checked before any work so that nothing is computed for a file that cannot
    be written: its folder exists and is writable (with `make_folders`, the nearest existing folder above it is
    writable, for a writer that creates the missing folders)."""
    value = path(name, value, suffix)
    if os.path.isdir(value):
        raise ValueError(f"Argument `{name}` must be a file path, not a folder. Received: {name}={value!r}")
    folder = os.path.dirname(os.path.abspath(value))
    existing = folder
    while make_folders and not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"Argument `{name}` must be a file path in an existing folder. Received: {name}={value!r} "
                         f"(no folder {folder!r})")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"Argument `{name}` must be a file path in a writable folder. Received: {name}={value!r} "
                         f"({existing!r} is not writable)")
    return value


def readable_file(name, value, kind, magic=None, offset=0, suffix=None):
    """An existing, readable file of the given `kind` ("TFLite flatbuffer", "Keras archive"): when `magic` (bytes)
    is given, the file must hold it at `offset`. Returns the path as a string."""
    value = path(name, value, suffix)
    if not os.path.isfile(value):
        raise ValueError(f"Argument `{name}` must be an existing {kind} file. Received: {name}={value!r}, which "
                         f"{'is a folder' if os.path.isdir(value) else 'does not exist'}")
    try:
        with open(value, "rb") as f:
            head = f.read(offset + len(magic or b""))
    except OSError as error:
        raise ValueError(f"Argument `{name}` must be a readable {kind} file. Received: {name}={value!r} "
                         f"({error.strerror})") from None
    if magic is not None and head[offset:offset + len(magic)] != magic:
        raise ValueError(f"Argument `{name}` must be a {kind} file. Received: {name}={value!r}, which is not one "
                         f"(no {magic!r} identifier)")
    return value


def _shape_text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def input_arrays(name, value, shapes):
    """Model inputs (an array, or a list/tuple of arrays, one per input) against the model's input `shapes` (the
    first axis, the examples, and any None dimension match anything); returns the number of examples."""
    import numpy as np


    arrays = list(value) if isinstance(value, (list, tuple)) and len(shapes) > 1 else [value]
    if len(arrays) != len(shapes):
        raise ValueError(f"Argument `{name}` must hold one array per model input ({len(shapes)}). Received "
                         f"{len(arrays)} arrays")
    counts = []
    for array, shape in zip(arrays, shapes):
        examples(name, array)
        got = tuple(np.shape(array))
        want = tuple(shape)
        fits = len(got) == len(want) and all(w is None or g == w for g, w in zip(got[1:], want[1:]))
        if not fits:
            raise ValueError(f"Argument `{name}` must have the model's input shape {_shape_text((None,) + want[1:])}"
                             f" (first axis: examples). Received: {name} of shape {_shape_text(got)}")
        counts.append(got[0])
    if len(set(counts)) > 1:
        raise ValueError(f"Argument `{name}` must hold arrays with one number of examples. Received: {counts}")
    return counts[0]


def labels(name, value, count, classes):
    """Class labels for `count` examples of a model with `classes` output units: class indices of shape `(n,)` or
    `(n, 1)` in [0, classes) (0 or 1 for a single sigmoid output), or one-hot rows `(n, classes)`."""
    import numpy as np


    examples(name, value)
    array = np.asarray(value)
    if len(array) != count:
        raise ValueError(f"Arguments `x` and `{name}` must have the same number of examples. Received: "
                         f"len(x)={count}, len({name})={len(array)}")
    if classes is None:
        return array
    if array.ndim == 2 and array.shape[1] == classes and classes > 1:
        return array
    if array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 1):
        raise ValueError(f"Argument `{name}` must be class indices of shape (n,) or one-hot rows of shape (n, "
                         f"{classes}) for the model's {classes} outputs. Received: {name} of shape {array.shape}")
    if array.size and not np.all(np.isfinite(array.astype("float64"))):
        raise ValueError(f"Argument `{name}` must be finite class indices. Received: {name} with NaN or inf")
    top = max(classes, 2) - 1
    if array.size and (np.any(array != np.round(array)) or array.min() < 0 or array.max() > top):
        bad = array[(array != np.round(array)) | (array < 0) | (array > top)].reshape(-1)[:3].tolist()
        raise ValueError(f"Argument `{name}` must hold class indices in the [0, {top}] range of the model's "
                         f"{max(classes, 2)} classes. Received: {name} with values {bad}"
                         f"{'...' if len(bad) == 3 else ''} (min {array.min().item()!r}, max {array.max().item()!r})")
    return array


def finite_values(name, value):
    """Numeric inputs without NaN or inf (one NaN in the training inputs kills the model)."""
    import numpy as np


    for array in (value if isinstance(value, (list, tuple)) else [value]):
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            count = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise ValueError(f"Argument `{name}` must hold finite numbers. Received: {name} with {count} NaN or inf "
                             f"value(s), the first at index {np.argwhere(~np.isfinite(array))[0].tolist()}")
    return value


def keywords(name, value, function, positional=0):
    """None or a dict of keyword arguments for `function` (its first `positional` parameters are not keywords),
    returned as a dict: a misspelt key (`{"sparsty": ...}`) is refused here, not later inside a build."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"Argument `{name}` must be a dict of keyword arguments for {function.__name__} or None. "
                        f"Received: {name}={value!r} of type {type(value).__name__}")
    allowed = list(inspect.signature(function).parameters)[positional:]
    unknown = [key for key in value if key not in allowed]
    if unknown:
        raise ValueError(f"Argument `{name}` has keys {function.__name__} does not take: "
                         f"{', '.join(map(repr, unknown))}. Allowed keys: {', '.join(map(repr, allowed))}. "
                         f"Received: {name}={value!r}")
    return dict(value)


def model_fn(name, value):
    """A callable that returns a fresh `keras.Model` (a model itself is callable, but is not one)."""
    import keras

    if isinstance(value, keras.Model) or not callable(value):
        raise TypeError(f"Argument `{name}` must be a callable returning a fresh keras.Model (e.g. a function that "
                        f"builds and compiles it), not a model. Received: {name}={value!r} of type "
                        f"{type(value).__name__}")
    return value


def clusters(name, value, sizes):
    """A number of clusters no larger than the smallest clustered kernel; `sizes` maps layer names to the number of
    weights of their smallest clustered weight."""
    if sizes:
        layer, size = min(sizes.items(), key=lambda item: item[1])
        if value > size:
            raise ValueError(f"Argument `{name}` must be at most the number of weights of every clustered kernel "
                             f"({size} in layer {layer!r}). Received: {name}={value}")
    return value


def writable_folder(name, value):
    """A folder to write into: an existing writable one, or a path whose nearest existing folder is writable (it
    is created only once every check has passed). Returns it as a string."""
    value = path(name, value)
    if os.path.exists(value) and not os.path.isdir(value):
        raise ValueError(f"Argument `{name}` must be a folder. Received: {name}={value!r}, which is a file")
    existing = os.path.abspath(value)
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        if os.path.exists(existing):
            raise ValueError(f"Argument `{name}` must be a folder path. Received: {name}={value!r} ({existing!r} is a "
                             "file, not a folder)")
        existing = os.path.dirname(existing)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"Argument `{name}` must be a writable folder. Received: {name}={value!r} ({existing!r} is "
                         "not writable)")
    return value
