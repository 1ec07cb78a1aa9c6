"""HParamsLogger: the session-start record of TensorBoard's HParams plugin (hyperparameters, trial id) and the
metrics per epoch, read back from the event file."""

import keras
import keras_tuner
import numpy as np
import pytest

from tfopt.callbacks import HParamsLogger

pytestmark = pytest.mark.backend_agnostic


def read(folder):
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    scalars = {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
               for tag in accumulator.Tags()["tensors"] if not tag.startswith("_hparams_")}
    return start, scalars


def fit(callback):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.1), "mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(8, 2)).astype("float32")
    return model.fit(x, x[:, :1], batch_size=4, epochs=2, verbose=0, callbacks=[callback])


def test_hyperparameters_and_metrics_are_written(tmp_path):
    hparams = {"optimizer": "sgd", "sgd/learning_rate": np.float32(0.1), "pruning": True, "layers": 3, "off": None}
    history = fit(HParamsLogger(tmp_path, hparams, trial_id="trial_7"))
    start, scalars = read(tmp_path)
    assert start.group_name == "trial_7"
    assert start.hparams["optimizer"].string_value == "sgd"
    assert start.hparams["sgd/learning_rate"].number_value == pytest.approx(0.1)
    assert start.hparams["pruning"].bool_value is True
    assert start.hparams["layers"].number_value == 3
    assert "off" not in start.hparams
    assert set(scalars) == {"loss", "mae"}
    assert scalars["loss"] == [(1, pytest.approx(history.history["loss"][0])),
                               (2, pytest.approx(history.history["loss"][1]))]


def test_keras_tuner_hyperparameters_give_their_active_values(tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Choice("optimizer", ["adam", "sgd"])
    with hp.conditional_scope("optimizer", ["sgd"]):
        hp.Float("sgd/momentum", 0.0, 0.9)
    fit(HParamsLogger(tmp_path, hp, metrics=["mae"]))
    start, scalars = read(tmp_path)
    assert dict(start.hparams)["optimizer"].string_value == "adam"
    assert "sgd/momentum" not in start.hparams
    assert set(scalars) == {"mae"}


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"log_dir": "", "hparams": {}}, TypeError, "Argument `log_dir` must be a non-empty path"),
        ({"log_dir": "l", "hparams": [1]}, TypeError, "Argument `hparams` must be a dict of hyperparameter values"),
        ({"log_dir": "l", "hparams": {}, "trial_id": 3}, TypeError, "Argument `trial_id` must be a string or None"),
        ({"log_dir": "l", "hparams": {}, "metrics": "loss"}, TypeError, "Argument `metrics` must be a list"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error) as raised:
        HParamsLogger(**kwargs)
    assert message in str(raised.value)


def test_config_round_trip():
    callback = HParamsLogger("logs", {"a": 1, "b": "x"}, trial_id="t", metrics=["loss"])
    assert HParamsLogger.from_config(callback.get_config()).get_config() == {
        "log_dir": "logs", "hparams": {"a": 1, "b": "x"}, "trial_id": "t", "metrics": ["loss"]}
