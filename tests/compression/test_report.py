import gzip
import zipfile

import keras
import numpy as np
import pytest

from tfopt.compression import ModelReport, measure_model


def dense_with_known_zeros():
    """Dense(8 -> 4): 32 kernel entries of which 10 are zero, and 4 biases of which 1 is zero."""
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    kernel = np.arange(1, 33, dtype="float32").reshape(8, 4) / 32.0
    kernel.flat[[0, 3, 5, 7, 11, 13, 17, 19, 23, 31]] = 0.0
    model.layers[0].set_weights([kernel, np.array([0.0, 0.5, -0.5, 1.0], "float32")])
    return model


def identity_classifier(classes=3):
    """Outputs its input unchanged, so predictions are whatever the test feeds in."""
    model = keras.Sequential([keras.Input((classes,)), keras.layers.Dense(classes)])
    model.layers[0].set_weights([np.eye(classes, dtype="float32"), np.zeros(classes, "float32")])
    return model


@pytest.mark.backend_agnostic
def test_counts_params_and_nonzeros_exactly():
    report = measure_model(dense_with_known_zeros(), measure_latency=False)
    assert isinstance(report, ModelReport) and report.format == "keras"
    assert report.params == 36
    assert report.nonzero_params == 36 - 10 - 1
    assert report.sparsity == pytest.approx(11 / 36)


@pytest.mark.backend_agnostic
def test_counts_non_trainable_weights_like_keras():
    model = keras.Sequential([keras.Input((5,)), keras.layers.BatchNormalization()])
    report = measure_model(model, measure_latency=False)
    assert report.params == model.count_params() == 20
    # gamma and moving variance start at one; beta and moving mean at zero.
    assert report.nonzero_params == 10


@pytest.mark.backend_agnostic
def test_size_is_the_archive_without_optimizer_state():
    model = keras.Sequential([keras.Input((100,)), keras.layers.Dense(100)])
    before = measure_model(model, measure_latency=False)
    model.compile(keras.optimizers.Adam(), "mse")
    model.fit(np.ones((8, 100), "float32"), np.ones((8, 100), "float32"), verbose=0)
    after = measure_model(model, measure_latency=False)
    # 10,100 float32 weights are 40,400 bytes; the archive adds its config and HDF5 headers.
    assert 40_400 < after.size_bytes < 40_400 + 32_768
    # Adam's two slots would add another 80,800 bytes; they are not part of the model a user ships.
    assert abs(after.size_bytes - before.size_bytes) < 1024


@pytest.mark.backend_agnostic
def test_gzip_size_is_gzip_of_the_archive_and_shows_sparsity(tmp_path):
    def model_with_kernel(kernel):
        model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(256, use_bias=False)])
        model.layers[0].set_weights([kernel])
        return model

    rng = np.random.default_rng(0)
    dense_kernel = rng.normal(size=(256, 256)).astype("float32")
    sparse_kernel = dense_kernel * (rng.random((256, 256)) < 0.1)
    dense = measure_model(model_with_kernel(dense_kernel), measure_latency=False)
    sparse = measure_model(model_with_kernel(sparse_kernel), measure_latency=False)
    assert dense.size_bytes == pytest.approx(sparse.size_bytes, abs=64)  # same shapes, same archive size
    assert dense.gzip_bytes > 0.85 * dense.size_bytes  # random floats barely compress
    assert sparse.gzip_bytes < 0.3 * dense.gzip_bytes  # 90% zeros do
    assert sparse.sparsity == pytest.approx(0.9, abs=0.01)


@pytest.mark.backend_agnostic
def test_the_archive_holds_the_model_and_loads_back(tmp_path):
    from tfopt.compression.report import _KerasModel

    model = dense_with_known_zeros()
    model.compile(keras.optimizers.Adam(), "mse")
    model.fit(np.ones((4, 8), "float32"), np.ones((4, 4), "float32"), verbose=0)
    data = _KerasModel(model).serialized_bytes()
    path = tmp_path / "slim.keras"
    path.write_bytes(data)
    assert zipfile.is_zipfile(path)
    loaded = keras.saving.load_model(path, compile=False)
    x = np.random.default_rng(1).normal(size=(3, 8)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert measure_model(model, measure_latency=False).gzip_bytes == len(gzip.compress(data, compresslevel=9))


@pytest.mark.backend_agnostic
def test_the_same_model_measures_the_same_size_at_any_time(monkeypatch):
    import datetime

    from tfopt.compression.report import _KerasModel

    model = dense_with_known_zeros()
    first = _KerasModel(model).serialized_bytes()

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2031, 7, 9, 23, 59, 58)

    monkeypatch.setattr(datetime, "datetime", Later)  # what Keras stamps into the archive as its save time
    assert _KerasModel(model).serialized_bytes() == first


@pytest.mark.backend_agnostic
def test_accuracy_of_argmax_predictions():
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], "float32")
    labels = np.array([0, 1, 1, 2])  # predictions are 0, 1, 2, 0: two right
    assert measure_model(identity_classifier(), x, labels, measure_latency=False).accuracy == 0.5
    one_hot = np.eye(3)[labels]
    assert measure_model(identity_classifier(), x, one_hot, measure_latency=False).accuracy == 0.5


@pytest.mark.backend_agnostic
def test_accuracy_of_a_single_probability_output():
    x = np.array([[0.9], [0.2], [0.7], [0.4], [0.6]], "float32")
    labels = np.array([1, 0, 0, 0, 1])  # predicted 1, 0, 1, 0, 1: four right
    report = measure_model(identity_classifier(1), x, labels, measure_latency=False)
    assert report.accuracy == pytest.approx(0.8)


