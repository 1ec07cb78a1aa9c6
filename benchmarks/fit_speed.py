"""Fit speed: `profile_fit` on the demo CNN and a ~1M-parameter CNN, the input-bound fraction of three input
pipelines, and the size of the digits as GZIP TFRecords.

Every speedup is a ratio from the profiler's interleaved rounds (median epoch time of Keras's defaults over the
candidate's, per example). Goals: `FitProfile.best` is never slower than the defaults on any model, is >= 1.5x on
the input-bound pipeline (b), and the profile of the demo model costs under 60 s on 2 cores.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.data_pipeline import cnn_1m  # noqa: E402
from benchmarks.harness import write_results  # noqa: E402
from tfopt.acceleration import diagnose_input, profile_fit  # noqa: E402
from tfopt.data import load_digits, make_dataset, write_tfrecords  # noqa: E402
from tfopt.demo import build_demo_cnn  # noqa: E402

BATCH = 32
PROFILE_COLUMNS = (
    ("model", "Model"),
    ("candidate", "Configuration"),
    ("step_ms", "Step (ms)"),
    ("step_iqr_ms", "IQR (ms)"),
    ("speedup", "Speedup vs defaults"),
    ("significant", "Beyond noise"),
    ("loss_ok", "Loss OK"),
    ("recommended", "Best"),
)
INPUT_COLUMNS = (
    ("input", "Input"),
    ("input_ms", "Input alone (ms/batch)"),
    ("step_ms", "Step alone (ms)"),
    ("end_to_end_ms", "End to end (ms)"),
    ("waiting_fraction", "Waiting on input"),
    ("best_speedup", "Profile best speedup"),
    ("verdict", "Verdict"),
)


def compiled(build, from_logits):
    def model_fn():
        model = build()
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits))
        return model

    return model_fn


def profile_rows(label, profile):
    rows = []
    for row in profile.rows:
        rows.append(
            {
                "model": label,
                "candidate": row["name"],
                "step_ms": row["step_ms"],
                "step_iqr_ms": row["step_iqr_ms"],
                "speedup": row["speedup"],
                "significant": row["significant"],
                "loss_ok": row["loss_ok"],
                "recommended": row["recommended"],
            }
        )
    return rows


def python_map_pipeline(x, y):
    """(b): an uncached `tf.data` pipeline whose decode runs in Python, one batch at a time."""
    import tensorflow as tf

    def decode(batch):
        # A Python-side decode: per-image normalisation in NumPy, the kind of map that holds the GIL.
        out = np.stack([(image - image.mean()) / (image.std() + 1e-6) for image in batch])
        return out.astype("float32")

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    ds = ds.map(lambda a, b: (tf.numpy_function(decode, [a], tf.float32), b))
    return ds.map(lambda a, b: (tf.ensure_shape(a, [None, *x.shape[1:]]), b))


def main():
    digits = load_digits()
    rng = np.random.default_rng(0)
    x_big = rng.random((1024, 32, 32, 3), dtype=np.float32)
    y_big = rng.integers(0, 10, 1024).astype("int32")
    demo_fn = compiled(build_demo_cnn, from_logits=False)

    start = time.perf_counter()
    demo = profile_fit(demo_fn, *digits.train, batch_size=BATCH)
    demo_cost = time.perf_counter() - start
    big = profile_fit(compiled(cnn_1m, from_logits=True), x_big, y_big, batch_size=BATCH, steps=16)
    rows = profile_rows("demo CNN, digits", demo) + profile_rows("1M CNN, 32x32x3", big)

    # Input-bound fraction of (a) NumPy arrays, (b) uncached tf.data with a Python map, (c) tfopt's pipeline.
    x, y = digits.train
    inputs = [
        ("(a) NumPy arrays", (x, y), {"batch_size": BATCH}),
        ("(b) tf.data, Python map, uncached", (python_map_pipeline(x, y),), {}),
        ("(c) tfopt make_dataset", (make_dataset(x, y, batch_size=BATCH, seed=0),), {}),
    ]
    input_rows, profiles = [], {}
    for label, data, kwargs in inputs:
        keras.utils.set_random_seed(0)
        diagnosis = diagnose_input(demo_fn(), *data, **kwargs)
        profile = profile_fit(demo_fn, *data, **kwargs, input_diagnosis=False)
        profiles[label] = profile
        input_rows.append(
            {
                "input": label,
                "input_ms": diagnosis.input_ms,
                "step_ms": diagnosis.step_ms,
                "end_to_end_ms": diagnosis.end_to_end_ms,
                "waiting_fraction": diagnosis.waiting_fraction,
                "best_speedup": profile.row(profile.best_name)["speedup"],
                "verdict": diagnosis.verdict,
            }
        )

    with tempfile.TemporaryDirectory() as folder:
        sizes = {}
        for compression in (None, "GZIP"):
            paths = write_tfrecords(*digits.train, os.path.join(folder, str(compression)), compression=compression)
            sizes[compression] = sum(os.path.getsize(p) for p in paths)
    raw = digits.x_train.nbytes + digits.y_train.nbytes
    tfrecord_rows = [
        {
            "data": "digits train split (float32 8x8x1 + int32)",
            "raw_bytes": raw,
            "tfrecord_bytes": sizes[None],
            "gzip_bytes": sizes["GZIP"],
            "gzip_vs_tfrecord": sizes["GZIP"] / sizes[None],
            "gzip_vs_raw": sizes["GZIP"] / raw,
        }
    ]

    notes = (
        f"Profile cost on the demo model: {demo_cost:.1f} s (goal < 60 s). Best on the demo CNN: {demo.best_name} "
        f"({demo.row(demo.best_name)['speedup']:.2f}x); on the 1M CNN: {big.best_name} "
        f"({big.row(big.best_name)['speedup']:.2f}x). Notes: " + " ".join(demo.notes[:1] + big.notes[:1])
    )
    text = write_results(
        "fit_speed",
        rows,
        title="Fit speed: every candidate's speedup against Keras's defaults (profile_fit, interleaved rounds)",
        notes=notes,
        columns=PROFILE_COLUMNS,
    )
    text += write_results(
        "fit_speed_input",
        input_rows,
        title="Input-bound fraction of three input pipelines (demo CNN, digits) and the profile's best speedup",
        notes="Waiting = 1 - step alone / end to end. Best speedup: FitProfile.best against the defaults on that "
        "input.",
        columns=INPUT_COLUMNS,
    )
    text += write_results(
        "fit_speed_tfrecord",
        tfrecord_rows,
        title="TFRecord size of the digits training split",
        columns=(
            ("data", "Data"),
            ("raw_bytes", "Raw arrays (B)"),
            ("tfrecord_bytes", "TFRecord (B)"),
            ("gzip_bytes", "TFRecord GZIP (B)"),
            ("gzip_vs_tfrecord", "GZIP / TFRecord"),
            ("gzip_vs_raw", "GZIP / raw"),
        ),
    )
    return text


if __name__ == "__main__":
    print(main())
