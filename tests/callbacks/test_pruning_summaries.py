"""PruningSummaries: per-layer sparsity and threshold scalars in TensorBoard, read back with TensorBoard's reader."""

import keras
import numpy as np
import pytest

from tfopt.callbacks import PruningSummaries
from tfopt.compression import PolynomialDecay, prune_low_magnitude

pytestmark = pytest.mark.backend_agnostic


def read_scalars(log_dir):
    """{tag: [(step, value), ...]} of the event file(s) under log_dir/pruning."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(log_dir / "pruning"), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


def fit(callback, epochs=2):
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.Input((8,)), keras.layers.Dense(10, name="a"), keras.layers.Dense(4, name="b")])
    model = prune_low_magnitude(base, PolynomialDecay(0.0, 0.8, 0, 8, frequency=2))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    model.fit(x, x[:, :4], batch_size=8, epochs=epochs, verbose=0, callbacks=[callback])
    return model


def test_sparsity_and_threshold_of_every_layer_at_each_epoch_end(tmp_path):
    callback = PruningSummaries(tmp_path)
    model = fit(callback)
    scalars = read_scalars(tmp_path)
    assert set(scalars) == {"prune_low_magnitude_a/kernel/sparsity", "prune_low_magnitude_a/kernel/threshold",
                            "prune_low_magnitude_b/kernel/sparsity", "prune_low_magnitude_b/kernel/threshold",
                            "total/sparsity"}
    # Epoch 1 ends at step 4 (last pruning at step 4: sparsity 0.8 (1 - (1 - 4/8)^3)), epoch 2 at step 8 (0.8).
    a = scalars["prune_low_magnitude_a/kernel/sparsity"]
    assert [s for s, _ in a] == [4, 8]
    assert a[0][1] == pytest.approx(1 - round(80 * (1 - 0.8 * (1 - 0.5**3))) / 80, abs=1e-6)
    assert a[1][1] == pytest.approx(0.8, abs=1e-6)
    wrapper = model.layers[0]
    assert scalars["prune_low_magnitude_a/kernel/threshold"][-1][1] == pytest.approx(
        float(keras.ops.convert_to_numpy(wrapper.thresholds[0])))
    assert scalars["total/sparsity"][-1][1] == pytest.approx(0.8, abs=0.01)


def test_every_n_steps(tmp_path):
    fit(PruningSummaries(tmp_path, update_freq=3), epochs=2)
    steps = [s for s, _ in read_scalars(tmp_path)["total/sparsity"]]
    assert steps == [3, 6]


def test_bad_arguments_name_the_argument():
    with pytest.raises(TypeError, match="Argument `log_dir` must be a non-empty path"):
        PruningSummaries(None)
    with pytest.raises(ValueError, match="Argument `update_freq` must be an integer >= 1. Received: update_freq=0"):
        PruningSummaries("logs", update_freq=0)


def test_config_round_trip():
    callback = PruningSummaries("logs", update_freq=5)
    assert PruningSummaries.from_config(callback.get_config()).get_config() == {"log_dir": "logs", "update_freq": 5}
