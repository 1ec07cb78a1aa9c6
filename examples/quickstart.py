"""Quickstart: the LR range test picks a peak, one-cycle AdamW trains through tfopt's input pipeline, and the
model is measured.

    python examples/quickstart.py [--epochs N]
"""

import argparse

import keras

import tfopt


def main(epochs=10):
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
    train = tfopt.make_dataset(*data.train, batch_size=32)  # cache + per-epoch shuffle + prefetch

    # The LR range test; the model's weights and optimizer state are restored afterwards.
    model.compile(keras.optimizers.AdamW(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    peak = tfopt.find_learning_rate(model, train, min_learning_rate=1e-5, max_learning_rate=1.0).suggestion()
    print(f"LR range test suggests a peak learning rate of {peak:.2e}")

    schedule = tfopt.OneCycle(max_learning_rate=peak, total_steps=epochs * len(train))
    model.compile(keras.optimizers.AdamW(schedule), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        train,
        validation_data=tfopt.make_dataset(*data.validation, shuffle=False),
        epochs=epochs,
        shuffle=False,
        callbacks=[tfopt.LearningRateMonitor()],
        verbose=2,
    )
    print("learning rate per epoch:", ", ".join(f"{lr:.2e}" for lr in history.history["learning_rate"]))

    report = tfopt.measure_model(model, *data.test)
    print(
        f"test accuracy {report.accuracy:.3f}, {report.params:,} params "
        f"({report.sparsity:.0%} sparse), {report.size_bytes / 1024:.1f} KiB "
        f"({report.gzip_bytes / 1024:.1f} KiB gzipped), batch-1 latency {report.latency_ms:.2f} ms"
    )
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    main(parser.parse_args().epochs)
