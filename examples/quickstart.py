"""Quickstart: train on the bundled digits data through tfopt's input pipeline, then measure the model.

    python examples/quickstart.py [--epochs N]
"""

import argparse

import keras

import tfopt


def main(epochs=5):
    keras.utils.set_random_seed(0)
    data = tfopt.load_digits()  # stratified train/validation/test split, images (8, 8, 1) in [0, 1]

    model = keras.Sequential(
        [
            keras.Input(data.input_shape),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(data.num_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        tfopt.make_dataset(*data.train, batch_size=32),  # cache + per-epoch shuffle + prefetch
        validation_data=tfopt.make_dataset(*data.validation, shuffle=False),
        epochs=epochs,
        shuffle=False,
        verbose=2,
    )

    report = tfopt.measure_model(model, *data.test)
    print(
        f"test accuracy {report.accuracy:.3f}, {report.params:,} params "
        f"({report.sparsity:.0%} sparse), {report.size_bytes / 1024:.1f} KiB "
        f"({report.gzip_bytes / 1024:.1f} KiB gzipped), batch-1 latency {report.latency_ms:.2f} ms"
    )
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5)
    main(parser.parse_args().epochs)
