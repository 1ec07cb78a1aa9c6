"""run_tune: the search behind `tfopt tune`: a Keras Tuner search over optimization recipes for the demo CNN on
the bundled digits data, compared with the plain baseline."""

import json
import math
import os
import warnings

import keras

from tfopt import _checks
from tfopt.callbacks import GradientNormMonitor, LearningRateMonitor, NonFiniteGuard, WeightHistograms
from tfopt.compression import export_tflite, measure_model
from tfopt.data import load_digits
from tfopt.models.demo_cnn import build_demo_cnn
from tfopt.tuning.accuracy_size_objective import AccuracySizeObjective
from tfopt.tuning.deployed_size import deployed_size
from tfopt.tuning.optimization_hyper_model import OptimizationHyperModel

BATCH_SIZE = 32
OPTIMIZERS = ("adam", "adamw", "sgd", "radam", "adabelief", "schedule_free_adamw")
TUNERS = ("random", "bayesian", "hyperband")


def run_tune(out_dir, *, trials=4, epochs=6, seed=0, tuner="random", size_weight=0.05, size_budget=None,
             strategy=None, verbose=0):
    """Searches optimization recipes for the demo CNN on the digits data; saves the best model and a report.

    The baseline (Adam at 1e-3, no compression) trains for `epochs`; then a Keras Tuner search of `trials`
    trials, each an `OptimizationHyperModel` recipe (optimizer, schedule, pruning, QAT) trained for `epochs`,
    ranked by an `AccuracySizeObjective` (validation accuracy, minus `size_weight` per doubling of the deployed
    size relative to the baseline's, within `size_budget`). The best trial's model (pruning stripped) is
    measured on the test split beside the baseline and saved as `best_model.keras`. Writes under `out_dir`:
    `best_model.keras`, `tune.json` (baseline, best, every trial ranked), `tune.md`, the tuner's project in
    `tuner/`, and TensorBoard logs in `logs/` (`logs/baseline` and one folder per trial in `logs/trials`).

    Args:
        out_dir: the output folder (created if needed).
        trials: the number of trials, an integer >= 1. Default 4.
        epochs: epochs per trial and of the baseline, an integer >= 1. Default 6.
        seed: seed of the weights, the shuffles and the tuner. Default 0.
        tuner: "random" (default), "bayesian" or "hyperband" (`trials` then bounds the epochs it spends:
            `max_epochs=epochs`, and the search stops after `trials` trials).
        size_weight: accuracy worth one halving of the deployed size, a number >= 0. Default 0.05.
        size_budget: deployed-size budget in bytes, or None (default).
        strategy: a `tf.distribute.Strategy` for the tuner (`distribution_strategy=`), or None (default).
        verbose: `fit`'s verbosity during the search. Default 0.

    Returns:
        A dict: "baseline" and "best" (test accuracy, deployed size, `.keras` size, non-zero parameters), "recipe"
        (the best hyperparameters) and "recipe_text", "best_trial", "trials" (every trial ranked), "table"
        (markdown), "log_dir", "model_path". A best model with QAT is also written as a full-integer int8
        `best_model.tflite` (TensorFlow backend), whose size and accuracy "best" adds.
    """
    import keras_tuner


    trials = _checks.integer("trials", trials, 1)
    epochs = _checks.integer("epochs", epochs, 1)
    _checks.choice("tuner", tuner, TUNERS)
    objective = AccuracySizeObjective(size_budget=size_budget, size_weight=size_weight)
    os.makedirs(out_dir, exist_ok=True)
    log_dir = os.path.join(out_dir, "logs")
    data = load_digits()
    steps_per_epoch = math.ceil(len(data.y_train) / BATCH_SIZE)
    monitor_batch = (data.x_val[:64], data.y_val[:64])

    def build_model():
        return build_demo_cnn(data.input_shape, data.num_classes)

    # The baseline: the demo CNN with Keras defaults, logged like the trials. A fresh session names its layers
    # conv2d, conv2d_1, ... as the tuner's trials (which clear the session before each build) do.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    with (strategy.scope() if strategy is not None else _null()):
        baseline = build_model()
        baseline.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    baseline_logs = os.path.join(log_dir, "baseline")
    baseline.fit(*data.train, batch_size=BATCH_SIZE, epochs=epochs, validation_data=data.validation, verbose=verbose,
                 callbacks=[LearningRateMonitor(baseline_logs, every_n_steps=max(1, steps_per_epoch // 4)),
                            GradientNormMonitor(monitor_batch, baseline_logs),
                            WeightHistograms(baseline_logs, include_unwrapped=True), NonFiniteGuard()])
    objective.reference_size = float(deployed_size(baseline))
    hypermodel = OptimizationHyperModel(build_model, epochs=epochs, steps_per_epoch=steps_per_epoch,
                                        objective=objective, optimizers=OPTIMIZERS,
                                        log_dir=os.path.join(log_dir, "trials"), monitor_data=monitor_batch)
    common = {"objective": objective, "seed": seed, "directory": out_dir, "project_name": "tuner",
              "overwrite": True, "distribution_strategy": strategy}
    if tuner == "random":
        search = keras_tuner.RandomSearch(hypermodel, max_trials=trials, **common)
    elif tuner == "bayesian":
        search = keras_tuner.BayesianOptimization(hypermodel, max_trials=trials,
                                                  num_initial_points=min(2, trials), **common)
    else:
        search = keras_tuner.Hyperband(hypermodel, max_epochs=epochs, factor=3, hyperband_iterations=1,
                                       max_consecutive_failed_trials=3, **common)
        search.oracle.max_trials = trials
    keras.utils.set_random_seed(seed)
    # A recipe whose steps turn non-finite (too high a learning rate) skips them and is ranked by what it reached;
    # the count is in its logs.
    search.search(*data.train, batch_size=BATCH_SIZE, epochs=epochs, validation_data=data.validation,
                  verbose=verbose, callbacks=[NonFiniteGuard("skip")])

    ranking = objective.rank(search)
    with warnings.catch_warnings():
        # The tuner's checkpoints hold the optimizer's slots, which a rebuilt, untrained optimizer cannot take.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        best = OptimizationHyperModel.finalize(search.get_best_models(1)[0])
    model_path = os.path.join(out_dir, "best_model.keras")
    best.save(model_path)
    rows = {}
    for name, model in (("baseline", baseline), ("best", best)):
        report = measure_model(model, *data.test, measure_latency=False)
        rows[name] = {"accuracy": report.accuracy, "deployed_bytes": deployed_size(model),
                      "keras_bytes": report.size_bytes, "params": report.params,
                      "nonzero_params": report.nonzero_params}
    if any(type(layer).__name__ == "QuantizeWrapper" for layer in best.layers) and keras.backend.backend() == (
            "tensorflow"):
        # A QAT model ships as a full-integer int8 file: its size and accuracy are those of that file.

        tflite = export_tflite(best, os.path.join(out_dir, "best_model.tflite"), "int8")
        report = measure_model(tflite, *data.test, measure_latency=False)
        rows["best"].update({"tflite_bytes": report.size_bytes, "tflite_accuracy": report.accuracy})
    result = {"baseline": rows["baseline"], "best": rows["best"], "recipe": _ordered(ranking[0]["hyperparameters"]),
              "recipe_text": recipe_text(ranking[0]["hyperparameters"]),
              "best_trial": ranking[0], "trials": ranking, "log_dir": log_dir, "model_path": model_path,
              "tuner": tuner, "epochs": epochs, "seed": seed, "backend": keras.backend.backend()}
    result["table"] = _table(result)
    with open(os.path.join(out_dir, "tune.json"), "w") as f:
        json.dump(result, f, indent=2, default=str)
    with open(os.path.join(out_dir, "tune.md"), "w") as f:
        f.write(f"# tfopt tune\n\n{result['table']}\n")
    return result


def _null():
    import contextlib

    return contextlib.nullcontext()


def _table(result):
    lines = ["| Model | Test acc. | Deployed size (gzip) | .keras size | Non-zero params |", "|---|---|---|---|---|"]
    for name in ("baseline", "best"):
        row = result[name]
        lines.append(f"| {name} | {100 * row['accuracy']:.2f}% | {row['deployed_bytes'] / 1024:.1f} KiB | "
                     f"{row['keras_bytes'] / 1024:.1f} KiB | {row['nonzero_params']:,} |")
        if "tflite_bytes" in row:
            lines.append(f"| best, int8 .tflite | {100 * row['tflite_accuracy']:.2f}% | - | "
                         f"{row['tflite_bytes'] / 1024:.1f} KiB (.tflite) | - |")
    lines += ["", "| Rank | Trial | Score | Val. acc. | Deployed size | Recipe |", "|---|---|---|---|---|---|"]
    for row in result["trials"]:
        lines.append(f"| {row['rank']} | {row['trial_id']} | {row['score']:.4f} | {100 * row['val_accuracy']:.2f}% | "
                     f"{row['model_size'] / 1024:.1f} KiB | {recipe_text(row['hyperparameters'])} |")
    return "\n".join(lines)


def _ordered(values):
    """The trial's active hyperparameters, the optimizer's first, then the schedule's, pruning's and QAT's."""
    groups = ("optimizer", values.get("optimizer"), "schedule", "pruning", "quantization")

    def rank(key):
        head = key.split("/", 1)[0]
        return groups.index(head) if head in groups else len(groups)

    return dict(sorted(values.items(), key=lambda item: rank(item[0])))


def recipe_text(values):
    """The trial's hyperparameters in one line, in `_ordered` order."""
    return ", ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}"
                     for key, value in _ordered(values).items())
