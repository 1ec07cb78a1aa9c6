"""The tfmot bridge: a tf_keras model given to prune_low_magnitude / strip_pruning goes to tfmot with the
equivalent schedule; without tfmot installed, a clear error; Keras 3 objects are never taken for tf_keras."""

import sys
import types

import keras
import numpy as np
import pytest

from tfopt.compression import ConstantSparsity, PolynomialDecay, _tfmot_bridge, prune_low_magnitude, strip_pruning


def fake_tf_keras(monkeypatch):
    """A stand-in tf_keras module whose Layer class marks objects as tf_keras (no tf_keras needed)."""
    module = types.ModuleType("tf_keras")
    module.layers = types.SimpleNamespace(Layer=type("Layer", (), {}))
    monkeypatch.setitem(sys.modules, "tf_keras", module)
    return module.layers.Layer()


@pytest.mark.backend_agnostic
def test_keras_3_objects_are_not_tf_keras(monkeypatch):
    fake_tf_keras(monkeypatch)
    assert not _tfmot_bridge.is_tf_keras(keras.layers.Dense(2))
    assert not _tfmot_bridge.is_tf_keras([keras.layers.Dense(2)])
    monkeypatch.delitem(sys.modules, "tf_keras")
    assert not _tfmot_bridge.is_tf_keras(keras.layers.Dense(2))


@pytest.mark.backend_agnostic
def test_without_tfmot_a_tf_keras_model_gets_a_clear_error(monkeypatch):
    layer = fake_tf_keras(monkeypatch)
    assert _tfmot_bridge.is_tf_keras(layer) and _tfmot_bridge.is_tf_keras([layer, layer])
    monkeypatch.setitem(sys.modules, "tensorflow_model_optimization", None)  # import raises ImportError
    with pytest.raises(ImportError, match=r"not installed: pip install 'tfopt\[tfmot\]'"):
        prune_low_magnitude(layer, ConstantSparsity(0.5, 0))
    with pytest.raises(ImportError, match="TensorFlow Model Optimization"):
        strip_pruning(layer)


@pytest.mark.backend_agnostic
def test_global_scope_is_refused_for_tf_keras(monkeypatch):
    layer = fake_tf_keras(monkeypatch)
    with pytest.raises(ValueError, match="Argument `pruning_scope` must be 'layer' for a tf_keras model"):
        prune_low_magnitude(layer, ConstantSparsity(0.5, 0), pruning_scope="global")


def tf_keras_model():
    tf_keras = pytest.importorskip("tf_keras")
    pytest.importorskip("tensorflow_model_optimization")
    tf_keras.utils.set_random_seed(0)
    return tf_keras, tf_keras.Sequential([
        tf_keras.Input((8,)), tf_keras.layers.Dense(16, activation="relu"), tf_keras.layers.Dense(4),
    ])


@pytest.mark.parametrize("schedule", [ConstantSparsity(0.75, 0, frequency=2),
                                      PolynomialDecay(0.0, 0.75, 0, 6, power=2, frequency=2)])
def test_a_tf_keras_model_is_pruned_by_tfmot_with_the_same_schedule(schedule):
    tf_keras, model = tf_keras_model()
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    pruned = prune_low_magnitude(model, schedule)
    wrappers = [layer for layer in pruned.layers if type(layer).__name__ == "PruneLowMagnitude"]
    assert len(wrappers) == 2
    theirs = wrappers[0].pruning_schedule
    assert type(theirs).__name__ == type(schedule).__name__
    for step in range(0, 12):
        a, b = schedule(step), theirs(tf.constant(step, tf.int64))
        assert bool(keras.ops.convert_to_numpy(a[0])) == bool(b[0].numpy())
        assert float(keras.ops.convert_to_numpy(a[1])) == pytest.approx(float(b[1].numpy()), rel=1e-6)
    pruned.compile(tf_keras.optimizers.SGD(0.01), "mse")
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    pruned.fit(x, x[:, :4], batch_size=4, epochs=1, verbose=0, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = strip_pruning(pruned)
    kernel = stripped.layers[0].kernel.numpy()
    assert np.count_nonzero(kernel) == 32  # 25% of 8 x 16


def test_n_m_is_passed_as_tfmot_zeros_per_group():
    _, model = tf_keras_model()
    pruned = prune_low_magnitude(model, ConstantSparsity(0.5, 0), sparsity_m_by_n=(1, 4))
    wrapper = [layer for layer in pruned.layers if type(layer).__name__ == "PruneLowMagnitude"][0]
    assert tuple(wrapper.sparsity_m_by_n) == (3, 4)
