"""TFLite export (TensorFlow only, like the module)."""

import sys
import types

import keras
import numpy as np
import pytest

from tfopt.compression import evaluate_tflite, export_tflite, inspect_tflite, measure_model, quantize_model
from tfopt.data import load_digits
from tfopt.layers import QuantizeWrapper
from tfopt.models.demo_cnn import build_demo_cnn

KERNEL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def compiled(model, learning_rate):
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def float_model(digits):
    keras.utils.set_random_seed(0)
    model = compiled(build_demo_cnn(), 1e-3)
    model.fit(*digits.train, batch_size=32, epochs=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def qat_model(digits, float_model):
    keras.utils.set_random_seed(0)
    model = compiled(quantize_model(float_model), 1e-4)
    model.fit(*digits.train, batch_size=32, epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def qat_file(qat_model, tmp_path_factory):
    return export_tflite(qat_model, tmp_path_factory.mktemp("qat") / "qat.tflite", "int8")


def kernel_ops(info):
    return [op for op in info["ops"] if op["op"] in KERNEL_OPS]


def test_qat_int8_file_has_integer_kernels_per_channel(qat_file):
    info = inspect_tflite(qat_file)
    ops = kernel_ops(info)
    assert [op["op"] for op in ops] == ["CONV_2D", "CONV_2D", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    for op, channels in zip(ops, (32, 64, 32, 10)):
        activations, weights, bias = op["inputs"]
        assert (activations["dtype"], weights["dtype"], bias["dtype"]) == ("int8", "int8", "int32")
        assert weights["scales"] == channels and weights["quantized_dimension"] == 0  # per output channel
        assert op["outputs"][0]["dtype"] == "int8"
    computing = [op for op in info["ops"] if op["op"] not in ("QUANTIZE", "DEQUANTIZE")]
    assert all(t is None or t["dtype"] != "float32" for op in computing for t in op["inputs"] + op["outputs"])
    assert info["inputs"][0]["dtype"] == "float32" and info["ops"][0]["op"] == "QUANTIZE"


def test_qat_int8_accuracy_is_within_half_a_point_of_the_keras_model(qat_model, qat_file, digits):
    keras_accuracy = qat_model.evaluate(*digits.test, verbose=0)[1]
    tflite_accuracy = evaluate_tflite(qat_file, *digits.test)
    assert keras_accuracy > 0.93
    assert abs(tflite_accuracy - keras_accuracy) <= 0.005


def test_int8_weights_are_exactly_the_qat_grid(qat_model, qat_file):
    from tfopt.compression.tflite_model import tflite_interpreter

    interpreter = tflite_interpreter(model_path=str(qat_file))
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = kernel_ops(inspect_tflite(qat_file))
    wrappers = [layer for layer in qat_model.layers if isinstance(layer, QuantizeWrapper)]
    for op, wrapper in zip(ops, wrappers):
        index = op["inputs"][1]["index"]
        q = interpreter.get_tensor(index).astype("float64")
        scales = details[index]["quantization_parameters"]["scales"]
        dequantized = q * scales.reshape((-1,) + (1,) * (q.ndim - 1))
        expected = keras.ops.convert_to_numpy(wrapper.quantized_weights()["kernel"])
        expected = np.moveaxis(expected, -1, 0)  # TFLite keeps output channels first
        np.testing.assert_allclose(dequantized.reshape(expected.shape), expected, rtol=1e-5, atol=1e-7)
        assert np.abs(q).max() == 127


def test_int8_file_is_at_least_3_5_times_smaller_than_float(float_model, qat_file, tmp_path):
    float_file = export_tflite(float_model, tmp_path / "float.tflite")
    float_report, int8_report = (
        measure_model(float_file, measure_latency=False),
        measure_model(qat_file, measure_latency=False),
    )
    assert int8_report.params == float_report.params == 51_946
    assert float_report.size_bytes / int8_report.size_bytes >= 3.5


def test_flatten_reshapes_to_a_constant_shape_without_shape_ops(qat_file):
    ops = [op["op"] for op in inspect_tflite(qat_file)["ops"]]
    assert ops == [
        "QUANTIZE",
        "CONV_2D",
        "CONV_2D",
        "MAX_POOL_2D",
        "RESHAPE",
        "FULLY_CONNECTED",
        "FULLY_CONNECTED",
        "SOFTMAX",
        "DEQUANTIZE",
    ]


def test_tensor_names_are_short_unique_and_name_kernels_and_biases(qat_file):
    info = inspect_tflite(qat_file)
    names = [t["name"] for op in info["ops"] for t in op["inputs"] + op["outputs"] if t is not None]
    assert all(";" not in name and len(name) < 40 for name in names)
    tensors = {t["index"]: t["name"] for op in info["ops"] for t in op["inputs"] + op["outputs"] if t is not None}
    assert len(set(tensors.values())) == len(tensors)
    for op in kernel_ops(info):
        _, weights, bias = op["inputs"]
        layer = weights["name"].rsplit("/", 1)[0]
        assert weights["name"].endswith("/kernel") and bias["name"] == f"{layer}/bias"


@pytest.mark.parametrize("batch", [1, 7])
def test_reshape_and_flatten_files_run_at_any_batch_size(tmp_path, batch):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Reshape((3, 4)),
            keras.layers.Conv1D(5, 2),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )
    path = export_tflite(model, tmp_path / "reshape.tflite")
    assert not {"SHAPE", "STRIDED_SLICE", "PACK"} & {op["op"] for op in inspect_tflite(path)["ops"]}
    x = np.random.default_rng(1).normal(size=(batch, 12)).astype("float32")
    from tfopt.compression.tflite_model import tflite_interpreter

    interpreter = tflite_interpreter(model_path=str(path))
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(out["index"]), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_integer_io_on_request(qat_model, digits, tmp_path):
    path = export_tflite(qat_model, tmp_path / "io.tflite", "int8", integer_io=True)
    info = inspect_tflite(path)
    assert info["inputs"][0]["dtype"] == "int8" and info["outputs"][0]["dtype"] == "int8"
    assert "QUANTIZE" not in [op["op"] for op in info["ops"]]
    assert abs(evaluate_tflite(path, *digits.test) - qat_model.evaluate(*digits.test, verbose=0)[1]) <= 0.005


def test_post_training_int8_from_representative_data(float_model, digits, tmp_path):
    path = export_tflite(float_model, tmp_path / "ptq.tflite", "int8", representative_data=digits.x_train)
    ops = kernel_ops(inspect_tflite(path))
    assert len(ops) == 4 and all(op["inputs"][1]["dtype"] == "int8" for op in ops)
    assert evaluate_tflite(path, *digits.test) >= float_model.evaluate(*digits.test, verbose=0)[1] - 0.02


def test_post_training_int8_from_a_dataset(float_model, digits, tmp_path):
    from tfopt.data import make_dataset

    data = make_dataset(*digits.train, batch_size=32)
    path = export_tflite(float_model, tmp_path / "ptq.tflite", "int8", representative_data=data)
    assert all(op["inputs"][1]["dtype"] == "int8" for op in kernel_ops(inspect_tflite(path)))


@pytest.mark.parametrize(
    "mode, weight_dtype, activation_dtype",
    [("none", "float32", "float32"), ("dynamic", "int8", "float32"), ("float16", "float16", "float32")],
)
def test_other_modes(float_model, digits, tmp_path, mode, weight_dtype, activation_dtype):
    path = export_tflite(float_model, tmp_path / f"{mode}.tflite", mode)
    info = inspect_tflite(path)
    if mode == "float16":  # float16 weights are dequantized by a DEQUANTIZE op in front of each kernel
        assert sum(op["op"] == "DEQUANTIZE" and op["inputs"][0]["dtype"] == "float16" for op in info["ops"]) >= 4
    else:  # the converter's dynamic range mode leaves weights under 1,024 entries in float
        large = [op for op in kernel_ops(info) if np.prod(op["inputs"][1]["shape"]) >= 1024]
        assert len(large) == 2 and all(op["inputs"][1]["dtype"] == weight_dtype for op in large)
    assert all(op["inputs"][0]["dtype"] == activation_dtype for op in kernel_ops(info))
    accuracy = float_model.evaluate(*digits.test, verbose=0)[1]
    assert abs(evaluate_tflite(path, *digits.test) - accuracy) <= 0.01


def test_qat_model_exports_as_its_float_model_in_other_modes(qat_model, digits, tmp_path):
    path = export_tflite(qat_model, tmp_path / "qat_float.tflite")
    assert all(op["inputs"][1]["dtype"] == "float32" for op in kernel_ops(inspect_tflite(path)))
    assert abs(evaluate_tflite(path, *digits.test) - qat_model.evaluate(*digits.test, verbose=0)[1]) <= 0.01


def test_prefers_the_litert_interpreter_when_installed(qat_file, digits, monkeypatch):
    import tensorflow as tf

    created = []

    class Interpreter(tf.lite.Interpreter):
        def __init__(self, **kwargs):
            created.append(kwargs)
            super().__init__(**kwargs)

    package = types.ModuleType("ai_edge_litert")
    module = types.ModuleType("ai_edge_litert.interpreter")
    module.Interpreter = Interpreter
    package.interpreter = module
    monkeypatch.setitem(sys.modules, "ai_edge_litert", package)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", module)
    assert evaluate_tflite(qat_file, *digits.test) > 0.9
    assert inspect_tflite(qat_file)["ops"]
    assert len(created) >= 2


def test_falls_back_to_tf_lite_without_litert(monkeypatch):
    import tensorflow as tf

    from tfopt.compression.tflite_model import tflite_interpreter

    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)  # import fails as if not installed
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    assert isinstance(tflite_interpreter(model_content=converter.convert()), tf.lite.Interpreter)


def test_int8_without_representative_data_or_qat_is_an_error(float_model, tmp_path):
    with pytest.raises(
        ValueError,
        match="Argument `representative_data` is required for quantization='int8' of a "
        "model without quantization-aware training",
    ):
        export_tflite(float_model, tmp_path / "x.tflite", "int8")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"quantization": "int4"},
            "Argument `quantization` must be one of 'none', 'dynamic', 'float16', 'int8'. "
            "Received: quantization='int4'",
        ),
        (
            {"integer_io": True},
            "Argument `integer_io` needs quantization='int8'. Received: integer_io=True, quantization='none'",
        ),
    ],
)
def test_rejects_bad_arguments(float_model, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_tflite(float_model, tmp_path / "x.tflite", **kwargs)
    with pytest.raises(ValueError, match="Argument `path` must end in `.tflite`. Received: path='m.h5'"):
        export_tflite(float_model, "m.h5")


def test_int8_of_a_model_with_float_layers_is_an_error(tmp_path):
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(4), keras.layers.LayerNormalization(), keras.layers.Dense(2)]
    )
    qat = quantize_model(model, skip_unsupported=True)
    with pytest.raises(ValueError, match="the int8 conversion left float ops"):
        export_tflite(qat, tmp_path / "x.tflite", "int8")
    assert export_tflite(qat, tmp_path / "dynamic.tflite", "dynamic").endswith("dynamic.tflite")


def test_inspect_rejects_a_missing_file():
    with pytest.raises(ValueError, match=r"Argument `path` must be an existing TFLite flatbuffer file. Received: "
                                         r"path='missing.tflite', which does not exist"):
        inspect_tflite("missing.tflite")
