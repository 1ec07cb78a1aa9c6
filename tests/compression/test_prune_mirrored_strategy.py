"""Pruning under `tf.distribute.MirroredStrategy` over two logical CPUs (TensorFlow only, in a subprocess: logical
devices must be set before TensorFlow starts): every replica holds the same masks, equal to single-device
training's, for layer and global scope."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tfopt.compression import PolynomialDecay, prune_low_magnitude, sparsity_report

rng = np.random.default_rng(0)
x = rng.normal(size=(64, 12)).astype("float32")
y = (x[:, :4] * 2).astype("float32")

def train(strategy, scope):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        base = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(4)])
        model = prune_low_magnitude(base, PolynomialDecay(0.0, 0.8, 0, 12, frequency=2), pruning_scope=scope)
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "mse")
    history = model.fit(x, y, batch_size=16, epochs=4, shuffle=False, verbose=0)
    replicas = [[[np.asarray(v).tolist() for v in strategy.experimental_local_results(m.value)] for m in w.masks]
                for w in model.layers]
    steps = [[int(v) for v in strategy.experimental_local_results(w.pruning_step.value)] for w in model.layers]
    return {"replica_masks": replicas, "steps": steps, "loss": history.history["loss"],
            "sparsity": sparsity_report(model)["total"]["sparsity"],
            "weights": [w.tolist() for w in model.get_weights()]}

out = {}
for scope in ("layer", "global"):
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out[scope] = {"replicas": mirrored.num_replicas_in_sync, "mirrored": train(mirrored, scope),
                  "single": train(tf.distribute.OneDeviceStrategy("/cpu:0"), scope)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def results():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    process = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600,
                             check=False)
    assert process.returncode == 0, process.stderr[-4000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_every_replica_holds_the_same_masks_as_single_device_training(results, scope):
    result = results[scope]
    assert result["replicas"] == 2
    mirrored, single = result["mirrored"], result["single"]
    for layer_masks, single_masks in zip(mirrored["replica_masks"], single["replica_masks"]):
        for replica_values, single_values in zip(layer_masks, single_masks):
            first, second = (np.array(v) for v in replica_values)
            np.testing.assert_array_equal(first, second)
            np.testing.assert_array_equal(first, np.array(single_values[0]))
    assert mirrored["steps"] == [[16, 16], [16, 16]]
    assert mirrored["sparsity"] == pytest.approx(0.8, abs=0.01)
    np.testing.assert_allclose(mirrored["loss"], single["loss"], rtol=1e-4)
    for a, b in zip(mirrored["weights"], single["weights"]):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-4, atol=1e-5)
