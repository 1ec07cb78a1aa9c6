"""Measures a model the way users compare compressed models.

`measure_model` reports, for a Keras model or a TFLite/LiteRT flatbuffer file: parameter count, non-zero
parameter count, sparsity, serialized size in bytes and its gzip-compressed size, accuracy on given data,
batch-1 inference latency (median of repeated calls after warm-up), and the multiply-accumulates per example
(`count_flops`).

Keras models are measured with `keras` only (any backend). A `.tflite` file is read through
`tfopt.compression.tflite_model` (TensorFlow only: the LiteRT interpreter), imported by it only for such a file.
"""

import gzip
import io
import json
import os
import tempfile
import zipfile
from dataclasses import asdict, dataclass

import keras
import numpy as np

from tfopt import _checks
from tfopt._timing import time_call
from tfopt.compression.tflite_model import TFLiteModel

__all__ = ["ModelReport", "count_flops", "measure_model"]

_FIXED_DATE = "1980-01-01@00:00:00"


@dataclass(frozen=True)
class ModelReport:
    """What `measure_model` found.

    Attributes:
        params: number of stored parameters (every weight the saved model holds, trainable or not, e.g.
            BatchNormalization statistics; for TFLite, every floating-point or quantized constant an op reads,
            which equals the Keras count of the converted model, except that the converter leaves out
            all-zero Dense biases).
        nonzero_params: how many of them are not exactly zero.
        sparsity: `1 - nonzero_params / params`.
        size_bytes: size of the serialized model: the `.keras` archive as shipped for inference (architecture and
            weights, without optimizer state), or the `.tflite` file.
        gzip_bytes: size of the same bytes after gzip at level 9; zeros compress, so this shows sparsity.
        accuracy: classification accuracy on the given data, or None when no labels were given.
        latency_ms: median batch-1 inference latency in milliseconds, or None when not measured.
        latency_iqr_ms: interquartile range of those latencies, or None.
        format: "keras" or "tflite".
        flops: multiply-accumulates of one example through the Conv/Dense layers (`count_flops`), or None where
            they cannot be counted.
    """

    params: int
    nonzero_params: int
    sparsity: float
    size_bytes: int
    gzip_bytes: int
    accuracy: float | None
    latency_ms: float | None
    latency_iqr_ms: float | None
    format: str
    flops: int | None = None

    def to_dict(self):
        return asdict(self)


def measure_model(
    model,
    x=None,
    y=None,
    *,
    batch_size=256,
    measure_latency=True,
    latency_repeats=50,
    latency_warmup=5,
):
    """Measures size, sparsity, accuracy and batch-1 latency of a Keras model or a `.tflite` file.

    Args:
        model: a built `keras.Model`, or the path of a `.tflite` file.
        x: inputs for accuracy and latency (the first example is used for latency). Optional: without it the
            latency is measured on an all-zeros input of the model's input shape.
        y: labels for accuracy: class indices `(n,)` or one-hot `(n, classes)`. Outputs of shape `(n, classes)`
            are scored by argmax; outputs of shape `(n,)` or `(n, 1)` as probabilities thresholded at 0.5.
        batch_size: batch size of the accuracy pass. Default 256.
        measure_latency: measure batch-1 latency. Default True.
        latency_repeats: timed calls; the median is reported. Default 50.
        latency_warmup: untimed calls first (compilation, caches). Default 5.

    Returns:
        A `ModelReport`.
    """
    if y is not None and x is None:
        raise ValueError("Argument `y` needs `x`: accuracy is measured on predictions for `x`. Received: x=None")
    _checks.integer("batch_size", batch_size, 1)
    _checks.integer("latency_repeats", latency_repeats, 1)
    _checks.integer("latency_warmup", latency_warmup, 0)
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not path.endswith(".tflite"):
            raise ValueError(
                f"Argument `model` must be a keras.Model or a path ending in `.tflite`. Received: {path!r}"
            )
        measure = TFLiteModel(path)
    elif isinstance(model, keras.Model):
        measure = _KerasModel(model)
    else:
        raise TypeError(
            f"Argument `model` must be a keras.Model or the path of a .tflite file. Received: {type(model).__name__}"
        )

    # Inputs and labels against the model, before any work: a wrongly shaped `x` would otherwise be read as other
    # examples, and labels outside the model's classes would score 0.0 without a word.
    if x is not None:
        shapes = measure.input_shapes()
        count = _checks.input_arrays("x", x, shapes) if shapes else _checks.examples("x", keras.tree.flatten(x)[0])
        if y is not None:
            y = _checks.labels("y", y, count, measure.classes())
    params, nonzero = measure.count_params()
    data = measure.serialized_bytes()
    accuracy = None
    if y is not None:
        accuracy = _accuracy(measure.predict(x, batch_size), np.asarray(y))
    latency_ms = latency_iqr_ms = None
    if measure_latency:
        timing = time_call(measure.batch1_call(x), repeats=int(latency_repeats), warmup=int(latency_warmup))
        latency_ms, latency_iqr_ms = timing.median * 1e3, timing.iqr * 1e3
    return ModelReport(
        params=params,
        nonzero_params=nonzero,
        sparsity=1.0 - nonzero / params if params else 0.0,
        size_bytes=len(data),
        gzip_bytes=len(gzip.compress(data, compresslevel=9)),
        accuracy=accuracy,
        latency_ms=latency_ms,
        latency_iqr_ms=latency_iqr_ms,
        format=measure.format,
        flops=measure.count_flops(),
    )


