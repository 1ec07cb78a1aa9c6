"""compress: the pipeline behind `tfopt compress`: fine-tune and compress a user's model on the user's data, write
the compressed `.keras`, its `.tflite` and a before/after report."""

import json
import os
import time

import keras
import numpy as np

from tfopt import _checks
from tfopt.callbacks import NonFiniteGuard, UpdatePruningStep
from tfopt.callbacks.structured_pruning import StructuredPruning
from tfopt.compression import ConstantSparsity, PolynomialDecay, prune_low_magnitude, strip_pruning
from tfopt.compression.cluster import cluster_weights, strip_clustering
from tfopt.compression.distill import fit_with_teacher
from tfopt.compression.export import export_tflite
from tfopt.compression.quantize import quantize_model
from tfopt.compression.remove_dead_channels import remove_dead_channels
from tfopt.compression.report import measure_model
from tfopt.compression.report_table import markdown_table

__all__ = ["REQUIRED_ARRAYS", "compress", "load_data"]

REQUIRED_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_QUANTIZE = ("int8", "float16", "dynamic")


def load_data(path):
    """The four arrays of a `.npz` file, as a dict; a `ValueError` names the missing ones."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"Argument `data`: no file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            present = set(archive.files)
            missing = [name for name in REQUIRED_ARRAYS if name not in present]
            if missing:
                raise ValueError(
                    f"Argument `data`: {path!r} lacks the array(s) {', '.join(missing)}; it needs "
                    f"{', '.join(REQUIRED_ARRAYS)}. Received arrays: {', '.join(sorted(present)) or 'none'}"
                )
            arrays = {name: archive[name] for name in REQUIRED_ARRAYS}
    except (OSError, EOFError) as e:  # zipfile.BadZipFile is an OSError subclass in numpy's loader
        raise ValueError(f"Argument `data`: {path!r} is not a readable .npz file: {e}") from e
    for split in ("train", "test"):
        if len(arrays[f"x_{split}"]) != len(arrays[f"y_{split}"]) or not len(arrays[f"x_{split}"]):
            raise ValueError(
                f"Argument `data`: x_{split} and y_{split} must hold the same, non-zero number of examples. "
                f"Received: {len(arrays[f'x_{split}'])} and {len(arrays[f'y_{split}'])}"
            )
    return arrays


def _loss_for(model, y):
    """The loss the model was compiled with, else one inferred from the labels and the output layer."""
    if getattr(model, "loss", None) is not None:
        return model.loss
    outputs = model.outputs[0].shape[-1]
    last = model.layers[-1]
    probabilities = getattr(last, "activation", None) in (keras.activations.softmax, keras.activations.sigmoid)
    if outputs == 1:
        return keras.losses.BinaryCrossentropy(from_logits=not probabilities)
    if np.ndim(y) == 2 and np.shape(y)[1] == outputs:
        return keras.losses.CategoricalCrossentropy(from_logits=not probabilities)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=not probabilities)


class _Pipeline:
    def __init__(self, data, loss, epochs, learning_rate, batch_size):
        self.data, self.loss, self.epochs = data, loss, epochs
        self.learning_rate, self.batch_size = learning_rate, batch_size
        self.train_seconds = 0.0
        self.teacher = None  # with a teacher, fine-tuning distills from it (tfopt.compression.fit_with_teacher)

    def fit(self, model, callbacks=()):
        if self.teacher is not None:
            return self._fit_with_teacher(model, callbacks)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=self.loss, metrics=["accuracy"])
        if self.epochs:
            start = time.perf_counter()
            model.fit(
                self.data["x_train"],
                self.data["y_train"],
                batch_size=self.batch_size,
                epochs=self.epochs,
                callbacks=[*callbacks, NonFiniteGuard()],
                verbose=0,
            )
            self.train_seconds += time.perf_counter() - start
        return model

    def _fit_with_teacher(self, model, callbacks):

        start = time.perf_counter()
        fit_with_teacher(model, self.teacher, self.data["x_train"], self.data["y_train"],
                         optimizer=keras.optimizers.Adam(self.learning_rate), loss=self.loss,
                         batch_size=self.batch_size, epochs=self.epochs, callbacks=[*callbacks, NonFiniteGuard()],
                         verbose=0)
        self.train_seconds += time.perf_counter() - start
        # Keep the model compiled on its own (evaluate/save see a plain model, as without a teacher).
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=self.loss, metrics=["accuracy"])
        return model


def compress(
    model,
    data,
    out_dir,
    *,
    sparsity=None,
    structure=None,
    quantize=None,
    clusters=None,
    epochs=2,
    learning_rate=5e-4,
    batch_size=32,
    seed=0,
    teacher=None,
    channels=None,
):
    """Fine-tunes and compresses a trained model, then writes it and a before/after report.

    The steps that are asked for run in this order, each fine-tuning for `epochs` epochs with Adam at
    `learning_rate` on `x_train`/`y_train` and the model's compiled loss (or one inferred from the labels):
    pruning to `sparsity` (magnitude, polynomial schedule) or to the N:M `structure`, then stripped; clustering to
    `clusters` shared values per kernel, then stripped; quantization-aware training for `quantize="int8"`. The
    result is written as `compressed.keras` and `compressed.tflite` (full-integer for "int8"; "float16" and
    "dynamic" quantize at conversion; float32 otherwise), and `report.json` / `report.md` compare the original and
    compressed model as `.keras` and as `.tflite` on `x_test`/`y_test` (accuracy, parameters, non-zeros, size,
    gzip size, latency), like the demo's report.

    Args:
        model: a `keras.Model`, or the path of a `.keras` file.
        data: a dict with the arrays "x_train", "y_train", "x_test", "y_test", or the path of a `.npz` holding them.
        out_dir: output folder (created if needed).
        sparsity: target fraction of zero weights, in (0, 1), or None.
        structure: "N:M" structured sparsity (e.g. "2:4": 2 of every 4 weights zero), or None.
        quantize: "int8", "float16", "dynamic" or None.
        clusters: shared values per kernel, an integer >= 2, or None.
        epochs: fine-tuning epochs per step, an integer >= 0. Default 2.
        learning_rate: Adam's learning rate for fine-tuning, > 0. Default 5e-4.
        batch_size: fine-tuning batch size, an integer >= 1. Default 32.
        seed: seed of the fine-tuning's shuffles and initialisations. Default 0.
        teacher: fine-tune against a teacher's soft targets as well as the labels (`fit_with_teacher`, cached
            teacher outputs): True for the input model itself (the dense original teaches its compressed copy),
            a `keras.Model` or `.keras` path for another, or None for labels only. Default None.

        channels: fraction of the channels (filters/units) of every prunable layer to remove first, in (0, 1), or
            None: gradual channel pruning while fine-tuning (`tfopt.callbacks.StructuredPruning`), then
            `remove_dead_channels` gives the smaller dense model the later steps start from.

    Returns:
        The report rows (dicts), original first.
    """
    if sparsity is not None:
        sparsity = _checks.number("sparsity", sparsity, 0.0, 1.0, low_open=True, high_open=True)
    if channels is not None:
        channels = _checks.number("channels", channels, 0.0, 1.0, low_open=True, high_open=True)
    n_m = _checks.n_m_structure("structure", structure, optional=True)
    if quantize is not None:
        _checks.choice("quantize", quantize, _QUANTIZE)
    if clusters is not None:
        clusters = _checks.integer("clusters", clusters, 2)
    epochs = _checks.integer("epochs", epochs, 0)
    learning_rate = _checks.finite_number("learning_rate", learning_rate, positive=True)
    batch_size = _checks.integer("batch_size", batch_size, 1)
    data = load_data(data) if isinstance(data, (str, os.PathLike)) else data
    missing = [name for name in REQUIRED_ARRAYS if name not in data]
    if missing:
        raise ValueError(
            f"Argument `data` lacks the array(s) {', '.join(missing)}; it needs {', '.join(REQUIRED_ARRAYS)}"
        )
    if isinstance(model, (str, os.PathLike)):
        model = _load_model(model)
    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `model` must be a keras.Model or a .keras path. Received: {type(model).__name__}")
    _check_data(model, data)
    out_dir = _checks.writable_folder("out_dir", out_dir)

    # Every check passed: from here on files are written.
    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(int(seed))
    test = (data["x_test"], data["y_test"])
    pipeline = _Pipeline(data, _loss_for(model, data["y_train"]), epochs, learning_rate, batch_size)
    pipeline.teacher = _teacher_for(teacher, model)
    original_tflite = export_tflite(model, os.path.join(out_dir, "original.tflite"))
    rows = [
        {"stage": "original (.keras)", **measure_model(model, *test).to_dict()},
        {"stage": "original (.tflite float32)", **measure_model(original_tflite, *test).to_dict()},
    ]
    steps = []
    if channels is not None:
        model = _prune_channels(model, pipeline, channels)
        steps.append(f"{channels:.0%} channels pruned")
    if sparsity is not None or n_m is not None:
        model = _prune(model, pipeline, sparsity, n_m)
        steps.append(f"structured {n_m[0]}:{n_m[1]}" if n_m else f"pruned {sparsity:.0%}")
    if clusters is not None:
        model = strip_clustering(pipeline.fit(cluster_weights(model, clusters)))
        steps.append(f"{clusters} clusters")
    if quantize == "int8":
        model = pipeline.fit(quantize_model(model))
        steps.append("int8 QAT")
    elif quantize is not None:
        steps.append(quantize)
    name = " + ".join(steps) or "fine-tuned"
    if not steps:
        model = pipeline.fit(model)
    model.save(os.path.join(out_dir, "compressed.keras"))
    tflite = export_tflite(model, os.path.join(out_dir, "compressed.tflite"), quantization=quantize or "none")
    rows.append(
        {"stage": f"{name} (.keras)", **measure_model(model, *test).to_dict(), "train_seconds": pipeline.train_seconds}
    )
    rows.append({"stage": f"{name} (.tflite)", **measure_model(tflite, *test).to_dict()})
    _write_report(
        rows,
        out_dir,
        {
            "sparsity": sparsity,
            "structure": structure,
            "quantize": quantize,
            "clusters": clusters,
            "epochs": epochs,
            "learning_rate": learning_rate,
            "teacher": None if pipeline.teacher is None else "distilled",
            "channels": channels,
        },
    )
    return rows


def _load_model(path):
    """A `.keras` file loaded; a file that is not a Keras archive, or one Keras cannot load, is a ValueError naming
    `model`."""
    path = _checks.readable_file("model", path, "Keras archive (.keras)", magic=b"PK", suffix=".keras")
    try:
        return keras.models.load_model(path)
    except Exception as e:  # noqa: BLE001 - whatever Keras fails on in a user's file is reported as that file's fault
        message = " ".join(str(e).split())[:300]
        raise ValueError(f"Argument `model`: {path!r} is not a Keras model Keras can load: {message}") from None


def _check_data(model, data):
    """The arrays against the model, before any work: input shapes, finite inputs, labels in the output's range."""
    shapes = [tuple(t.shape) for t in model.inputs]
    outputs = model.outputs[0].shape if len(model.outputs) == 1 else ()
    classes = int(outputs[-1]) if len(outputs) == 2 and outputs[-1] is not None else None
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        count = _checks.input_arrays(f"data['x_{split}']", x, shapes)
        _checks.finite_values(f"data['x_{split}']", x)
        _checks.labels(f"data['y_{split}']", y, count, classes)


