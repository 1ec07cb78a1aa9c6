"""TensorFlow only: TFLite/LiteRT export of Keras models (float32, dynamic range, float16, full-integer int8),
and reading the files back (`inspect_tflite`, `evaluate_tflite`).

The conversion traces the model with `tf.function` and runs TensorFlow's TFLite converter on the concrete function.
It does not go through `model.export(format="litert")`: that path writes a SavedModel and enables TensorFlow ops
(Flex) in the file, which would let float ops slip silently into an "int8" file; here an op the int8 kernels
cannot run is a conversion error. Files are read with the LiteRT interpreter (`ai_edge_litert`, the maintained
one) when it is installed, else with `tf.lite.Interpreter`.
"""

import os
import warnings

import keras
import numpy as np

from tfopt import _checks
from tfopt.compression import _model_graph
from tfopt.compression.report import measure_model
from tfopt.compression.tflite_model import TFLITE_IDENTIFIER, tflite_interpreter
from tfopt.layers.quantize_wrapper import QuantizeWrapper

__all__ = ["QUANTIZATIONS", "evaluate_tflite", "export_tflite", "inspect_tflite"]

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
# Representative examples fed to the converter's calibration (post-training int8), one per call.
_CALIBRATION_EXAMPLES = 256


def _is_qat(model):
    return any(isinstance(layer, QuantizeWrapper) for layer in model.layers)


def export_tflite(model, path, quantization="none", representative_data=None, *, integer_io=False):
    """Writes `model` as a TFLite/LiteRT flat buffer.

    Quantization modes:

    - "none": float32 weights and arithmetic.
    - "dynamic": int8 weights, float activations (kernels quantize activations on the fly); no data needed.
    - "float16": float16 weights, dequantized to float32 on load (half the size, float accuracy).
    - "int8": full-integer: int8 weights (per output channel), int8 activations, int32 biases, so every kernel
      runs integer arithmetic. From a QAT model (`quantize_model` + `fit`), with the activation ranges it learned
      (no data needed); from a float model, post-training, calibrated on `representative_data`.

    A QAT model exported with another mode is exported as the float model it trained (weights on their int8 grid,
    no activation rounding).

    Args:
        model: a built `keras.Model` (the TensorFlow backend is required), plain or prepared by `quantize_model`.
        path: output file, ending in `.tflite`.
        quantization: one of "none", "dynamic", "float16", "int8". Default "none".
        representative_data: for post-training "int8" only: an array of model inputs (first axis: examples;
            the first 256 are used) or a `tf.data.Dataset` of input batches (or `(x, y)` batches). Ignored for a
            QAT model, whose ranges come from training.
        integer_io: with "int8", the file takes int8 inputs and gives int8 outputs (scale and zero point in the
            tensors' quantization parameters) instead of float32 ones. Default False.

    Returns:
        `path`.
    """
    _checks.choice("quantization", quantization, QUANTIZATIONS)
    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `model` must be a keras.Model. Received: model={type(model).__name__}")
    # The path before the conversion (which takes a while), so that an unwritable folder fails at once.
    path = _checks.writable_path("path", path, suffix=".tflite")
    _checks.boolean("integer_io", integer_io)
    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "export_tflite needs the TensorFlow backend (KERAS_BACKEND=tensorflow); the TFLite converter reads "
            f"TensorFlow graphs. Received: backend {keras.backend.backend()!r}"
        )
    qat = _is_qat(model)
    if quantization == "int8" and not qat and representative_data is None:
        raise ValueError(
            "Argument `representative_data` is required for quantization='int8' of a model without "
            "quantization-aware training: post-training int8 calibrates activation ranges on it. Pass input "
            "examples, or prepare the model with quantize_model and fine-tune it. Received: representative_data=None"
        )
    if representative_data is not None and (quantization != "int8" or qat):
        raise ValueError(
            "Argument `representative_data` is only used by post-training quantization='int8' (calibration); it "
            f"would be ignored here. Received: representative_data with quantization={quantization!r}"
            + (" of a quantization-aware model, which has its ranges already" if qat else "")
        )
    if representative_data is not None and not _is_dataset(representative_data):
        _checks.input_arrays("representative_data", representative_data, [tuple(t.shape) for t in model.inputs])
        _checks.finite_values("representative_data", representative_data)
    if integer_io and quantization != "int8":
        raise ValueError(
            f"Argument `integer_io` needs quantization='int8'. Received: integer_io=True, quantization={quantization!r}"
        )
    import tensorflow as tf

    graph_model = _export_graph(model, fake_quant=quantization == "int8")
    specs = [tf.TensorSpec(t.shape, t.dtype) for t in model.inputs]

    @tf.function
    def serve(*inputs):
        return graph_model(inputs[0] if len(inputs) == 1 else list(inputs), training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function(*specs)])
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        if not qat:
            # Without QAT ranges, calibrate; integer-only ops make an op without an int8 kernel an error.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.representative_dataset = _representative_dataset(representative_data, len(specs))
        if integer_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # A QAT graph quantizes its input with the first FakeQuant; the converter still asks for input statistics.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        content = converter.convert()
    if quantization == "int8" and qat:
        # The converter's QAT mode accepts no integer-only flag (it asks for calibration data), so check its result.
        float_ops = _float_ops(content)
        if float_ops:
            raise ValueError(
                f"Argument `model`: the int8 conversion left float ops ({', '.join(float_ops)}): the model has layers "
                "quantize_model left in float (skip_unsupported=True). Export it with quantization='dynamic', or "
                "make those layers quantizable."
            )
    with open(path, "wb") as f:
        f.write(_short_tensor_names(content))
    return path


