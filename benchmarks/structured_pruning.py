"""Structured (channel) pruning: (a) what removing 30/50/70% of the channels buys on a ~1M-parameter CNN with
BatchNorm and a residual block: parameters, multiply-accumulates and CPU latency (batch 1 and 32) of the shrunk
Keras model and of its float TFLite file, as ratios to the unpruned model, beside tfopt's unstructured 75%
magnitude pruning (same size on disk after gzip, no speed-up); (b) digits test accuracy at 50% of the channels
after gradual pruning inside `fit` (`StructuredPruning` then `remove_dead_channels`), with and without group lasso,
against the unpruned model fine-tuned for the same epochs, over 3 seeds.

Latency ratios come from interleaved rounds in one process (`harness.compare`): Keras `predict_on_batch` for the
Keras rows, the TFLite interpreter (default threads) for the .tflite rows. The (a) models have random weights
(latency, size and FLOPs do not depend on training); channels are chosen by L1 norm. `--quick` runs fewer rounds,
epochs and one seed.
"""

import gzip
import os
import statistics
import sys
import tempfile
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from benchmarks import harness  # noqa: E402
from tfopt.callbacks import StructuredPruning  # noqa: E402
from tfopt.compression import (  # noqa: E402
    ConstantSparsity,
    add_regularizer,
    count_flops,
    export_tflite,
    prune_channels,
    prune_low_magnitude,
    remove_dead_channels,
    strip_pruning,
)
from tfopt.data import load_digits  # noqa: E402
from tfopt.regularizers import GroupLasso  # noqa: E402

L = keras.layers
AMOUNTS = (0.3, 0.5, 0.7)
BATCH = 32


def conv_bn(x, filters, strides=1, relu=True, name=None):
    x = L.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=name)(x)
    x = L.BatchNormalization()(x)
    return L.ReLU()(x) if relu else x


def residual_cnn(input_shape=(32, 32, 3), classes=10, width=64):
    """~1.26M parameters at width 64: a stem, a stride-2 conv, one residual block, two more convs, GAP, Dense."""
    i = keras.Input(input_shape)
    x = conv_bn(i, width)
    x = conv_bn(x, 2 * width, strides=2)
    y = conv_bn(x, 2 * width)
    y = conv_bn(y, 2 * width, relu=False)
    x = L.ReLU()(L.Add()([x, y]))
    x = conv_bn(x, 4 * width, strides=2)
    x = conv_bn(x, 4 * width)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(i, L.Dense(classes)(x))


def randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 1.5, n)])
    return model


def tflite_call(path, batch):
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter warns that it moves to ai_edge_litert
        interpreter = tf.lite.Interpreter(model_path=path)
    (inp,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(inp["index"], [batch, *inp["shape"][1:]])
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).normal(size=(batch, *inp["shape"][1:])).astype("float32")

    def call():
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()

    return call


def keras_call(model, batch):
    x = np.random.default_rng(0).normal(size=(batch, *model.inputs[0].shape[1:])).astype("float32")
    return lambda: model.predict_on_batch(x)


def gzip_bytes(path):
    with open(path, "rb") as f:
        return len(gzip.compress(f.read(), compresslevel=9))


def unstructured(model, sparsity):
    """tfopt's magnitude pruning to `sparsity` (masks computed at one training step with a zero learning rate)."""
    pruned = prune_low_magnitude(model, ConstantSparsity(sparsity, begin_step=0, frequency=1))
    pruned.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.zeros((2, *model.inputs[0].shape[1:]), "float32")
    pruned.fit(x, np.zeros(2, "int32"), batch_size=2, epochs=1, verbose=0)
    return strip_pruning(pruned)


def speed_rows(folder, repeats):
    keras.utils.set_random_seed(0)
    base = randomize(residual_cnn())
    base_path = export_tflite(base, os.path.join(folder, "base.tflite"))
    base_calls = {b: (keras_call(base, b), tflite_call(base_path, b)) for b in (1, BATCH)}
    variants = [(f"{a:.0%} channels removed", prune_channels(base, a)) for a in AMOUNTS]
    variants.append(("unstructured 75% (prune_low_magnitude)", unstructured(base, 0.75)))
    rows = []
    for name, model in variants:
        path = export_tflite(model, os.path.join(folder, f"{len(rows)}.tflite"))
        row = {
            "variant": name,
            "params": model.count_params(),
            "params_ratio": model.count_params() / base.count_params(),
            "flops_ratio": count_flops(model) / count_flops(base),
            "tflite_gzip_ratio": gzip_bytes(path) / gzip_bytes(base_path),
        }
        for batch in (1, BATCH):
            for which, index in (("keras", 0), ("tflite", 1)):
                call = (keras_call, tflite_call)[index](model if index == 0 else path, batch)
                result = harness.compare(f"{name} {which} b{batch}", call, base_calls[batch][index],
                                         candidate_name=name, reference_name="unpruned", repeats=repeats,
                                         warmup=3)
                row[f"{which}_b{batch}_ratio"] = result["ratio"]
                row[f"{which}_b{batch}_base_ms"] = result["reference_ms"]
        rows.append(row)
        print(row, flush=True)
    return rows, base


