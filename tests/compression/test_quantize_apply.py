"""quantize_annotate_layer / quantize_annotate_model and quantize_apply: only annotated layers are quantized, a
custom QuantizeConfig per layer trains, saves and loads, and the result converts to TFLite."""

import keras
import numpy as np
import pytest
from keras import ops

from tfopt.compression import quantize_annotate_layer, quantize_annotate_model, quantize_apply, quantize_model
from tfopt.layers import (
    Default8BitQuantizeConfig,
    LastValueQuantizer,
    MovingAverageQuantizer,
    QuantizeAnnotate,
    QuantizeConfig,
    QuantizeWrapper,
)


@keras.saving.register_keras_serializable(package="tests")
class FourBitDenseConfig(QuantizeConfig):
    """4-bit per-tensor kernel, 8-bit activation, as tfmot's guide's ModifiedDenseQuantizeConfig."""

    def get_weights_and_quantizers(self, layer):
        return [(layer.kernel, LastValueQuantizer(num_bits=4, symmetric=True, narrow_range=False, per_axis=False))]

    def get_activations_and_quantizers(self, layer):
        return [(layer.activation, MovingAverageQuantizer(num_bits=8, symmetric=False, narrow_range=False,
                                                          per_axis=False))]

    def set_quantize_activations(self, layer, quantize_activations):
        layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {}


def cnn():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(6, activation="relu", name="hidden"),
        keras.layers.Dense(3, name="head"),
    ])


def data():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(32, 8, 8, 1)).astype("float32"), rng.integers(0, 3, size=32)


def trained(model, epochs=2):
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(*data(), batch_size=8, epochs=epochs, verbose=0)
    return model


def only_dense(layer):
    return quantize_annotate_layer(layer) if isinstance(layer, keras.layers.Dense) else layer


@pytest.mark.backend_agnostic
def test_only_annotated_layers_are_quantized_and_the_first_quantizes_its_inputs():
    annotated = keras.models.clone_model(cnn(), clone_function=only_dense)
    assert [type(layer).__name__ for layer in annotated.layers] == ["Conv2D", "Flatten", "QuantizeAnnotate",
                                                                    "QuantizeAnnotate"]
    qat = quantize_apply(annotated)
    assert [type(layer).__name__ for layer in qat.layers] == ["Conv2D", "Flatten", "QuantizeWrapper",
                                                              "QuantizeWrapper"]
    assert [layer.quantize_inputs for layer in qat.layers[2:]] == [True, False]
    assert [layer.name for layer in qat.layers[2:]] == ["quant_hidden", "quant_head"]


@pytest.mark.backend_agnostic
def test_annotation_computes_as_the_layer_and_keeps_its_weights():
    model = cnn()
    x = data()[0]
    annotated = keras.models.clone_model(model, clone_function=only_dense)
    np.testing.assert_array_equal(annotated.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.backend_agnostic
def test_annotating_the_whole_model_gives_quantize_models_result():
    model = trained(cnn(), epochs=1)
    x = data()[0]
    applied = quantize_apply(quantize_annotate_model(model))
    direct = quantize_model(model)
    assert [layer.get_config() | {"name": None} for layer in applied.layers] == [
        layer.get_config() | {"name": None} for layer in direct.layers]
    np.testing.assert_allclose(applied.predict(x, verbose=0), direct.predict(x, verbose=0), atol=1e-6)


@pytest.mark.backend_agnostic
def test_custom_config_quantizes_the_kernel_to_its_bits_and_trains():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              quantize_annotate_layer(keras.layers.Dense(6, activation="relu", name="hidden"),
                                                      FourBitDenseConfig()),
                              keras.layers.Dense(3, name="head")])
    qat = trained(quantize_apply(model))
    wrapper = qat.get_layer("quant_hidden")
    kernel = ops.convert_to_numpy(wrapper.quantized_weights()["kernel"])
    assert len(np.unique(kernel)) <= 16  # 4 bits
    raw = ops.convert_to_numpy(wrapper.layer.kernel)
    np.testing.assert_array_less(np.abs(kernel - raw), np.abs(raw).max() / 7 + 1e-6)
    assert len(np.unique(raw)) > 16  # the float kernel trained straight through
    assert qat.get_layer("head").__class__ is keras.layers.Dense  # unannotated: float


