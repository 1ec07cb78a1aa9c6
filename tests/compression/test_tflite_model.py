"""TFLite files read back (TensorFlow only): parameters, sizes, accuracy, int8 inputs and MACs, against the Keras
model they were converted from."""

import gzip
import os

import keras
import numpy as np
import tensorflow as tf

from tests.compression.test_report import dense_with_known_zeros
from tfopt.compression import count_flops, export_tflite, measure_model
from tfopt.compression.tflite_model import TFLiteModel
from tfopt.models.demo_cnn import build_demo_cnn


def test_measures_a_tflite_file_like_the_keras_model(tmp_path):
    model = dense_with_known_zeros()
    path = tmp_path / "model.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)).astype("float32")
    y = rng.integers(0, 4, size=50)
    keras_report = measure_model(model, x, y, measure_latency=False)
    report = measure_model(str(path), x, y, latency_repeats=5, batch_size=16)
    assert report.format == "tflite"
    assert (report.params, report.nonzero_params) == (36, 25)
    assert report.size_bytes == os.path.getsize(path)
    assert report.gzip_bytes == len(gzip.compress(path.read_bytes(), compresslevel=9))
    assert report.accuracy == keras_report.accuracy
    assert report.latency_ms > 0
    call = TFLiteModel(str(path)).batch1_call(x)
    assert call().shape == (1, 4)


def test_tflite_count_of_a_cnn_equals_the_keras_count(tmp_path):
    model = build_demo_cnn()  # Conv2D, pooling, Flatten (a Reshape with integer shape constants), Dense
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in model.get_weights()]
    weights[-1][:3] = 0.0
    model.set_weights(weights)
    path = tmp_path / "cnn.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    report = measure_model(str(path), measure_latency=False)
    assert (report.params, report.nonzero_params) == (51_946, 51_943)


def test_measures_an_int8_tflite_file(tmp_path):
    model = dense_with_known_zeros()
    x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(64))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path / "int8.tflite"
    path.write_bytes(converter.convert())
    y = model.predict(x, verbose=0).argmax(axis=1)
    report = measure_model(str(path), x, y, latency_repeats=3)
    assert report.params == 36  # int8 kernel and int32 bias
    assert report.nonzero_params == 25  # zeros stay zero under symmetric weight quantization
    assert report.accuracy >= 0.9  # int8 arithmetic agrees with float argmax on most inputs


def test_tflite_flops_equal_the_keras_count(tmp_path):
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(4, 3, padding="same"),
                              L.DepthwiseConv2D(3, depth_multiplier=2), L.Flatten(), L.Dense(5)])
    path = export_tflite(model, str(tmp_path / "m.tflite"))
    assert measure_model(path, measure_latency=False).flops == count_flops(model) == 4608 + 2592 + 1440
