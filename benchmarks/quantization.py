"""Quantization: int8 TFLite files from tfopt's QAT and post-training export, against float32 TFLite, the Keras
float model and tfmot's QAT of the equivalent tf_keras model, in one run.

For the digits CNN (trained here) and a ~1.2M-parameter conv CNN with 32x32x3 inputs (random weights, synthetic
images; size and speed only): file size, gzip size, accuracy, and batch-1 single-thread latency ratios measured in
interleaved rounds (`harness.compare`). tfmot's QAT runs in a subprocess (tf_keras and Keras 3 in one process
share TensorFlow's global state); its files are measured here with the same interpreter settings as ours. Also
pruned (80%, tfopt.compression) + int8 QAT: gzip size against the float baseline.

Targets (issue 6): int8 >= 3.5x smaller than float32 TFLite; int8 <= 0.7x the float32 TFLite latency on the 1M CNN;
QAT accuracy drop <= 0.5 point on digits; pruned + int8 gzip >= 8x smaller with <= 1 point drop.
`--quick` runs a smaller version (fewer epochs and rounds) to check that the script works.
"""

import gzip
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.harness import compare, write_results  # noqa: E402

BATCH_SIZE = 32

SIZE_COLUMNS = (
    ("model", "Model"),
    ("variant", "Variant"),
    ("accuracy", "Test acc."),
    ("size_kib", "Size (KiB)"),
    ("gzip_kib", "Gzip (KiB)"),
    ("size_ratio", "Float32 TFLite / this"),
    ("gzip_ratio", "Float .keras gzip / this gzip"),
)

_TFMOT_SCRIPT = r"""
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import tensorflow as tf
import tf_keras as keras
import tensorflow_model_optimization as tfmot
from sklearn.datasets import load_digits

out, epochs, qat_epochs, train_idx, test_idx = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
digits = load_digits()
x = (digits.images.astype("float32") / 16.0)[..., None]
y = digits.target.astype("int32")
train, test = np.load(train_idx), np.load(test_idx)
keras.utils.set_random_seed(0)
model = keras.Sequential([
    keras.Input((8, 8, 1)),
    keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
    keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
    keras.layers.MaxPooling2D(2),
    keras.layers.Flatten(),
    keras.layers.Dropout(0.25),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[train], y[train], batch_size=32, epochs=epochs, verbose=0)
float_accuracy = model.evaluate(x[test], y[test], verbose=0)[1]
qat = tfmot.quantization.keras.quantize_model(model)
qat.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", metrics=["accuracy"])
qat.fit(x[train], y[train], batch_size=32, epochs=qat_epochs, verbose=0)
qat_accuracy = qat.evaluate(x[test], y[test], verbose=0)[1]
converter = tf.lite.TFLiteConverter.from_keras_model(qat)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
open(os.path.join(out, "tfmot_int8.tflite"), "wb").write(converter.convert())
open(os.path.join(out, "tfmot_float.tflite"), "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
json.dump({"float_accuracy": float(float_accuracy), "qat_accuracy": float(qat_accuracy)},
          open(os.path.join(out, "tfmot.json"), "w"))
"""


def conv_cnn_1m(input_shape=(32, 32, 3), classes=10):
    """A conv-heavy CNN of 1.18M parameters for 32x32x3 images (where int8 kernels have work to speed up)."""
    import keras

    layers = [keras.Input(input_shape)]
    for i, filters in enumerate((32, 64, 128, 256)):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", activation="relu") for _ in range(2)]
        if i < 3:
            layers.append(keras.layers.MaxPooling2D(2))
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes, activation="softmax")]
    return keras.Sequential(layers, name="conv_cnn_1m")


def _single_thread_call(path, example):
    """A batch-1 call of a TFLite file on one thread (the interpreter tfopt's report uses)."""
    from tfopt.compression.tflite_model import TFLiteModel, tflite_interpreter

    interpreter = tflite_interpreter(model_path=path, num_threads=1)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    interpreter.resize_tensor_input(inp["index"], [1, *example.shape[1:]])
    interpreter.allocate_tensors()
    value = TFLiteModel._quantize(example, inp)

    def call():
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"])

    return call


def _keras_call(model, example):
    import tensorflow as tf

    serve = tf.function(lambda x: model(x, training=False), jit_compile=False)
    tensor = tf.constant(example)
    return lambda: serve(tensor).numpy()


