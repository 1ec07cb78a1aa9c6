"""Epoch time of `fit` fed by tfopt's `tf.data` pipeline, as a ratio to the same fit fed NumPy arrays.

Two models: the demo CNN on the digits training split, and a ~1M-parameter CNN on synthetic 32x32x3 images.
Both sides train identical models, compiled the same way, one epoch per timed call, interleaved.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.harness import compare, write_results  # noqa: E402
from tfopt.data import load_digits, make_dataset  # noqa: E402
from tfopt.models.demo_cnn import build_demo_cnn  # noqa: E402

BATCH = 32


def cnn_1m(input_shape=(32, 32, 3), classes=10):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(240, activation="relu"),
            keras.layers.Dense(classes),
        ]
    )


def one_epoch_each(name, build, x, y, repeats, from_logits):
    models = []
    for _ in range(2):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))
        models.append(model)
    dataset = make_dataset(x, y, batch_size=BATCH)
    row = compare(
        name,
        lambda: models[0].fit(dataset, epochs=1, shuffle=False, verbose=0),
        lambda: models[1].fit(x, y, batch_size=BATCH, epochs=1, verbose=0),
        candidate_name="tfopt make_dataset",
        reference_name="NumPy arrays",
        repeats=repeats,
        warmup=2,
    )
    row["params"] = models[0].count_params()
    return row


def main(repeats=10):
    digits = load_digits()
    rng = np.random.default_rng(0)
    x_big = rng.random((2048, 32, 32, 3), dtype=np.float32)
    y_big = rng.integers(0, 10, 2048).astype("int32")
    rows = [
        one_epoch_each("fit epoch, demo CNN, digits", build_demo_cnn, *digits.train, repeats, from_logits=False),
        one_epoch_each(
            "fit epoch, 1M CNN, 32x32x3 synthetic", cnn_1m, x_big, y_big, repeats, from_logits=True
        ),
    ]
    return write_results(
        "data_pipeline",
        rows,
        title="Input pipeline: fit epoch time, tfopt tf.data pipeline vs NumPy arrays",
        notes="Ratio < 1: the pipeline's epoch is faster.",
    )


if __name__ == "__main__":
    print(main())