def _accuracy(predictions, labels):
    predictions = np.asarray(predictions)
    if predictions.ndim == 2 and predictions.shape[1] > 1:
        predicted = predictions.argmax(axis=1)
    else:
        predicted = (predictions.reshape(len(predictions)) > 0.5).astype("int64")
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    return float(np.mean(predicted == labels.reshape(len(labels))))


def _first_example(x):
    return keras.tree.map_structure(lambda a: np.asarray(a)[:1], x)


class _KerasModel:
    format = "keras"

    def __init__(self, model):
        if not model.built:
            raise ValueError(f"Argument `model` must be built before it is measured. Received: unbuilt {model.name!r}")
        self.model = model

    def input_shapes(self):
        """The symbolic input shapes, or None for a subclassed model that has none."""
        try:
            return [tuple(t.shape) for t in self.model.inputs]
        except (AttributeError, TypeError, ValueError):
            return None

    def classes(self):
        try:
            outputs = self.model.outputs
        except (AttributeError, ValueError):
            return None
        shape = tuple(outputs[0].shape) if outputs and len(outputs) == 1 else ()
        return int(shape[-1]) if len(shape) == 2 and shape[-1] is not None else None

    def count_params(self):
        seen, params, nonzero = set(), 0, 0
        for w in self.model.weights:
            if id(w) in seen:
                continue
            seen.add(id(w))
            value = keras.ops.convert_to_numpy(w)
            params += value.size
            nonzero += int(np.count_nonzero(value))
        return params, nonzero

    def count_flops(self):
        try:
            return count_flops(self.model)
        except ValueError:
            return None

    def serialized_bytes(self):
        # `model.save` also stores the optimizer's slots (Adam triples the file), which no one ships for inference
        # and `.keras` saving cannot leave out; rewrite the archive's weights file without its "optimizer" group.
        # The save time (metadata.json's "date_saved", the zip entries' dates) is set to a fixed one, so the same
        # model always measures the same size, gzipped too.
        import h5py

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            self.model.save(path)
            archive = io.BytesIO()
            with zipfile.ZipFile(path) as src, zipfile.ZipFile(archive, "w") as dst:
                for info in src.infolist():
                    data = src.read(info)
                    if info.filename.endswith(".h5"):
                        full, slim = os.path.join(tmp, "full.h5"), os.path.join(tmp, "slim.h5")
                        with open(full, "wb") as f:
                            f.write(data)
                        with h5py.File(full, "r") as fin, h5py.File(slim, "w") as fout:
                            fout.attrs.update(fin.attrs)
                            for key in fin:
                                if key != "optimizer":
                                    fin.copy(fin[key], fout, name=key)
                        with open(slim, "rb") as f:
                            data = f.read()
                    elif info.filename == "metadata.json":
                        metadata = json.loads(data)
                        metadata["date_saved"] = _FIXED_DATE
                        data = json.dumps(metadata).encode()
                    info.date_time = (1980, 1, 1, 0, 0, 0)
                    dst.writestr(info, data)
            return archive.getvalue()

    def predict(self, x, batch_size):
        return self.model.predict(x, batch_size=batch_size, verbose=0)

    def batch1_call(self, x):
        if x is None:
            x = keras.tree.map_structure(
                lambda t: np.zeros((1,) + tuple(t.shape[1:]), dtype=t.dtype), self.model.inputs
            )
            if isinstance(x, list) and len(x) == 1:
                x = x[0]
        example = _first_example(x)
        return lambda: self.model.predict_on_batch(example)