# Largest file whose names are shortened: beyond 2 GiB the converter stores buffers outside the flat buffer.
_RENAME_LIMIT = 1 << 30


def _short_tensor_names(content):
    """The converted file with shorter tensor names: the converter names a fused tensor after every op it absorbed
    (`"model/conv2d/Relu;model/conv2d/BiasAdd;model/conv2d/convolution;..."`), about a kilobyte in a small model.
    A kernel's weights and bias become `"<layer>/kernel"` and `"<layer>/bias"`, other tensors keep their first
    op's name without the model's scope (`"conv2d/Relu"`); names stay unique. Nothing else in the file changes."""
    if len(content) >= _RENAME_LIMIT:
        return content
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    kernel_ops = {
        schema.BuiltinOperator.CONV_2D,
        schema.BuiltinOperator.CONV_3D,
        schema.BuiltinOperator.DEPTHWISE_CONV_2D,
        schema.BuiltinOperator.FULLY_CONNECTED,
    }
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    for subgraph in model.subgraphs:
        names = [_first_op_name(tensor.name) for tensor in subgraph.tensors]
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) not in kernel_ops or len(op.inputs) < 2:
                continue
            layer = names[op.outputs[0]].rsplit("/", 1)[0]
            for index, role in zip(op.inputs[1:3], ("kernel", "bias")):
                if index >= 0:
                    names[index] = f"{layer}/{role}"
        seen = {}
        for tensor, name in zip(subgraph.tensors, names):
            count = seen.get(name, 0)
            seen[name] = count + 1
            tensor.name = (name if count == 0 else f"{name}_{count}").encode()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _first_op_name(name):
    first = (name or b"").decode().split(";", 1)[0]
    return first.split("/", 1)[1] if "/" in first else first


def _float_ops(content):
    """Names of the ops of a converted model that compute in float (QUANTIZE/DEQUANTIZE at the edges aside)."""
    interpreter = tflite_interpreter(model_content=content)
    interpreter.allocate_tensors()
    dtypes = {d["index"]: np.dtype(d["dtype"]) for d in interpreter.get_tensor_details()}
    names = []
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("DELEGATE", "QUANTIZE", "DEQUANTIZE"):
            continue
        if any(dtypes[int(i)] == np.float32 for i in (*op["inputs"], *op["outputs"]) if i >= 0):
            names.append(op["op_name"])
    return names


def _is_dataset(data):
    return type(data).__name__.endswith("Dataset") and hasattr(data, "unbatch")


def _representative_dataset(data, num_inputs):
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        batches = data.unbatch().take(_CALIBRATION_EXAMPLES)

        def generate():
            for element in batches:
                x = element[0] if isinstance(element, tuple) and num_inputs == 1 and len(element) == 2 else element
                xs = list(x) if isinstance(x, (tuple, list)) else [x]
                yield [tf.expand_dims(tf.cast(v, tf.float32), 0) for v in xs]

        return generate
    arrays = [np.asarray(a, "float32") for a in (data if isinstance(data, (list, tuple)) else [data])]
    if len(arrays) != num_inputs or any(a.ndim == 0 or len(a) == 0 for a in arrays):
        raise ValueError(
            f"Argument `representative_data` must hold examples for the model's {num_inputs} input(s), first axis "
            f"examples. Received: {len(arrays)} array(s) of shapes {[a.shape for a in arrays]}"
        )

    def generate():
        for i in range(min(_CALIBRATION_EXAMPLES, len(arrays[0]))):
            yield [a[i : i + 1] for a in arrays]

    return generate


def _export_graph(model, fake_quant):
    """The model rebuilt for the converter (a subclassed model is converted as it is).

    Each QuantizeWrapper computes with constant weights on their int8 grid, and (with `fake_quant`) its
    activation quantizers are TensorFlow FakeQuant ops with the learned ranges, which the converter turns into
    int8 tensors. The converter quantizes the constant weights itself (symmetric, per output channel), reproducing
    the grid exactly; a FakeQuant on a Dense kernel is left out on purpose: its channel axis (1) does not survive
    the converter's transpose ("'tfl.transpose' op has mismatched quantized axes").

    Flatten and Reshape reshape to a constant shape with a -1 batch: Keras builds the target shape from the
    runtime batch size, which costs the file SHAPE, STRIDED_SLICE and PACK ops and their tensors for nothing."""
    replaced = (QuantizeWrapper, keras.layers.Flatten, keras.layers.Reshape)
    if not _model_graph.is_graph_model(model) or not any(isinstance(layer, replaced) for layer in model.layers):
        return model

    def clone(layer):
        if isinstance(layer, QuantizeWrapper) and layer.quantize_config is None:
            return _ExportLayer(layer, fake_quant)
        if isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape)):
            return _StaticReshape(layer)
        return layer

    return keras.models.clone_model(model, clone_function=clone)