def _teacher_for(teacher, model):
    if teacher is None or teacher is False:
        return None
    if teacher is True:
        copy = keras.models.clone_model(model)  # the input model teaches; a copy stays fixed while it changes
        copy.set_weights(model.get_weights())
        return copy
    if isinstance(teacher, (str, os.PathLike)) and os.fspath(teacher).endswith(".keras") and os.path.isfile(teacher):
        return keras.models.load_model(teacher)
    if isinstance(teacher, keras.Model):
        return teacher
    raise TypeError(f"Argument `teacher` must be None, True, a keras.Model or an existing .keras path. Received: "
                    f"teacher={teacher!r}")


def _prune_channels(model, pipeline, channels):

    # Gradual over the first 70% of the fine-tuning steps (the callback's default), fine-tuned at the final width.
    return remove_dead_channels(pipeline.fit(model, callbacks=[StructuredPruning(channels)]))


def _prune(model, pipeline, sparsity, n_m):

    steps = max(1, pipeline.epochs) * int(np.ceil(len(pipeline.data["x_train"]) / pipeline.batch_size))
    frequency = max(1, steps // 20)
    if n_m is not None:  # the pattern fixes the sparsity; recompute it as the weights move
        pruned = prune_low_magnitude(
            model, ConstantSparsity(0.5, begin_step=1, frequency=frequency), sparsity_m_by_n=n_m
        )
    else:  # gradual (Zhu & Gupta) over the first 70% of the steps, so the rest fine-tunes at the final masks
        pruned = prune_low_magnitude(model, PolynomialDecay.over_steps(sparsity, steps, frequency=frequency))
    return strip_pruning(pipeline.fit(pruned, callbacks=[UpdatePruningStep()]))


def _write_report(rows, out_dir, settings):

    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"meta": {**settings, "backend": keras.backend.backend()}, "stages": rows}, f, indent=2)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("# tfopt compress report\n\n")
        f.write(", ".join(f"{k}: {v}" for k, v in settings.items() if v is not None) + "\n\n")
        f.write(markdown_table(rows) + "\n\n")
        f.write(
            "Sizes are of the `.keras` archive without optimizer state, or of the `.tflite` file (gzip level 9 "
            "beside it); latency is the median batch-1 call after warm-up.\n"
        )
