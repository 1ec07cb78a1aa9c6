"""Fit speed: `profile_fit` on the demo CNN and a ~1M-parameter CNN, the input-bound fraction of three input
pipelines, and the size of the digits as GZIP TFRecords.

Every speedup is a ratio from the profiler's interleaved rounds (median epoch time of Keras's defaults over the
candidate's, per example); "Timed rounds" is 2 for a row the profiler stopped timing as clearly slower, and 10 for
one it timed longer because it looked faster within the noise. Goals: `FitProfile.best` is never slower than the
defaults on any model, is >= 1.5x on the input-bound pipeline (b), and the profile of the demo model costs under
60 s on 2 cores.
"""

import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.data_pipeline import cnn_1m  # noqa: E402
from benchmarks.harness import write_results  # noqa: E402
from tfopt.acceleration import profile_fit  # noqa: E402
from tfopt.data import load_digits, make_dataset, write_tfrecords  # noqa: E402
from tfopt.models.demo_cnn import build_demo_cnn  # noqa: E402

BATCH = 32
PROFILE_COLUMNS = (
    ("model", "Model"),
    ("candidate", "Configuration"),
    ("step_ms", "Step (ms)"),
    ("step_iqr_ms", "IQR (ms)"),
    ("timed_rounds", "Timed rounds"),
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
    ("best", "Profile best"),
    ("best_speedup", "Best speedup"),
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
                "timed_rounds": len(row["epoch_seconds"]),
                "speedup": row["speedup"],
                "significant": row["significant"],
                "loss_ok": row["loss_ok"],
                "recommended": row["recommended"],
            }
        )
    return rows


def encode_png(image):
    """One 8x8 grey image in [0, 1] as PNG bytes: how image data sets are stored on disk."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(image[..., 0] * 255.0).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(png):
    """A user's Python-side preprocessing of one example: PNG decode, 3x3 median denoise, per-image standardisation.

    Deterministic (the same bytes give the same image), so caching its output is exact.
    """
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32) / 255.0
    height, width = image.shape
    padded = np.pad(image, 1, mode="edge")
    image = np.median(np.stack([padded[i : i + height, j : j + width] for i in range(3) for j in range(3)]), axis=0)
    image = (image - image.mean()) / (image.std() + 1e-6)
    return image[..., None].astype(np.float32)


def python_map_pipeline(x, y):
    """(b): an uncached `tf.data` pipeline that decodes PNG bytes in Python, one example at a time, then batches.

    What a user writes when their images are files: `from_tensor_slices(paths or bytes).map(numpy_function).batch()`,
    with neither cache() nor prefetch() nor a parallel map. The decode costs a few ms per batch of 32.
    """
    import tensorflow as tf

    pngs = np.array([encode_png(image) for image in x], dtype=object)
    shape = x.shape[1:]

    def decode(png, label):
        return tf.ensure_shape(tf.numpy_function(decode_png, [png], tf.float32), shape), label

    return tf.data.Dataset.from_tensor_slices((pngs, y)).map(decode).batch(BATCH)


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
        # (a) is the demo profile above: the same model, arrays, batch size and seed.
        profile = demo if label.startswith("(a)") else profile_fit(demo_fn, *data, **kwargs)
        profiles[label] = profile
        diagnosis, best = profile.input, profile.row(profile.best_name)
        input_rows.append(
            {
                "input": label,
                "input_ms": diagnosis["input_ms"],
                "step_ms": diagnosis["step_ms"],
                "end_to_end_ms": diagnosis["end_to_end_ms"],
                "waiting_fraction": diagnosis["waiting_fraction"],
                "best": profile.best_name,
                "best_speedup": best["speedup"],
                "verdict": diagnosis["verdict"],
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
        notes="Waiting = 1 - step alone / end to end, from the profile's own diagnosis (interleaved with its rows). "
        "Best speedup: FitProfile.best against the defaults on that input. (b) decodes PNG bytes per example in "
        "Python (tf.numpy_function: PIL decode, 3x3 median denoise, standardisation); its profile's notes: "
        + " ".join(profiles["(b) tf.data, Python map, uncached"].notes),
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