def count_flops(model):
    """Multiply-accumulates (MACs) of one example through a Keras model's Conv/Dense layers: what channel pruning
    shrinks.

    Per layer, with O the output's spatial positions (1 for Dense on a vector; the product of the other non-batch
    axes otherwise), k the product of the kernel size, C_in/C_out the input/output channels, m the depth multiplier:

        Conv1D/2D/3D         O * k * C_in / groups * C_out
        Conv*Transpose       I * k * C_in * C_out            (I: input positions)
        DepthwiseConv1D/2D   O * k * C_in * m
        SeparableConv1D/2D   O * k * C_in * m  +  O * C_in * m * C_out
        Dense                O * C_in * C_out

    Biases, activations, normalization and pooling are not counted (they are not multiply-accumulates of a
    kernel); FLOPs are about 2x the MACs. Layers inside nested models and inside wrappers (pruning, quantization,
    clustering) are counted.

    Args:
        model: a built `keras.Model`.

    Returns:
        The count, an int.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `model` must be a keras.Model. Received: model={model!r} of type "
                        f"{type(model).__name__}")
    if not model.built:
        raise ValueError(f"Argument `model` must be built. Received: unbuilt model {model.name!r}")
    return sum(_layer_flops(layer) for layer in model.layers)


_L = keras.layers


def _layer_flops(layer):
    if isinstance(layer, keras.Model):
        return count_flops(layer)
    inner = layer.layer if isinstance(layer, _L.Wrapper) else layer
    kinds = (_L.Conv1D, _L.Conv2D, _L.Conv3D, _L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose, _L.Dense,
             _L.DepthwiseConv1D, _L.DepthwiseConv2D, _L.SeparableConv1D, _L.SeparableConv2D)
    if not isinstance(inner, kinds):
        return 0
    try:
        in_shape, out_shape = tuple(layer.input.shape), tuple(layer.output.shape)
    except (AttributeError, ValueError) as e:
        raise ValueError(f"Argument `model`: layer {layer.name!r} has no single input and output shape ({e}); "
                         "its multiply-accumulates cannot be counted.") from e
    first = getattr(inner, "data_format", "channels_last") == "channels_first"

    def split(shape):
        channels = shape[1] if first else shape[-1]
        positions = shape[2:] if first else shape[1:-1]
        if channels is None or any(p is None for p in positions):
            raise ValueError(f"Argument `model`: layer {layer.name!r} has unknown dimensions {shape}; its "
                             "multiply-accumulates cannot be counted.")
        return int(channels), int(np.prod(positions)) if positions else 1

    c_in, p_in = split(in_shape)
    c_out, p_out = split(out_shape)
    if isinstance(inner, _L.Dense):
        return p_out * c_in * c_out
    k = int(np.prod(inner.kernel_size))
    if isinstance(inner, (_L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose)):
        return p_in * k * c_in * c_out
    if isinstance(inner, (_L.DepthwiseConv1D, _L.DepthwiseConv2D)):
        return p_out * k * c_in * inner.depth_multiplier
    if isinstance(inner, (_L.SeparableConv1D, _L.SeparableConv2D)):
        m = inner.depth_multiplier
        return p_out * k * c_in * m + p_out * c_in * m * c_out
    return p_out * k * c_in // inner.groups * c_out
