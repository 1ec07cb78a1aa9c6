"""OptimizationHyperModel: real Keras Tuner searches (random, Bayesian, Hyperband) on tiny data; each trial's
compiled model carries its sampled recipe; the QAT phase continues the float phase; the TensorBoard files of a
trial, read back; a tuner under a two-replica MirroredStrategy; bad input."""

import json
import os
import subprocess
import sys

import keras
import keras_tuner
import numpy as np
import pytest

from tfopt.compression import sparsity_report
from tfopt.layers import QuantizeWrapper
from tfopt.optimizers import RAdam
from tfopt.schedules import OneCycle
from tfopt.tuning import AccuracySizeObjective, OptimizationHyperModel

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLASSES = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "radam": RAdam}
TRAINED = []  # every model a search trained, in order (the tuner deep-copies callbacks, so a list outside them)


class Record(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        TRAINED.append(self.model)


def data(n=96):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def build_model():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(3, activation="softmax")])


def search(tuner_class, hypermodel, tmp_path, **kwargs):
    x, y = data()
    TRAINED.clear()
    keras.utils.set_random_seed(0)
    tuner = tuner_class(hypermodel, objective=hypermodel.objective or "val_accuracy", seed=1, directory=tmp_path,
                        project_name="search", overwrite=True, **kwargs)
    tuner.search(x[:64], y[:64], batch_size=16, validation_data=(x[64:], y[64:]), callbacks=[Record()], verbose=0)
    return tuner


@pytest.mark.backend_agnostic
def test_random_search_compiles_each_trial_with_its_sampled_recipe(tmp_path):
    hypermodel = OptimizationHyperModel(build_model, ("optimizer", "schedule", "pruning"), epochs=2,
                                        steps_per_epoch=4, optimizers=("adam", "sgd", "radam"),
                                        schedules=("constant", "one_cycle"), pruning={"sparsity": (0.5, 0.8)})
    tuner = search(keras_tuner.RandomSearch, hypermodel, tmp_path, max_trials=4)
    trials = list(tuner.oracle.trials.values())
    assert len(trials) == len(TRAINED) == 4
    for trial, model in zip(trials, TRAINED):
        values = trial.hyperparameters.values
        name = values["optimizer"]
        optimizer = model.optimizer
        assert type(optimizer) is CLASSES[name]
        rate = optimizer._learning_rate
        if values["schedule"] == "one_cycle":
            assert isinstance(rate, OneCycle)
            assert rate.max_learning_rate == pytest.approx(values[f"{name}/learning_rate"])
            assert rate.total_steps == 8
        else:
            value = float(keras.ops.convert_to_numpy(rate))
            assert value == pytest.approx(values[f"{name}/learning_rate"], rel=1e-6)
        assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 8
        report = sparsity_report(model)
        if values["pruning"]:
            expected = 0.5 if values["pruning/structure"] == "2:4" else values["pruning/sparsity"]
            assert report["total"]["sparsity"] == pytest.approx(expected, abs=0.02)
        else:
            assert report["total"]["sparsity"] == 0.0
        assert trial.score == pytest.approx(max(m.value[0] for m in trial.metrics.get_history("val_accuracy")))
    assert {values["optimizer"] for values in (t.hyperparameters.values for t in trials)} != {"adam"}


