"""Every bad input of issue 22 as a test: the exact error type and the argument named, raised before any work
(tfopt/_checks.py holds the checks; the call sites are across the API)."""

import os

import keras
import numpy as np
import pytest

from tfopt import _checks
from tfopt.acceleration import profile_fit
from tfopt.callbacks import ReduceLROnPlateau
from tfopt.compression import (
    cluster_weights,
    evaluate_tflite,
    export_tflite,
    inspect_tflite,
    measure_model,
    prune_low_magnitude,
)
from tfopt.data import make_dataset
from tfopt.optimizers import (
    COCOB,
    LARS,
    SWA,
    AdaBelief,
    Adan,
    AdaptiveGradientClipping,
    GradientCentralization,
    LazyAdam,
    Lookahead,
    MovingAverage,
    NovoGrad,
    Prodigy,
    ProximalAdagrad,
    RAdam,
    ScheduleFreeAdamW,
    ScheduleFreeSGD,
    Yogi,
)
from tfopt.schedules import LinearDecay
from tfopt.tuning import OptimizationHyperModel

X = np.random.default_rng(0).random((20, 8, 8, 1)).astype("float32")
Y = np.arange(20) % 10


@pytest.fixture(scope="module")
def model():
    net = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    net.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return net


@pytest.fixture(scope="module")
def tflite(model, tmp_path_factory):
    return export_tflite(model, str(tmp_path_factory.mktemp("tflite") / "m.tflite"))


# 1. Errors that leaked from TensorFlow / Keras / TFLite internals.

def test_int8_export_with_wrongly_shaped_representative_data_names_it(model, tmp_path):
    with pytest.raises(ValueError, match=r"`representative_data` must have the model's input shape \(None, 8, 8, 1\)"
                                         r".*Received: representative_data of shape \(5, 28\)"):
        export_tflite(model, str(tmp_path / "q.tflite"), quantization="int8", representative_data=np.zeros((5, 28)))
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("function", [evaluate_tflite, lambda path, x, y: measure_model(path, x, y)])
def test_tflite_with_wrongly_shaped_x_names_x(tflite, function):
    # 112 values read as 28 examples before: now the shape is checked against the file's input.
    with pytest.raises(ValueError, match=r"`x` must have the model's input shape \(None, 8, 8, 1\).*\(28, 4\)"):
        function(tflite, np.zeros((28, 4), "float32"), np.zeros(28))


def test_inspect_tflite_of_a_file_that_is_not_a_flatbuffer_names_the_file(tmp_path):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"this is not a flatbuffer")
    with pytest.raises(ValueError, match=r"`path` must be a TFLite flatbuffer file. Received: path='.*garbage.tflite'"):
        inspect_tflite(str(garbage))


def test_reduce_lr_on_plateau_with_a_metric_that_is_not_logged_names_monitor(model):
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    net.compile("adam", "mse")
    with pytest.raises(ValueError, match=r"`monitor` must name a quantity the model logs. Received: "
                                         r"monitor='val_los', but the logs hold 'loss', 'val_loss'"):
        net.fit(np.ones((8, 2)), np.ones((8, 1)), validation_data=(np.ones((4, 2)), np.ones((4, 1))), epochs=1,
                verbose=0, callbacks=[ReduceLROnPlateau(monitor="val_los")])


# 2. Python errors inside tfopt's own code.

def test_make_dataset_of_none_names_x():
    with pytest.raises(TypeError, match=r"Argument `x` must be an array of examples.*Received: x=None"):
        make_dataset(None)


def test_export_to_a_path_that_is_not_a_path_names_path(model):
    with pytest.raises(TypeError, match=r"Argument `path` must be a non-empty path.*Received: path=123 of type int"):
        export_tflite(model, 123)


def test_export_into_a_missing_folder_fails_before_converting(model, monkeypatch):
    import tensorflow as tf

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted before the path was checked")

    monkeypatch.setattr(tf.lite.TFLiteConverter, "from_concrete_functions", no_conversion)
    with pytest.raises(ValueError, match=r"Argument `path` must be a file path in an existing folder. Received: "
                                         r"path='/unwritable/m.tflite'"):
        export_tflite(model, "/unwritable/m.tflite")


def test_profile_fit_given_a_model_names_model_fn(model):
    with pytest.raises(TypeError, match=r"Argument `model_fn` must be a callable returning a fresh keras.Model"):
        profile_fit(model, X, Y)


