"""WeightHistograms: histograms of the weights inside pruning, QAT and clustering wrappers, read back from the event
file: tags, counts, ranges and the zeros pruning leaves."""

import keras
import numpy as np
import pytest

from tfopt.callbacks import WeightHistograms
from tfopt.callbacks.weight_histograms import buckets
from tfopt.compression import ConstantSparsity, prune_low_magnitude, quantize_model

pytestmark = pytest.mark.backend_agnostic


def read_histograms(folder):
    """{tag: [(step, array of (left, right, count) rows), ...]}."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    found = Histograms({tag: [(e.step, tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]
                        for tag in accumulator.Tags()["tensors"]})
    found.plugin_names = {accumulator.SummaryMetadata(tag).plugin_data.plugin_name for tag in found}
    return found


class Histograms(dict):
    plugin_names = set()


def base_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="a"),
                             keras.layers.Dense(4, name="b")])


def fit(model, callback, epochs=2):
    model.compile(keras.optimizers.Adam(0.01), "mse")
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    model.fit(x, x[:, :4], batch_size=8, epochs=epochs, verbose=0, callbacks=[callback])
    return model


def test_pruned_kernels_histogram_their_zeros_and_stored_values(tmp_path):
    model = fit(prune_low_magnitude(base_model(), ConstantSparsity(0.75, 0, frequency=1)), WeightHistograms(tmp_path))
    histograms = read_histograms(tmp_path / "weights")
    assert histograms.plugin_names == {"histograms"}
    assert set(histograms) == {"prune_low_magnitude_a/kernel", "prune_low_magnitude_a/kernel/stored",
                               "prune_low_magnitude_b/kernel", "prune_low_magnitude_b/kernel/stored"}
    step, buckets = histograms["prune_low_magnitude_a/kernel"][-1]
    assert [s for s, _ in histograms["prune_low_magnitude_a/kernel"]] == [4, 8]
    assert buckets[:, 2].sum() == pytest.approx(8 * 16)
    masked = keras.ops.convert_to_numpy(model.layers[0].masked_weights()[0])
    assert buckets[0, 0] == pytest.approx(masked.min(), rel=1e-5)
    assert buckets[-1, 1] == pytest.approx(masked.max(), rel=1e-5)
    # 75% of the 128 weights are exactly zero: the bucket holding 0 counts at least those 96.
    zero_bucket = [row for row in buckets if row[0] <= 0.0 <= row[1]]
    assert sum(row[2] for row in zero_bucket) >= 96
    _, stored = histograms["prune_low_magnitude_a/kernel/stored"][-1]
    stored_zero = [row for row in stored if row[0] <= 0.0 <= row[1]]
    assert sum(row[2] for row in stored_zero) < 96


def test_qat_kernels_histogram_the_int8_rounded_values(tmp_path):
    callback = WeightHistograms(tmp_path, buckets=255)
    model = fit(quantize_model(base_model()), callback, epochs=1)
    values = callback.histograms()
    wrapper = model.get_layer("quant_a")
    kernel = values[f"{wrapper.name}/kernel"]
    stored = values[f"{wrapper.name}/kernel/stored"]
    scale = np.abs(stored).max(axis=0) / 127.0
    np.testing.assert_allclose(kernel, np.clip(np.round(stored / scale), -127, 127) * scale, rtol=1e-5, atol=1e-7)
    assert np.unique(kernel[:, 0]).size <= 255
    histograms = read_histograms(tmp_path / "weights")
    assert f"{wrapper.name}/kernel" in histograms and histograms[f"{wrapper.name}/kernel"][-1][1][:, 2].sum() == 128


def test_buckets_span_the_values_and_count_them_all():
    value = np.array([-1.0, 0.0, 0.0, 0.5, 2.0])
    rows = buckets(value, 3)
    np.testing.assert_allclose(rows, [[-1.0, 0.0, 1.0], [0.0, 1.0, 3.0], [1.0, 2.0, 1.0]])
    np.testing.assert_array_equal(buckets(np.full(4, 0.25), 30), [[0.25, 0.25, 4.0]])


def test_plain_layers_only_with_include_unwrapped(tmp_path):
    model = base_model()
    callback = WeightHistograms(tmp_path, include_unwrapped=True, update_freq=2)
    fit(model, callback, epochs=1)
    histograms = read_histograms(tmp_path / "weights")
    assert set(histograms) == {"a/kernel", "a/bias", "b/kernel", "b/bias"}
    assert [s for s, _ in histograms["a/bias"]] == [2, 4]
    assert WeightHistograms(tmp_path).get_config()["include_unwrapped"] is False
    plain = WeightHistograms(tmp_path)
    plain.set_model(model)
    assert plain.histograms() == {}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"log_dir": ""}, TypeError, "Argument `log_dir` must be a non-empty path"),
        ({"log_dir": "l", "update_freq": 0}, ValueError, "Argument `update_freq` must be an integer >= 1"),
        ({"log_dir": "l", "buckets": 1}, ValueError, "Argument `buckets` must be an integer >= 2. Received: buckets=1"),
        ({"log_dir": "l", "include_unwrapped": 1}, TypeError, "Argument `include_unwrapped` must be a bool"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error) as raised:
        WeightHistograms(**kwargs)
    assert message in str(raised.value)


def test_config_round_trip():
    callback = WeightHistograms("logs", update_freq=3, buckets=10, include_unwrapped=True)
    assert WeightHistograms.from_config(callback.get_config()).get_config() == {
        "log_dir": "logs", "update_freq": 3, "buckets": 10, "include_unwrapped": True}