@pytest.mark.parametrize("tuner_class, kwargs", [
    (keras_tuner.BayesianOptimization, {"max_trials": 2, "num_initial_points": 1}),
    (keras_tuner.Hyperband, {"max_epochs": 2, "factor": 3, "hyperband_iterations": 1}),
])
def test_bayesian_and_hyperband_run_it_with_the_size_objective(tmp_path, tuner_class, kwargs):
    objective = AccuracySizeObjective(size_weight=0.05)
    hypermodel = OptimizationHyperModel(build_model, ("optimizer", "pruning"), epochs=2, steps_per_epoch=4,
                                        optimizers=("adam", "sgd"), objective=objective)
    tuner = search(tuner_class, hypermodel, tmp_path, **kwargs)
    rows = objective.rank(tuner)
    assert len(rows) == len([t for t in tuner.oracle.trials.values() if t.score is not None]) >= 2
    assert objective.reference_size == pytest.approx(32 * 9 * 4 + 3 * 33 * 4, rel=0.2)
    for row in rows:
        assert row["score"] == pytest.approx(objective.score(row["val_accuracy"], row["model_size"]))
    assert [row["score"] for row in rows] == sorted((row["score"] for row in rows), reverse=True)
    best = hypermodel.finalize(tuner.get_best_models(1)[0])
    assert not any("prune" in type(layer).__name__.lower() for layer in best.layers)


def test_qat_trains_the_float_phase_then_continues_in_the_qat_model(tmp_path):
    hypermodel = OptimizationHyperModel(build_model, ("pruning", "quantization"), epochs=3, steps_per_epoch=4,
                                        pruning={"sparsity": (0.75, 0.75), "structures": (None,), "scopes": ("layer",),
                                                 "schedules": ("constant",)},
                                        quantization={"optional": False}, qat_fraction=0.34)
    assert hypermodel.qat_split() == (2, 1)
    tuner = search(keras_tuner.RandomSearch, hypermodel, tmp_path, max_trials=1)
    model = TRAINED[-1]
    assert all(isinstance(layer, QuantizeWrapper) for layer in model.layers)
    # The optimizer continued: 2 float epochs + 1 QAT epoch of 4 steps.
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 12
    for layer in model.layers:
        kernel = keras.ops.convert_to_numpy(layer.quantized_weights()["kernel"])
        assert np.mean(kernel == 0) == pytest.approx(0.75, abs=0.02)
    # The tuner saw (and checkpointed) the QAT phase only: the third epoch.
    assert model.history.epoch == [2]
    assert list(tuner.oracle.trials.values())[0].score == pytest.approx(model.history.history["val_accuracy"][0])


