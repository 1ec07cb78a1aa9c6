"""Quantization-aware training under `tf.distribute.MirroredStrategy` over two logical CPUs (TensorFlow only, in a
subprocess: logical devices must be set before TensorFlow starts): every replica holds the same activation ranges,
and a model saved, loaded and resumed trains exactly as the unbroken one."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, os, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tfopt.compression import quantize_model
from tfopt.layers import QuantizeWrapper

rng = np.random.default_rng(0)
x = rng.normal(size=(128, 6)).astype("float32")
y = (x @ rng.normal(size=(6, 1))).astype("float32")
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model = quantize_model(base)
    model.compile(keras.optimizers.Adam(0.01), "mse", jit_compile=False)
model.fit(data, epochs=1, verbose=0)
ranges = [[float(np.asarray(r)) for r in strategy.experimental_local_results(v.value)]
          for layer in model.layers if isinstance(layer, QuantizeWrapper)
          for point in layer.range_points for v in layer.activation_range(point)]
path = os.path.join(sys.argv[1], "qat.keras")
model.save(path)
with strategy.scope():
    loaded = keras.models.load_model(path)
resumed = loaded.fit(data, epochs=2, verbose=0).history["loss"]
unbroken = model.fit(data, epochs=2, verbose=0).history["loss"]
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "ranges": ranges, "resumed": resumed,
                  "unbroken": unbroken,
                  "weights": [[a.tolist(), b.tolist()] for a, b in zip(model.get_weights(), loaded.get_weights())]}))
"""


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
    }
    folder = str(tmp_path_factory.mktemp("qat_mirrored"))
    process = subprocess.run(
        [sys.executable, "-c", SCRIPT, folder], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert process.returncode == 0, process.stderr[-4000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_every_replica_holds_the_same_activation_ranges(result):
    assert result["replicas"] == 2
    assert len(result["ranges"]) == 6  # first Dense: input and output; second: output
    for per_replica in result["ranges"]:
        assert per_replica[0] == per_replica[1]
    assert any(abs(r[0]) not in (0.0, 6.0) for r in result["ranges"])  # moved from the initial range


def test_saved_loaded_and_resumed_training_matches_the_unbroken_run(result):
    np.testing.assert_allclose(result["resumed"], result["unbroken"], rtol=1e-6)
    for live, loaded in result["weights"]:
        np.testing.assert_allclose(live, loaded, rtol=1e-6, atol=1e-7)