class _StaticReshape(keras.layers.Layer):
    """A Flatten or Reshape whose target shape is a constant `[-1, *known dims]`, for the converter only."""

    def __init__(self, layer):
        super().__init__(name=layer.name)
        self.layer = layer

    def call(self, inputs):
        import tensorflow as tf

        target = self.layer.compute_output_shape(tuple(inputs.shape))[1:]
        if None in target or getattr(self.layer, "data_format", None) == "channels_first":
            return self.layer(inputs)
        return tf.reshape(inputs, [-1, *target])

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


class _ExportLayer(keras.layers.Layer):
    """A QuantizeWrapper's inference pass in TensorFlow ops, for the converter only (never saved)."""

    def __init__(self, wrapper, fake_quant):
        super().__init__(name=wrapper.layer.name)  # short names: tensor names are stored in the file
        self.wrapper = wrapper
        self.fake_quant = fake_quant
        self.weight_values = {k: keras.ops.convert_to_numpy(v) for k, v in wrapper.quantized_weights().items()}
        self.ranges = {}
        for point in wrapper.range_points:
            low, high = (float(keras.ops.convert_to_numpy(v)) for v in wrapper.activation_range(point))
            self.ranges[point] = (min(low, 0.0), max(high, 0.0))

    def call(self, inputs):
        import tensorflow as tf

        def quantize(x, point):
            if not self.fake_quant:
                return x
            low, high = self.ranges[point]
            return tf.quantization.fake_quant_with_min_max_vars(x, low, high, num_bits=8, narrow_range=False)

        weights = {k: tf.constant(v) for k, v in self.weight_values.items()}
        return self.wrapper.quantized_call(inputs, weights, quantize)

    def compute_output_shape(self, input_shape):
        return self.wrapper.compute_output_shape(input_shape)


def _tensor_info(detail):
    parameters = detail["quantization_parameters"]
    return {
        "index": int(detail["index"]),
        "name": detail["name"],
        "dtype": np.dtype(detail["dtype"]).name,
        "shape": tuple(int(d) for d in detail["shape"]),
        "scales": len(parameters["scales"]),
        "quantized_dimension": int(parameters["quantized_dimension"]),
    }


def inspect_tflite(path):
    """Lists the ops and tensors of a TFLite file, to check what a converter produced.

    Returns:
        A dict with "inputs" and "outputs" (tensor infos of the model's inputs and outputs) and "ops": one dict per
        op in execution order, `{"op": "CONV_2D", "inputs": [...], "outputs": [...]}` (delegate nodes left out).
        A tensor info is `{"index", "name", "dtype" ("int8", "float32", ...), "shape", "scales" (number of
        quantization scales: 0 unquantized, 1 per tensor, more per channel), "quantized_dimension"}`. An op's
        input at a missing optional operand (e.g. no bias) is None.

        For example, in a full-integer file every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op has int8
        inputs 0 (activations) and 1 (weights) and an int32 input 2 (bias).
    """
    path = _checks.readable_file("path", path, "TFLite flatbuffer", magic=TFLITE_IDENTIFIER, offset=4)
    with open(path, "rb") as f:
        interpreter = tflite_interpreter(model_content=f.read())
    interpreter.allocate_tensors()
    tensors = {d["index"]: _tensor_info(d) for d in interpreter.get_tensor_details()}
    ops = []
    for op in interpreter._get_ops_details():
        if op["op_name"] == "DELEGATE":
            continue
        ops.append(
            {
                "op": op["op_name"],
                "inputs": [tensors[int(i)] if i >= 0 else None for i in op["inputs"]],
                "outputs": [tensors[int(i)] for i in op["outputs"]],
            }
        )
    return {
        "inputs": [tensors[d["index"]] for d in interpreter.get_input_details()],
        "outputs": [tensors[d["index"]] for d in interpreter.get_output_details()],
        "ops": ops,
    }


def evaluate_tflite(path, x, y, *, batch_size=256):
    """Runs a TFLite file on `x` with the LiteRT interpreter and returns its accuracy against the labels `y`.

    Inputs are quantized and outputs dequantized with the file's own parameters when it has integer I/O.
    Outputs of shape `(n, classes)` are scored by argmax, single outputs as probabilities at 0.5.

    Args:
        path: the `.tflite` file.
        x: inputs, first axis examples.
        y: labels, class indices `(n,)` or one-hot `(n, classes)`.
        batch_size: examples per interpreter call. Default 256.

    Returns:
        The accuracy, a float in [0, 1].
    """
    return measure_model(os.fspath(path), x, y, batch_size=batch_size, measure_latency=False).accuracy