def _file_row(model_name, variant, path, float_tflite_bytes, float_keras_gzip, x=None, y=None):
    from tfopt.compression import evaluate_tflite

    with open(path, "rb") as f:
        content = f.read()
    gz = len(gzip.compress(content, compresslevel=9))
    return {
        "model": model_name,
        "variant": variant,
        "accuracy": None if y is None else evaluate_tflite(path, x, y),
        "size_kib": len(content) / 1024,
        "gzip_kib": gz / 1024,
        "size_ratio": float_tflite_bytes / len(content),
        "gzip_ratio": float_keras_gzip / gz,
    }


def _tfmot(folder, digits, epochs, qat_epochs):
    import numpy as np

    np.save(os.path.join(folder, "train.npy"), np.concatenate([digits.indices["train"], digits.indices["validation"]]))
    np.save(os.path.join(folder, "test.npy"), digits.indices["test"])
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
    args = [folder, str(epochs), str(qat_epochs), os.path.join(folder, "train.npy"), os.path.join(folder, "test.npy")]
    result = subprocess.run([sys.executable, "-c", _TFMOT_SCRIPT, *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"tfmot subprocess failed:\n{result.stderr[-3000:]}")
    with open(os.path.join(folder, "tfmot.json")) as f:
        return json.load(f)


def main(quick=False):
    import keras
    import numpy as np

    from tfopt.compression import (
        PolynomialDecay,
        export_tflite,
        measure_model,
        prune_low_magnitude,
        quantize_model,
        strip_pruning,
    )
    from tfopt.data import load_digits
    from tfopt.models.demo_cnn import build_demo_cnn

    epochs, qat_epochs, repeats = (3, 1, 5) if quick else (20, 3, 200)
    digits = load_digits()
    # The tfmot run trains on train + validation, so ours does too; both test on the same test split.
    x_train = np.concatenate([digits.x_train, digits.x_val])
    y_train = np.concatenate([digits.y_train, digits.y_val])
    x_test, y_test = digits.test
    size_rows, latency_rows = [], []
    with tempfile.TemporaryDirectory() as folder:

        def path(name):
            return os.path.join(folder, f"{name}.tflite")

        def fit(model, learning_rate, n):
            keras.utils.set_random_seed(0)
            model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=n, verbose=0)
            return model

        # Digits CNN: float, tfopt QAT, tfopt post-training int8, tfmot QAT, pruned + int8.
        keras.utils.set_random_seed(0)
        base = fit(build_demo_cnn(), 1e-3, epochs)
        float_accuracy = base.evaluate(x_test, y_test, verbose=0)[1]
        qat = fit(quantize_model(base), 1e-4, qat_epochs)
        qat_accuracy = qat.evaluate(x_test, y_test, verbose=0)[1]
        export_tflite(base, path("float"))
        export_tflite(qat, path("qat"), "int8")
        export_tflite(base, path("ptq"), "int8", representative_data=x_train)
        steps = epochs * int(np.ceil(len(x_train) / BATCH_SIZE)) // 2
        frequency = max(1, steps // 20)
        schedule = PolynomialDecay(0.0, 0.8, begin_step=0, end_step=frequency * 12, frequency=frequency)
        pruned = strip_pruning(fit(prune_low_magnitude(base, schedule, pruning_scope="global"), 1e-3, epochs // 2))
        pruned_qat = fit(quantize_model(pruned), 1e-4, qat_epochs)
        export_tflite(pruned_qat, path("pruned_qat"), "int8")
        tfmot = _tfmot(folder, digits, epochs, qat_epochs)

        float_bytes = os.path.getsize(path("float"))
        float_gzip = measure_model(base, measure_latency=False).gzip_bytes
        size_rows.append(
            {
                "model": "digits CNN",
                "variant": "Keras float (.keras)",
                "accuracy": float_accuracy,
                "size_kib": None,
                "gzip_kib": float_gzip / 1024,
                "size_ratio": None,
                "gzip_ratio": 1.0,
            }
        )
        for variant, name in (
            ("float32 TFLite", "float"),
            ("tfopt QAT -> int8", "qat"),
            ("tfopt post-training int8", "ptq"),
            ("tfopt pruned 80% + QAT -> int8", "pruned_qat"),
        ):
            size_rows.append(_file_row("digits CNN", variant, path(name), float_bytes, float_gzip, x_test, y_test))
        tfmot_float_bytes = os.path.getsize(path("tfmot_float"))
        size_rows.append(
            _file_row(
                "digits CNN",
                "tfmot QAT -> int8 (tf_keras)",
                path("tfmot_int8"),
                tfmot_float_bytes,
                float_gzip,
                x_test,
                y_test,
            )
        )
        size_rows[1]["keras_accuracy"] = float_accuracy
        size_rows[2]["keras_accuracy"] = qat_accuracy
        size_rows[-1]["keras_accuracy"] = tfmot["qat_accuracy"]
        size_rows[-1]["tfmot_float_accuracy"] = tfmot["float_accuracy"]

        example = x_test[:1]
        for candidate, reference in (("qat", "float"), ("tfmot_int8", "tfmot_float")):
            latency_rows.append(
                compare(
                    "digits CNN, batch 1, 1 thread",
                    _single_thread_call(path(candidate), example),
                    _single_thread_call(path(reference), example),
                    candidate_name=candidate,
                    reference_name=reference,
                    repeats=repeats,
                    warmup=20,
                )
            )
        latency_rows.append(
            compare(
                "digits CNN, batch 1",
                _single_thread_call(path("qat"), example),
                _keras_call(base, example),
                candidate_name="qat int8 TFLite (1 thread)",
                reference_name="Keras float (tf.function)",
                repeats=repeats,
                warmup=20,
            )
        )

        # ~1.2M-parameter conv CNN, 32x32x3: synthetic images, QAT ranges from one short fit.
        rng = np.random.default_rng(0)
        x_big = rng.random((256 if quick else 1024, 32, 32, 3), dtype=np.float32)
        y_big = rng.integers(0, 10, len(x_big)).astype("int32")
        keras.utils.set_random_seed(0)
        big = conv_cnn_1m()
        big.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        big.fit(x_big, y_big, batch_size=BATCH_SIZE, epochs=1, verbose=0)
        big_qat = quantize_model(big)
        big_qat.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
        big_qat.fit(x_big, y_big, batch_size=BATCH_SIZE, epochs=1, verbose=0)
        export_tflite(big, path("big_float"))
        export_tflite(big_qat, path("big_qat"), "int8")
        big_bytes = os.path.getsize(path("big_float"))
        big_gzip = measure_model(big, measure_latency=False).gzip_bytes
        for variant, name in (("float32 TFLite", "big_float"), ("tfopt QAT -> int8", "big_qat")):
            size_rows.append(
                _file_row(f"conv CNN {big.count_params():,} params", variant, path(name), big_bytes, big_gzip)
            )
        example = x_big[:1]
        latency_rows.append(
            compare(
                "conv CNN 32x32x3, batch 1, 1 thread",
                _single_thread_call(path("big_qat"), example),
                _single_thread_call(path("big_float"), example),
                candidate_name="qat int8 TFLite",
                reference_name="float32 TFLite",
                repeats=repeats,
                warmup=10,
            )
        )
        latency_rows.append(
            compare(
                "conv CNN 32x32x3, batch 1",
                _single_thread_call(path("big_qat"), example),
                _keras_call(big, example),
                candidate_name="qat int8 TFLite (1 thread)",
                reference_name="Keras float (tf.function)",
                repeats=repeats,
                warmup=10,
            )
        )

    text = write_results(
        "quantization",
        latency_rows,
        title="Quantization: batch-1 latency of int8 TFLite files (ratio < 1: int8 faster)",
        notes="TFLite interpreters run on 1 thread (XNNPACK where it applies); the Keras reference is the float model "
        "called in a tf.function with the backend's default threads.",
    )
    text += "\n" + write_results(
        "quantization_size_accuracy",
        size_rows,
        title="Quantization: size and accuracy of the digits CNN and the 1.2M CNN files",
        notes=f"Digits: trained {epochs} epochs, QAT {qat_epochs} epochs at 1e-4 (tfopt and tfmot alike). Keras "
        f"accuracy of the QAT models: tfopt {qat_accuracy:.4f}, tfmot {tfmot['qat_accuracy']:.4f} (float "
        f"{float_accuracy:.4f}, tfmot's float {tfmot['float_accuracy']:.4f}). The 1.2M CNN is trained one epoch on "
        "random data (no accuracy): its rows are for size.",
        columns=SIZE_COLUMNS,
    )
    return text


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv[1:]))