def read_tensors(folder):
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: [(e.step, tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}, accumulator


@pytest.mark.backend_agnostic
def test_each_trial_writes_learning_rate_sparsity_gradients_histograms_and_hparams(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    x, y = data()
    objective = AccuracySizeObjective(size_weight=0.05)
    hypermodel = OptimizationHyperModel(build_model, ("optimizer", "schedule", "pruning"), epochs=2,
                                        steps_per_epoch=4, optimizers=("sgd",), schedules=("one_cycle",),
                                        pruning={"optional": False, "structures": (None,)}, objective=objective,
                                        log_dir=tmp_path / "logs", monitor_data=(x[:16], y[:16]))
    tuner = search(keras_tuner.RandomSearch, hypermodel, tmp_path, max_trials=1)
    trial = list(tuner.oracle.trials.values())[0]
    folder = tmp_path / "logs" / trial.trial_id
    assert sorted(os.listdir(folder)) == ["gradients", "hparams", "pruning", "train", "weights"]
    values = trial.hyperparameters.values
    model = TRAINED[-1]

    rates, _ = read_tensors(folder / "train")
    schedule = model.optimizer._learning_rate
    assert [s for s, _ in rates["learning_rate"]] == list(range(8))
    for step, value in rates["learning_rate"]:
        assert float(value) == pytest.approx(float(keras.ops.convert_to_numpy(schedule(step))), rel=1e-6)
    assert schedule.max_learning_rate == pytest.approx(values["sgd/learning_rate"])

    pruning, _ = read_tensors(folder / "pruning")
    assert float(pruning["total/sparsity"][-1][1]) == pytest.approx(values["pruning/sparsity"], abs=0.02)
    assert {tag.rsplit("/", 1)[-1] for tag in pruning} == {"sparsity", "threshold"}

    gradients, _ = read_tensors(folder / "gradients")
    assert set(gradients) == {"gradient_norm/global", *(f"gradient_norm/{layer.name}" for layer in model.layers)}
    layer_norms = [float(gradients[f"gradient_norm/{layer.name}"][-1][1]) for layer in model.layers]
    assert float(gradients["gradient_norm/global"][-1][1]) == pytest.approx(np.hypot(*layer_norms), rel=1e-5)

    histograms, _ = read_tensors(folder / "weights")
    kernel = f"{model.layers[0].name}/kernel"
    assert {kernel, f"{kernel}/stored"} <= set(histograms)
    assert float(histograms[kernel][-1][1][:, 2].sum()) == 8 * 32

    scalars, accumulator = read_tensors(folder / "hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.group_name == trial.trial_id
    assert start.hparams["optimizer"].string_value == "sgd"
    assert start.hparams["pruning/sparsity"].number_value == pytest.approx(values["pruning/sparsity"])
    assert [s for s, _ in scalars["score"]] == [1, 2]
    assert [float(v) for _, v in scalars["score"]] == pytest.approx(model.history.history["score"], rel=1e-6)
    assert [float(v) for _, v in scalars["model_size"]] == model.history.history["model_size"]
    assert trial.score == pytest.approx(max(model.history.history["score"]), rel=1e-6)


def test_a_tuner_under_a_two_replica_mirrored_strategy(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    env.pop("TF_CONFIG", None)
    result = subprocess.run([sys.executable, os.path.join(HERE, "strategy_worker.py"), str(tmp_path)], env=env,
                            capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, result.stderr[-4000:]
    with open(tmp_path / "strategy.json") as f:
        found = json.load(f)
    assert found["replicas"] == 2 and found["kind"] == "mirrored"
    assert found["trials"] == 2 and all(score is not None for score in found["scores"])
    assert found["variables_mirrored"] is True
    assert found["sparsity"] == pytest.approx(found["target_sparsity"], abs=0.02)
    mirrored, one_device = found["gradient_norms"]
    assert mirrored == pytest.approx(one_device, rel=1e-5) and mirrored > 0


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"search": ()}, ValueError, "Argument `search` must name at least one choice: an empty search has nothing "
                                     "to try. Received: search=()"),
        ({"search": ("optimizer", "distillation")}, ValueError,
         "Argument `search` must hold names among 'optimizer', 'schedule', 'pruning', 'quantization'. "
         "Received: search[1]='distillation'"),
        ({"epochs": 0}, ValueError, "Argument `epochs` must be an integer >= 1. Received: epochs=0"),
        ({"steps_per_epoch": -1}, ValueError, "Argument `steps_per_epoch` must be an integer >= 1"),
        ({"objective": "score"}, TypeError,
         "Argument `objective` must be None or a tfopt.tuning.AccuracySizeObjective"),
        ({"optimizers": ()}, ValueError, "Argument `optimizers` must name at least one choice"),
        ({"qat_fraction": 0.0}, ValueError, "Argument `qat_fraction` must be a number in (0.0, 1.0]"),
        ({"build_model": None}, TypeError, "Argument `build_model` must be a callable returning a keras.Model"),
    ],
)
@pytest.mark.backend_agnostic
def test_bad_arguments_name_the_argument(kwargs, error, message):
    arguments = {"build_model": build_model, "epochs": 2, "steps_per_epoch": 4, **kwargs}
    with pytest.raises(error) as raised:
        OptimizationHyperModel(**arguments)
    assert message in str(raised.value)


@pytest.mark.backend_agnostic
def test_unknown_optimizer_in_the_choices_fails_the_build_with_its_name():
    hypermodel = OptimizationHyperModel(build_model, ("optimizer",), epochs=1, steps_per_epoch=1,
                                        optimizers=("adam", "adamm"))
    with pytest.raises(ValueError, match="Received: choices\\[1\\]='adamm'"):
        hypermodel.build(keras_tuner.HyperParameters())
