"""GradientNormMonitor: global and per-layer gradient norms against a NumPy float64 transcription of the gradient
of a mean-squared error, in the epoch logs and read back from the event file."""

import math

import keras
import numpy as np
import pytest

from tfopt.callbacks import GradientNormMonitor

pytestmark = pytest.mark.backend_agnostic


def read_scalars(folder):
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


def make_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"),
                              keras.layers.Dense(2, name="out")])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    return model


def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(16, 3)).astype("float32"), rng.normal(size=(16, 2)).astype("float32")


def reference_norms(model, x, y):
    """The gradients of mean((x W1 + b1) W2 + b2 - y)^2 in float64, by the chain rule; their norms."""
    w1, b1, w2, b2 = (np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64) for v in model.weights)
    x, y = x.astype(np.float64), y.astype(np.float64)
    h = x @ w1 + b1
    out = h @ w2 + b2
    d_out = 2.0 * (out - y) / out.size
    g_w2, g_b2 = h.T @ d_out, d_out.sum(0)
    d_h = d_out @ w2.T
    g_w1, g_b1 = x.T @ d_h, d_h.sum(0)
    hidden = math.sqrt(np.sum(g_w1**2) + np.sum(g_b1**2))
    out = math.sqrt(np.sum(g_w2**2) + np.sum(g_b2**2))
    return {"gradient_norm/global": math.hypot(hidden, out), "gradient_norm/hidden": hidden,
            "gradient_norm/out": out}


def test_norms_equal_the_chain_rule_in_float64():
    x, y = data()
    model = make_model()
    callback = GradientNormMonitor((x, y))
    callback.set_model(model)
    values = callback.gradient_norms()
    expected = reference_norms(model, x, y)
    assert set(values) == set(expected)
    for tag, value in expected.items():
        assert values[tag] == pytest.approx(value, rel=1e-5)


def test_epoch_logs_and_event_file_hold_the_norms_at_each_epoch_end(tmp_path):
    x, y = data()
    model = make_model()
    callback = GradientNormMonitor((x[:8], y[:8]), log_dir=tmp_path)
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[callback])
    scalars = read_scalars(tmp_path / "gradients")
    assert set(scalars) == {"gradient_norm/global", "gradient_norm/hidden", "gradient_norm/out"}
    assert [step for step, _ in scalars["gradient_norm/global"]] == [4, 8]
    # The last point is at the final weights: equal to the reference there.
    expected = reference_norms(model, x[:8], y[:8])
    for tag, value in expected.items():
        assert scalars[tag][-1][1] == pytest.approx(value, rel=1e-5)
    assert history.history["gradient_norm"] == pytest.approx([v for _, v in scalars["gradient_norm/global"]])
    assert [step for step, _ in callback.history] == [4, 8]


def test_every_n_steps_writes_at_those_steps_and_the_epoch_ends(tmp_path):
    x, y = data()
    model = make_model()
    model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[GradientNormMonitor((x, y), tmp_path, 3)])
    assert [step for step, _ in read_scalars(tmp_path / "gradients")["gradient_norm/global"]] == [3, 4, 6, 8]


def test_sample_weights_weight_the_loss():
    x, y = data()
    model = make_model()
    weights = np.zeros(16, "float32")
    weights[0] = 1.0
    callback = GradientNormMonitor((x, y, weights))
    callback.set_model(model)
    only_first = GradientNormMonitor((x[:1], y[:1]))
    only_first.set_model(model)
    # Keras's sample-weighted mean divides by the batch size, so the weighted gradient is the first example's / 16.
    assert callback.gradient_norms()["gradient_norm/global"] == pytest.approx(
        only_first.gradient_norms()["gradient_norm/global"] / 16, rel=1e-5)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"data": [1]}, TypeError, "Argument `data` must be a tuple (x, y) or (x, y, sample_weight)"),
        ({"data": (1, 2), "log_dir": 3}, TypeError, "Argument `log_dir` must be a non-empty path"),
        ({"data": (1, 2), "update_freq": 0}, ValueError,
         "Argument `update_freq` must be an integer >= 1. Received: update_freq=0"),
        ({"data": (1, 2), "training": "yes"}, TypeError, "Argument `training` must be a bool"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error) as raised:
        GradientNormMonitor(**kwargs)
    assert message in str(raised.value)


def test_config_round_trip_with_the_batch_passed_again():
    x, y = data()
    callback = GradientNormMonitor((x, y), "logs", update_freq=5, training=True)
    config = callback.get_config()
    assert config == {"log_dir": "logs", "update_freq": 5, "training": True}
    assert GradientNormMonitor((x, y), **config).get_config() == config
