"""TensorFlow only (LiteRT): reading a TFLite/LiteRT flatbuffer file back to measure it.

`tflite_interpreter` opens a file with the LiteRT interpreter (`ai_edge_litert`, the maintained one, when it is
installed, else TensorFlow's `tf.lite.Interpreter`); `TFLiteModel` counts its parameters and multiply-accumulates
and runs it for `measure_model` and `evaluate_tflite`. Both interpreters are imported on first use only.
"""

import warnings

import numpy as np

from tfopt import _checks

__all__ = ["TFLiteModel", "tflite_interpreter"]

# A TFLite flatbuffer holds this file identifier at bytes 4 to 8.
TFLITE_IDENTIFIER = b"TFL3"


def tflite_interpreter(**kwargs):
    """A LiteRT interpreter (`ai_edge_litert` when installed, else `tf.lite.Interpreter`) for `model_path=` or
    `model_content=`; imported on first use, so measuring Keras models never loads TensorFlow."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter warns that it moves to ai_edge_litert
        return Interpreter(**kwargs)


class TFLiteModel:
    """A `.tflite` file measured the way `measure_model` measures a Keras model: parameters the ops read,
    multiply-accumulates, predictions (inputs quantized and outputs dequantized when the file is int8) and a
    batch-1 call."""

    format = "tflite"

    def __init__(self, path, name="model"):
        self.path = _checks.readable_file(name, path, "TFLite flatbuffer", magic=TFLITE_IDENTIFIER, offset=4)
        with open(self.path, "rb") as f:
            self.content = f.read()

    def input_shapes(self):
        """The file's input shapes, the first (batch) axis None."""
        details = tflite_interpreter(model_content=self.content).get_input_details()
        return [(None, *(int(d) for d in detail["shape"][1:])) for detail in details]

    def classes(self):
        """The number of output units of a `(batch, classes)` output, else None."""
        (out, *_) = tflite_interpreter(model_content=self.content).get_output_details()
        return int(out["shape"][-1]) if len(out["shape"]) == 2 else None

    def _interpreter(self):
        interpreter = tflite_interpreter(model_content=self.content)
        interpreter.allocate_tensors()
        return interpreter

    def count_params(self):
        """Counts the weights the ops read, comparable with the Keras model's count.

        A weight is a constant (read by an op, written by none, not a model input) that is either floating point or
        quantized; plain integer constants are shapes and axes (Reshape, Flatten), not parameters. The converter
        stores identical constants once (all-zero biases of fresh layers share one buffer), so a constant counts
        once per op that reads it, as each Keras layer counts its own weights. Delegate nodes (XNNPACK) repeat
        the inputs of the ops they replace and are skipped.
        """
        interpreter = self._interpreter()
        try:
            ops = [op for op in interpreter._get_ops_details() if op["op_name"] != "DELEGATE"]
        except AttributeError as e:  # a private method of the interpreter: say so if it goes away
            raise RuntimeError(f"Counting TFLite parameters needs Interpreter._get_ops_details(): {e}") from e
        written = {int(i) for op in ops for i in op["outputs"]}
        inputs = {d["index"] for d in interpreter.get_input_details()}
        details = {d["index"]: d for d in interpreter.get_tensor_details()}
        params = nonzero = 0
        for op in ops:
            for index in {int(i) for i in op["inputs"] if i >= 0} - written - inputs:
                scales = details[index]["quantization_parameters"]["scales"]
                if np.issubdtype(details[index]["dtype"], np.integer) and not len(scales):
                    continue
                value = interpreter.get_tensor(index)
                params += value.size
                nonzero += int(np.count_nonzero(value))
        return params, nonzero

    def serialized_bytes(self):
        return self.content

    def count_flops(self):
        """Multiply-accumulates of the CONV_2D, CONV_3D, DEPTHWISE_CONV_2D and FULLY_CONNECTED ops, per example."""
        interpreter = self._interpreter()
        try:
            ops = interpreter._get_ops_details()
        except AttributeError:
            return None
        # A FULLY_CONNECTED op may see (batch * positions, features): count all its outputs, then per example.
        shapes = {d["index"]: [int(v) for v in d["shape"]] for d in interpreter.get_tensor_details()}
        total = 0
        for op in ops:
            name = op["op_name"]
            if name not in ("CONV_2D", "CONV_3D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                continue
            out = shapes[int(op["outputs"][0])]
            weights = shapes[int(op["inputs"][1])]
            per_output = {
                "CONV_2D": int(np.prod(weights[1:])),  # (out, kh, kw, in)
                "CONV_3D": int(np.prod(weights[:-1])),  # (kd, kh, kw, in, out)
                "DEPTHWISE_CONV_2D": int(np.prod(weights[1:3])),  # (1, kh, kw, channels)
                "FULLY_CONNECTED": weights[-1],  # (out, in)
            }[name]
            total += int(np.prod(out)) * per_output
        batch = max(int(interpreter.get_input_details()[0]["shape"][0]), 1)
        return total // batch

    @staticmethod
    def _quantize(x, detail):
        scale, zero_point = detail["quantization"]
        if np.issubdtype(detail["dtype"], np.integer) and scale:
            info = np.iinfo(detail["dtype"])
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        return np.asarray(x, dtype=detail["dtype"])

    @staticmethod
    def _dequantize(x, detail):
        scale, zero_point = detail["quantization"]
        if np.issubdtype(detail["dtype"], np.integer) and scale:
            return (x.astype("float32") - zero_point) * scale
        return x

    def predict(self, x, batch_size):
        interpreter = self._interpreter()
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        x = np.asarray(x)
        outputs, current = [], None
        for start in range(0, len(x), batch_size):
            chunk = x[start : start + batch_size]
            if current != len(chunk):
                interpreter.resize_tensor_input(inp["index"], [len(chunk), *x.shape[1:]])
                interpreter.allocate_tensors()
                current = len(chunk)
            interpreter.set_tensor(inp["index"], self._quantize(chunk, inp))
            interpreter.invoke()
            outputs.append(self._dequantize(interpreter.get_tensor(out["index"]), out))
        return np.concatenate(outputs)

    def batch1_call(self, x):
        interpreter = self._interpreter()
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        shape = [1, *inp["shape"][1:]]
        if list(inp["shape"]) != shape:
            interpreter.resize_tensor_input(inp["index"], shape)
            interpreter.allocate_tensors()
        example = np.zeros(shape, "float32") if x is None else np.asarray(x)[:1]
        example = self._quantize(example, inp)

        def call():
            interpreter.set_tensor(inp["index"], example)
            interpreter.invoke()
            return interpreter.get_tensor(out["index"])

        return call