@pytest.mark.backend_agnostic
def test_latency_is_the_median_after_warmup(monkeypatch):
    from tfopt import _timing

    now = [0.0]
    monkeypatch.setattr(_timing.time, "perf_counter", lambda: now[0])
    model = dense_with_known_zeros()
    costs = iter([100.0, 100.0] + [0.004, 0.001, 0.009, 0.002, 0.003])  # two slow warm-up calls, then five

    def fake_predict(x):
        now[0] += next(costs)

    monkeypatch.setattr(model, "predict_on_batch", fake_predict)
    report = measure_model(model, latency_repeats=5, latency_warmup=2)
    assert report.latency_ms == pytest.approx(3.0)
    assert report.latency_iqr_ms == pytest.approx(5.0)  # quartiles 1.5 ms and 6.5 ms


@pytest.mark.backend_agnostic
def test_latency_is_the_median_of_batch1_calls(monkeypatch):
    model = dense_with_known_zeros()
    shapes = []
    original = model.predict_on_batch

    def spy(x):
        shapes.append(np.shape(x))
        return original(x)

    monkeypatch.setattr(model, "predict_on_batch", spy)
    x = np.ones((10, 8), "float32")
    report = measure_model(model, x, latency_repeats=7, latency_warmup=2)
    assert shapes == [(1, 8)] * 9
    assert report.latency_ms > 0 and report.latency_iqr_ms >= 0
    report = measure_model(model, latency_repeats=3, latency_warmup=0)  # no data: zeros of the input shape
    assert shapes[9:] == [(1, 8)] * 3 and report.accuracy is None
    assert measure_model(model, x, measure_latency=False).latency_ms is None


@pytest.mark.parametrize(
    "model, kwargs, error, message",
    [
        (object(), {}, TypeError, "`model` must be a keras.Model or the path of a .tflite file. Received: object"),
        ("model.h5", {}, ValueError, "path ending in `.tflite`"),
        ("missing.tflite", {}, ValueError,
         "`model` must be an existing TFLite flatbuffer file. Received: model='missing.tflite', which does not exist"),
    ],
)
def test_rejects_what_it_cannot_measure(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        measure_model(model, **kwargs)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"y": np.zeros(3)}, "`y` needs `x`"),
        ({"x": np.zeros((3, 8)), "y": np.zeros(2)}, r"Received: len\(x\)=3, len\(y\)=2"),
        ({"batch_size": 0}, "`batch_size` must be an integer >= 1. Received: batch_size=0"),
        ({"latency_repeats": 0}, "`latency_repeats` must be an integer >= 1"),
        ({"latency_warmup": -1}, "`latency_warmup` must be an integer >= 0"),
    ],
)
def test_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        measure_model(dense_with_known_zeros(), **kwargs)


def flops_model():
    """Every counted layer type once, 8x8x2 input (hand counts in the test below)."""
    L = keras.layers
    i = keras.Input((8, 8, 2))
    x = L.Conv2D(4, 3, padding="same", name="conv")(i)  # 64 * 9 * 2 * 4 = 4608
    x = L.Conv2D(4, 3, strides=2, groups=2, name="grouped")(x)  # 9 positions (3x3) * 9 * 2 * 4 = 648
    x = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(x)  # 9 * 9 * 4 * 2 = 648
    x = L.SeparableConv2D(5, 2, name="sep")(x)  # 4 positions: 4*4*8*1 + 4*8*5 = 128 + 160 = 288
    x = L.BatchNormalization()(x)
    x = L.Conv2DTranspose(3, 2, strides=2, name="up")(x)  # 4 input positions * 4 * 5 * 3 = 240
    x = L.Conv1D(2, 3, name="c1d")(L.Reshape((16, 3))(x))  # 14 * 3 * 3 * 2 = 252
    x = L.Dense(6, name="seq_dense")(x)  # 14 positions * 2 * 6 = 168
    x = L.Flatten()(x)
    return keras.Model(i, L.Dense(10, name="out")(x))  # 84 * 10 = 840


@pytest.mark.backend_agnostic
def test_flops_are_the_hand_counted_multiply_accumulates():
    from tfopt.compression import count_flops

    model = flops_model()
    expected = 4608 + 648 + 648 + 288 + 240 + 252 + 168 + 840
    assert count_flops(model) == expected
    assert measure_model(model, measure_latency=False).flops == expected
    nested = keras.Sequential([keras.Input((8, 8, 2)), model, keras.layers.Dense(1)])
    assert count_flops(nested) == expected + 10


@pytest.mark.backend_agnostic
def test_flops_count_the_layers_inside_pruning_wrappers():
    from tfopt.compression import count_flops, prune_low_magnitude
    from tfopt.models.demo_cnn import build_demo_cnn

    model = build_demo_cnn()
    # conv 64*9*1*32, conv 64*9*32*64, dense 1024*32, dense 32*10
    expected = 18_432 + 1_179_648 + 32_768 + 320
    assert count_flops(model) == expected
    assert count_flops(prune_low_magnitude(model)) == expected


@pytest.mark.backend_agnostic
def test_count_flops_rejects_what_it_cannot_count():
    from tfopt.compression import count_flops

    with pytest.raises(TypeError, match="Argument `model` must be a keras.Model"):
        count_flops(keras.layers.Dense(2))