def test_hyper_model_with_a_misspelt_pruning_key_fails_at_construction(model):
    with pytest.raises(ValueError, match=r"Argument `pruning` has keys pruning_from_hp does not take: 'sparsty'"):
        OptimizationHyperModel(lambda: model, epochs=1, steps_per_epoch=1, pruning={"sparsty": (0.5, 0.9)})
    with pytest.raises(ValueError, match=r"Argument `quantization` has keys quantization_from_hp does not take"):
        OptimizationHyperModel(lambda: model, epochs=1, steps_per_epoch=1, quantization={"ema": 0.9})


# 3. Accepted silently before.

@pytest.mark.backend_agnostic
@pytest.mark.parametrize("rate", [lambda: float("nan"), lambda: float("inf"), lambda: -1.0,
                                  keras.optimizers.schedules.ExponentialDecay(1e30, 1, 1e30)])
def test_a_learning_rate_non_finite_at_the_first_step_names_learning_rate(rate):
    if isinstance(rate, keras.optimizers.schedules.ExponentialDecay):
        rate = keras.optimizers.schedules.ExponentialDecay(float("inf"), 1, 0.5)
    with pytest.raises(ValueError, match=r"Argument `learning_rate` must give a finite number >= 0 at the first "
                                         r"step.*at step 0 is"):
        RAdam(rate)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("wrapper", [Lookahead, SWA, GradientCentralization, AdaptiveGradientClipping, MovingAverage])
def test_an_inner_optimizer_with_a_nan_learning_rate_names_it(wrapper):
    with pytest.raises(ValueError, match=r"Argument `optimizer.learning_rate` must be a finite number >= 0. "
                                         r"Received: optimizer.learning_rate=nan"):
        wrapper(keras.optimizers.Adam(float("nan")))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("wrapper", [Lookahead, SWA])
def test_an_inner_keras_optimizer_with_negative_clipnorm_names_it(wrapper):
    with pytest.raises(ValueError, match=r"Argument `optimizer.clipnorm` must be a finite number > 0 or None. "
                                         r"Received: optimizer.clipnorm=-0.0001"):
        wrapper(keras.optimizers.Adam(clipnorm=-1e-4))


OPTIMIZERS = [RAdam, AdaBelief, Yogi, Adan, LARS, Prodigy, ScheduleFreeSGD, ScheduleFreeAdamW, LazyAdam, NovoGrad,
              COCOB, ProximalAdagrad]
BASE_OPTIONS = [
    ({"clipnorm": -1e-4}, ValueError, r"`clipnorm` must be a finite number > 0 or None. Received: clipnorm=-0.0001"),
    ({"clipvalue": 0.0}, ValueError, r"`clipvalue` must be a finite number > 0 or None. Received: clipvalue=0.0"),
    ({"global_clipnorm": float("nan")}, ValueError, r"`global_clipnorm` must be a finite number > 0 or None"),
    ({"clipnorm": "1"}, TypeError, r"`clipnorm` must be a finite number > 0 or None. Received: clipnorm='1' of type"),
    ({"clipnorm": 1.0, "clipvalue": 1.0}, ValueError, r"Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"),
    ({"weight_decay": -0.1}, ValueError, r"`weight_decay` must be a finite number >= 0"),
    ({"use_ema": 1}, TypeError, r"`use_ema` must be a bool. Received: use_ema=1"),
    ({"ema_momentum": 1.5}, ValueError, r"`ema_momentum` must be a number in \[0, 1\]"),
    ({"ema_overwrite_frequency": 0}, ValueError, r"`ema_overwrite_frequency` must be an integer >= 1 or None"),
    ({"loss_scale_factor": -2.0}, ValueError, r"`loss_scale_factor` must be a finite number > 0 or None"),
    ({"gradient_accumulation_steps": 1}, ValueError, r"`gradient_accumulation_steps` must be an integer >= 2 or "
                                                     r"None. Received: gradient_accumulation_steps=1"),
    ({"gradient_accumulation_steps": 2.5}, TypeError, r"`gradient_accumulation_steps` must be an integer >= 2"),
]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("options", "error", "match"), BASE_OPTIONS)
def test_keras_base_options_are_checked_on_every_optimizer(optimizer, options, error, match):
    with pytest.raises(error, match=match):
        optimizer(**options)


