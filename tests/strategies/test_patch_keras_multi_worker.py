"""The Keras multi-worker fix: applied once, only where needed, and inert outside multi-worker training (its
effect, two workers training to identical weights, is proven in test_multi_worker.py)."""

import keras
import numpy as np
import tensorflow as tf

from tfopt.strategies import patch_keras_multi_worker
from tfopt.strategies.patch_keras_multi_worker import LAST_CHECKED_KERAS, _needs, _trainer, _version


def test_patch_is_applied_once():
    patch_keras_multi_worker()
    assert patch_keras_multi_worker() == []
    trainer, module = _trainer()
    assert trainer.__name__ == "TensorFlowTrainer"
    assert getattr(trainer._maybe_symbolic_build, "_tfopt_multi_worker_patch", False)
    assert getattr(module.reduce_per_replica, "_tfopt_multi_worker_patch", False)


def test_the_faults_are_found_in_this_keras_source():
    # Keras 3.15.1 (this environment) ships both faults; the check reads them from its source.
    trainer, module = _trainer()
    original_build = trainer.__dict__["_maybe_symbolic_build"].__closure__[0].cell_contents
    assert _needs(original_build, "distribute_strategy.reduce(", _version(keras.__version__))
    assert not _needs(len, "anything", (99, 0, 0))  # no source: versions after the last checked are left alone
    assert _needs(len, "anything", LAST_CHECKED_KERAS)


def test_versions_parse_with_suffixes():
    assert _version("3.15.1") == (3, 15, 1)
    assert _version("3.16.0.dev2026010203") == (3, 16, 0)
    assert _version("3.7") == (3, 7, 0)


def test_patched_keras_trains_the_same_under_one_device_and_without_a_strategy():
    patch_keras_multi_worker()
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    losses = []
    for strategy in (None, tf.distribute.OneDeviceStrategy("/cpu:0")):
        scope = strategy.scope() if strategy else tf.distribute.get_strategy().scope()
        with scope:
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
            model.compile(keras.optimizers.SGD(0.1), "mse")
        losses.append(model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
    assert losses[0][1] < losses[0][0]
