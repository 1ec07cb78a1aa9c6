"""The non-finite guard under `tf.distribute.MirroredStrategy` (two logical CPUs, in a subprocess; TensorFlow
only): the skip is decided once across replicas, counted once, and a raise names the variable."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tfopt.callbacks import NonFiniteGuard
    from tfopt.optimizers import RAdam
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x[:, :3].argmax(1).astype("int32")
    x[19, 1] = np.nan  # in the second of four batches
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    cases = {"skip_nonfinite": (lambda: RAdam(0.01, skip_nonfinite=True), []),
             "keras_adam_skip": (lambda: keras.optimizers.Adam(0.01), [NonFiniteGuard("skip")]),
             "raise": (lambda: RAdam(0.01), [NonFiniteGuard("raise")])}
    for name, (make, callbacks) in cases.items():
        with strategy.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu", name="first"),
                                      keras.layers.Dense(3)], name="net")
            model.compile(make(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        row = {}
        try:
            history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=callbacks)
            row["skipped_logs"] = history.history.get("skipped_steps")
            row["skipped"] = getattr(model.optimizer, "skipped_steps", None)
        except FloatingPointError as error:
            row["error"] = str(error)
        row["finite"] = bool(np.isfinite(model.layers[0].kernel.numpy()).all())
        row["iterations"] = int(model.optimizer.iterations.numpy())
        results[name] = row
    print("RESULTS" + json.dumps(results))
""")


@pytest.fixture(scope="module")
def results():
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULTS")]
    assert lines, out.stderr[-3000:]
    return json.loads(lines[-1][len("RESULTS"):])


def test_skip_nonfinite_skips_once_per_bad_step_across_replicas(results):
    assert results["skip_nonfinite"] == {"skipped_logs": None, "skipped": 2, "finite": True, "iterations": 6}


def test_the_callback_counts_each_bad_step_once(results):
    row = results["keras_adam_skip"]
    assert row["skipped_logs"] == [1, 2] and row["finite"] and row["iterations"] == 6


def test_raise_names_the_variable_and_step_and_keeps_the_weights(results):
    row = results["raise"]
    assert "gradient of `net/first/kernel`" in row["error"] and "at training step 1 " in row["error"]
    assert row["finite"] and row["iterations"] == 1