# The values Keras's own constructor lets through (it refuses the others itself).
KERAS_ACCEPTS = [case for case in BASE_OPTIONS if list(case[0]) in (["clipnorm"], ["clipvalue"], ["global_clipnorm"],
                                                                     ["weight_decay"], ["loss_scale_factor"])
                 and not isinstance(next(iter(case[0].values())), str)]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("wrapper", [Lookahead, SWA, GradientCentralization, AdaptiveGradientClipping, MovingAverage])
@pytest.mark.parametrize(("options", "error", "match"), KERAS_ACCEPTS)
def test_keras_base_options_are_checked_on_the_optimizer_inside_every_wrapper(wrapper, options, error, match):
    inner = keras.optimizers.SGD(**options)
    with pytest.raises(error, match=match.replace("`", "`optimizer.", 1).replace("Received: ", "Received: optimizer.")
                       if "Only one" not in match else r"Only one of `optimizer.clipnorm`"):
        wrapper(inner)


def test_cluster_weights_with_more_clusters_than_weights_names_number_of_clusters():
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8)])
    with pytest.raises(ValueError, match=r"`number_of_clusters` must be at most the number of weights of every "
                                         r"clustered kernel \(32 in layer 'dense.*'\). Received: "
                                         r"number_of_clusters=1000"):
        cluster_weights(net, 1000)


def test_prune_low_magnitude_of_a_batch_normalization_layer_names_to_prune():
    with pytest.raises(ValueError, match=r"Argument `to_prune`: Layer '.*' \(BatchNormalization\) cannot be pruned"):
        prune_low_magnitude(keras.layers.BatchNormalization())


def test_make_dataset_that_would_drop_every_batch_names_batch_size():
    with pytest.raises(ValueError, match=r"`batch_size` must be at most the number of examples with "
                                         r"`drop_remainder=True`.*batch_size=32 for 10 examples"):
        make_dataset(X[:10], Y[:10], batch_size=32, drop_remainder=True)


@pytest.mark.parametrize("labels", [Y + 5, -Y - 1, Y + 0.5])
def test_measure_model_with_labels_outside_the_classes_names_y(model, labels):
    with pytest.raises(ValueError, match=r"Argument `y` must hold class indices in the \[0, 9\] range"):
        measure_model(model, X, labels, measure_latency=False)


def test_measure_model_with_one_hot_labels_of_the_wrong_width_names_y(model):
    with pytest.raises(ValueError, match=r"Argument `y` must be class indices of shape \(n,\) or one-hot rows of "
                                         r"shape \(n, 10\)"):
        measure_model(model, X, np.eye(4)[Y % 4], measure_latency=False)


def test_representative_data_that_would_be_ignored_names_it(model, tmp_path):
    for quantization in ("none", "float16", "dynamic"):
        with pytest.raises(ValueError, match=rf"`representative_data` is only used by post-training "
                                             rf"quantization='int8'.*quantization='{quantization}'"):
            export_tflite(model, str(tmp_path / "m.tflite"), quantization=quantization, representative_data=X)


@pytest.mark.backend_agnostic
def test_a_schedule_called_at_a_negative_step_names_step():
    with pytest.raises(ValueError, match=r"Argument `step` must be a finite number >= 0. Received: step=-50"):
        LinearDecay(0.1, 100)(-50)
    # A tensor step (inside a compiled function) is clamped at 0: the schedule's first value, never 0.15.
    assert float(LinearDecay(0.1, 100)(keras.ops.convert_to_tensor(-50))) == pytest.approx(0.1)


# The helpers themselves.

def test_writable_folder_refuses_a_file_on_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"Argument `out` must be a folder path.*is a file, not a folder"):
        _checks.writable_folder("out", str(tmp_path / "file" / "sub"))
    assert _checks.writable_folder("out", str(tmp_path / "new" / "sub")) == str(tmp_path / "new" / "sub")
    assert not (tmp_path / "new").exists()


def test_labels_accept_indices_and_one_hot():
    assert _checks.labels("y", [0, 2, 1], 3, 3).tolist() == [0, 2, 1]
    assert _checks.labels("y", np.eye(3), 3, 3).shape == (3, 3)
    with pytest.raises(ValueError, match=r"Arguments `x` and `y` must have the same number of examples"):
        _checks.labels("y", [0, 1], 3, 3)