@pytest.mark.backend_agnostic
def test_custom_config_saves_and_loads_with_identical_predictions(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              quantize_annotate_layer(keras.layers.Dense(6, activation="relu", name="hidden"),
                                                      FourBitDenseConfig()),
                              quantize_annotate_layer(keras.layers.Dense(3, name="head"),
                                                      Default8BitQuantizeConfig(["kernel"], [], True))])
    model.save(tmp_path / "annotated.keras")
    assert isinstance(keras.models.load_model(tmp_path / "annotated.keras").layers[1], QuantizeAnnotate)
    qat = trained(quantize_apply(model))
    x = data()[0]
    qat.save(tmp_path / "qat.keras")
    loaded = keras.models.load_model(tmp_path / "qat.keras")
    assert isinstance(loaded.get_layer("quant_hidden").quantize_config, FourBitDenseConfig)
    assert loaded.get_layer("quant_head").quantize_config.get_config() == {
        "weight_attrs": ["kernel"], "activation_attrs": [], "quantize_output": True}
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), qat.predict(x, verbose=0))
    for a, b in zip(loaded.weights, qat.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))


@pytest.mark.backend_agnostic
def test_a_custom_layer_is_quantized_through_its_config():
    @keras.saving.register_keras_serializable(package="tests")
    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.scale

    config = Default8BitQuantizeConfig(["scale"], [], True)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, quantize_annotate_layer(Scale(name="scale"), config)(inputs))
    qat = quantize_apply(model)
    qat.compile(keras.optimizers.SGD(0.1), "mse")
    qat.fit(np.ones((8, 4)), np.full((8, 4), 0.3), verbose=0, epochs=3)
    out = ops.convert_to_numpy(qat.predict(np.ones((1, 4)), verbose=0))
    low, high = (float(ops.convert_to_numpy(v)) for v in (qat.layers[1]._config_outputs[0][1]["min_var"],
                                                           qat.layers[1]._config_outputs[0][1]["max_var"]))
    step = (high - min(low, 0.0)) / 255
    np.testing.assert_allclose(out / step, np.round(out / step), atol=1e-3)  # on the output quantizer's grid


@pytest.mark.backend_agnostic
def test_unsupported_annotated_layer_without_config_is_an_error():
    model = keras.Sequential([keras.Input((4,)), quantize_annotate_layer(keras.layers.LayerNormalization(name="ln")),
                              keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"annotated layers QAT does not support without a QuantizeConfig: 'ln' "
                                         r"\(LayerNormalization\)"):
        quantize_apply(model)


@pytest.mark.backend_agnostic
def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Argument `model` has no annotated layer"):
        quantize_apply(cnn())
    with pytest.raises(TypeError, match="Argument `layer` must be a keras.layers.Layer. Received: layer='dense'"):
        quantize_annotate_layer("dense")
    with pytest.raises(TypeError, match="Argument `quantize_config` must be a tfopt.layers.QuantizeConfig or None"):
        quantize_annotate_layer(keras.layers.Dense(2), quantize_config={"bits": 4})
    with pytest.raises(ValueError, match="Argument `layer` must not be annotated twice"):
        quantize_annotate_layer(quantize_annotate_layer(keras.layers.Dense(2)))
    with pytest.raises(ValueError, match="Argument `preserve_clusters` must be 0 with a `quantize_config`"):
        QuantizeWrapper(keras.layers.Dense(2), quantize_config=FourBitDenseConfig(), preserve_clusters=4)
    with pytest.raises(TypeError, match="Argument `to_annotate` must be a keras.Model"):
        quantize_annotate_model(keras.layers.Dense(2))


def test_quantize_apply_result_converts_to_int8_kernels_with_tflite_converter():
    import tensorflow as tf

    from tfopt.compression.tflite_model import tflite_interpreter

    qat = trained(quantize_apply(keras.models.clone_model(cnn(), clone_function=only_dense)))
    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    interpreter = tflite_interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    dtypes = {d["index"]: np.dtype(d["dtype"]).name for d in interpreter.get_tensor_details()}
    kinds = [(op["op_name"], dtypes[op["inputs"][0]]) for op in interpreter._get_ops_details()
             if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")]
    assert kinds == [("CONV_2D", "float32"), ("FULLY_CONNECTED", "int8"), ("FULLY_CONNECTED", "int8")]


def test_a_custom_config_model_exports_as_full_integer_int8(tmp_path):
    from tfopt.compression import export_tflite, inspect_tflite

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              quantize_annotate_layer(keras.layers.Dense(6, activation="relu", name="hidden"),
                                                      Default8BitQuantizeConfig(["kernel"], ["activation"], False)),
                              keras.layers.Dense(3, name="head")])
    qat = trained(quantize_apply(quantize_annotate_model(model)))
    path = export_tflite(qat, tmp_path / "custom.tflite", "int8")
    ops = [(op["op"], [t["dtype"] for t in op["inputs"] if t]) for op in inspect_tflite(path)["ops"]]
    assert ops == [("QUANTIZE", ["float32"]), ("RESHAPE", ["int8", "int32"]),
                   ("FULLY_CONNECTED", ["int8", "int8", "int32"]), ("FULLY_CONNECTED", ["int8", "int8", "int32"]),
                   ("DEQUANTIZE", ["int8"])]
