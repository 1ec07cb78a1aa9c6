"""Fit-step overhead of non-finite training detection: `tfopt.callbacks.NonFiniteGuard` and `skip_nonfinite=True`.

Two copies of one model (same initial weights, same optimizer settings) train one epoch per call on the same
`tf.data` pipeline, timed interleaved (`benchmarks.harness.compare`): one with the guard, one without. The guard
sums every gradient and every weight entering the step into one probe inside the compiled step (the bookkeeping
runs only on a non-finite step) and the callback reads its one-integer state every `check_every` (10) batches and
at each epoch end. Goal: ratio <= 1.03.

Models: the demo CNN on the bundled digits (Adam, batch 32) and a 2x256 MLP on 40 features (RAdam, batch 64).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.harness import compare, write_results  # noqa: E402
from tfopt.callbacks import NonFiniteGuard  # noqa: E402
from tfopt.data import load_digits, make_dataset  # noqa: E402
from tfopt.models.demo_cnn import build_demo_cnn  # noqa: E402
from tfopt.optimizers import RAdam  # noqa: E402


def _pair(build, optimizer, loss):
    models = []
    for kwargs in ({}, {}):
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(optimizer(**kwargs), loss)
        models.append(model)
    return models


def _tasks():
    data = load_digits()
    digits = make_dataset(*data.train, batch_size=32, shuffle=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 40)).astype("float32")
    y = (x[:, :10].argmax(axis=1)).astype("int32")
    mlp_data = make_dataset(x, y, batch_size=64, shuffle=False)

    def mlp():
        return keras.Sequential([keras.Input((40,)), keras.layers.Dense(256, activation="relu"),
                                 keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])

    return [
        ("demo CNN, digits, Adam", lambda: build_demo_cnn(data.input_shape, data.num_classes),
         lambda **kw: keras.optimizers.Adam(1e-3, **kw), "sparse_categorical_crossentropy", digits),
        ("2x256 MLP, RAdam", mlp, lambda **kw: RAdam(1e-3, **kw),
         keras.losses.SparseCategoricalCrossentropy(from_logits=True), mlp_data),
    ]


def run(repeats=20):
    rows = []
    for name, build, optimizer, loss, data in _tasks():
        guarded, plain = _pair(build, optimizer, loss)
        rows.append(compare(
            f"fit epoch, {name}",
            lambda guarded=guarded, data=data: guarded.fit(data, epochs=1, verbose=0,
                                                           callbacks=[NonFiniteGuard("raise")]),
            lambda plain=plain, data=data: plain.fit(data, epochs=1, verbose=0),
            candidate_name="NonFiniteGuard('raise')",
            reference_name="no guard",
            repeats=repeats,
            warmup=2,
        ))
        if name.endswith("RAdam"):
            keras.utils.set_random_seed(0)
            skipping = build()
            skipping.compile(optimizer(skip_nonfinite=True), loss)
            rows.append(compare(
                f"fit epoch, {name}",
                lambda skipping=skipping, data=data: skipping.fit(data, epochs=1, verbose=0),
                lambda plain=plain, data=data: plain.fit(data, epochs=1, verbose=0),
                candidate_name="RAdam(skip_nonfinite=True)",
                reference_name="no guard",
                repeats=repeats,
                warmup=2,
            ))
    return rows


def main(repeats=20):
    return write_results(
        "nonfinite_guard", run(repeats), title="Non-finite training detection: fit-step overhead",
        notes="One epoch per call, guarded and unguarded copies interleaved; the ratio is the median of per-round "
              "ratios (goal <= 1.03); the callback reads the guard's state every 10 batches (`check_every`). On this "
              "2-core machine shared with other jobs the per-round ratios spread widely (see the IQR).",
    )


if __name__ == "__main__":
    print(main())