def digits_cnn(classes=10):
    i = keras.Input((8, 8, 1))
    x = conv_bn(i, 32)
    x = conv_bn(x, 64)
    y = conv_bn(x, 64)
    y = conv_bn(y, 64, relu=False)
    x = L.ReLU()(L.Add()([x, y]))
    x = L.MaxPooling2D(2)(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.25)(x)
    x = L.Dense(64, activation="relu")(x)
    return keras.Model(i, L.Dense(classes, activation="softmax", name="classifier")(x))


def accuracy_rows(epochs, fine_tune_epochs, seeds, group_lasso=1e-4):
    digits = load_digits()
    x_test, y_test = digits.test

    def fit(model, n, seed, callbacks=()):
        keras.utils.set_random_seed(seed)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(*digits.train, batch_size=BATCH, epochs=n, verbose=0, callbacks=list(callbacks))
        return model

    def copy(model):
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        return clone

    results = {"unpruned (same epochs)": [], "50% channels, pruning alone": [],
               "50% channels, group lasso + pruning": []}
    sizes = {}
    for seed in seeds:
        keras.utils.set_random_seed(seed)
        base = fit(digits_cnn(), epochs, seed)
        variants = {
            "unpruned (same epochs)": (copy(base), []),
            "50% channels, pruning alone": (copy(base), [StructuredPruning(0.5)]),
            "50% channels, group lasso + pruning": (
                add_regularizer(base, GroupLasso(group_lasso), exclude=["classifier"]), [StructuredPruning(0.5)]),
        }
        for name, (model, callbacks) in variants.items():
            model = fit(model, fine_tune_epochs, seed, callbacks)
            if callbacks:
                model = remove_dead_channels(model)
            predictions = model.predict(x_test, batch_size=256, verbose=0)
            results[name].append(float(np.mean(predictions.argmax(1) == y_test)))
            sizes[name] = (model.count_params(), count_flops(model))
        print({k: v[-1] for k, v in results.items()}, flush=True)
    reference = statistics.mean(results["unpruned (same epochs)"])
    rows = []
    for name, accuracies in results.items():
        rows.append({
            "variant": name,
            "accuracy": statistics.mean(accuracies),
            "accuracy_min": min(accuracies),
            "delta_points": 100 * (statistics.mean(accuracies) - reference),
            "params": sizes[name][0],
            "flops": sizes[name][1],
            "seeds": len(accuracies),
        })
    return rows


SPEED_COLUMNS = (
    ("variant", "Model (vs unpruned)"),
    ("params", "Params"),
    ("params_ratio", "Params ratio"),
    ("flops_ratio", "MACs ratio"),
    ("keras_b1_ratio", "Keras b1"),
    ("keras_b32_ratio", "Keras b32"),
    ("tflite_b1_ratio", "TFLite b1"),
    ("tflite_b32_ratio", "TFLite b32"),
    ("tflite_gzip_ratio", "TFLite gzip size"),
)
ACCURACY_COLUMNS = (
    ("variant", "Digits CNN (BN + residual)"),
    ("accuracy", "Test acc. (mean)"),
    ("accuracy_min", "Min"),
    ("delta_points", "Delta (points)"),
    ("params", "Params"),
    ("flops", "MACs"),
    ("seeds", "Seeds"),
)


def main(quick=False):
    repeats, epochs, fine_tune, seeds = (5, 2, 1, (0,)) if quick else (20, 15, 10, (0, 1, 2))
    with tempfile.TemporaryDirectory() as folder:
        speed, base = speed_rows(folder, repeats)
    text = harness.write_results(
        "structured_pruning",
        speed,
        title="Structured pruning: smaller dense models (ratios to the unpruned ~1M-parameter CNN)",
        notes=(f"The CNN: {base.count_params():,} parameters, {count_flops(base) / 1e6:.0f}M multiply-accumulates "
               "per 32x32x3 image, BatchNorm after every conv, one residual block; `prune_channels` by L1, coupled "
               "channels of the residual Add pruned together. Latency: ratios of medians over interleaved rounds "
               f"(unpruned: Keras b1 {speed[0]['keras_b1_base_ms']:.2f} ms, b32 {speed[0]['keras_b32_base_ms']:.1f} "
               f"ms; TFLite b1 {speed[0]['tflite_b1_base_ms']:.2f} ms, b32 {speed[0]['tflite_b32_base_ms']:.1f} "
               "ms). Targets at 50%: latency <= 0.6x, MACs <= 0.3x."),
        columns=SPEED_COLUMNS,
    )
    rows = accuracy_rows(epochs, fine_tune, seeds)
    text += "\n" + harness.write_results(
        "structured_pruning_accuracy",
        rows,
        title="Structured pruning: digits accuracy at 50% of the channels",
        notes=(f"Trained {epochs} epochs (Adam 1e-3, batch 32), then {fine_tune} more epochs for every row: "
               "unpruned; `StructuredPruning(0.5)` (gradual, first 70% of the steps) then `remove_dead_channels`; "
               "the same with `GroupLasso(1e-4)` on every hidden Conv/Dense kernel (`add_regularizer`). Delta: "
               "points of test accuracy against the unpruned row (target: within 1 point)."),
        columns=ACCURACY_COLUMNS,
    )
    return text


if __name__ == "__main__":
    print(main(quick="--quick" in sys.argv[1:]))
