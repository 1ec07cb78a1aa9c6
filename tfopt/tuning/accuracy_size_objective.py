"""AccuracySizeObjective: accuracy and model size as one Keras Tuner objective, and the per-trial ranking."""

import math

import keras
import keras_tuner

from tfopt import _checks
from tfopt.tuning.deployed_size import deployed_size


class AccuracySizeObjective(keras_tuner.Objective):
    """A `keras_tuner.Objective` ("score", maximized) that trades accuracy against model size.

    Use it as the tuner's `objective` (and the `OptimizationHyperModel`'s, which then adds the two metrics below
    to every epoch's logs) when the search should find small models, not only accurate ones. Two ways, which
    combine:

    - a size budget B: the best-accuracy model whose size is at most B; models over budget rank below every
      model within it (smaller ones first);
    - a size weight w: each halving of the size is worth w of accuracy, relative to a reference size R (the
      unmodified model's size, measured by the hypermodel when not given).

    With a the accuracy metric, s = `deployed_size(model)` (gzip bytes of the weights as deployed) and
    L = -w log2(B / R) (0 when w = 0) the lowest score a model within budget can have:

        within budget (s <= B, or no budget):  score = a - w log2(s / R)
        over budget:                           score = L + (a - 1) - 1 - log2(s / B)     (< L)

    The epoch logs get "model_size" (s) and "score"; `rank(tuner)` reports every trial with both.

    Args:
        size_budget: B in bytes, a number > 0, or None (default) for no budget.
        size_weight: w, a number >= 0. Default 0.0 (accuracy only, within the budget).
        reference_size: R in bytes, a number > 0, or None (default: set by `OptimizationHyperModel` to the
            size of the model `build_model` returns).
        accuracy: the epoch-log metric to maximize. Default "val_accuracy".
    """

    def __init__(self, size_budget=None, size_weight=0.0, reference_size=None, accuracy="val_accuracy"):
        super().__init__("score", "max")
        self.size_budget = _positive_or_none("size_budget", size_budget)
        self.size_weight = _checks.finite_number("size_weight", size_weight)
        self.reference_size = _positive_or_none("reference_size", reference_size)
        if not isinstance(accuracy, str) or not accuracy:
            raise TypeError(f"Argument `accuracy` must be the name of an epoch-log metric. Received: "
                            f"accuracy={accuracy!r}")
        self.accuracy = accuracy

    def score(self, accuracy, size):
        """The score of a model with this accuracy and size in bytes (see the class docstring)."""
        penalty = 0.0
        if self.size_weight:
            if self.reference_size is None:
                raise ValueError("AccuracySizeObjective needs `reference_size` when `size_weight` > 0: pass it, or "
                                 "let OptimizationHyperModel set it. Received: reference_size=None")
            penalty = self.size_weight * math.log2(size / self.reference_size)
        if self.size_budget is None or size <= self.size_budget:
            return float(accuracy) - penalty
        lowest = -self.size_weight * math.log2(self.size_budget / self.reference_size) if self.size_weight else 0.0
        return lowest + (float(accuracy) - 1.0) - 1.0 - math.log2(size / self.size_budget)

    def callback(self):
        """A Keras callback that adds "model_size" and "score" to the epoch logs (list it before the tuner's)."""
        return _ScoreLogs(self)

    def rank(self, tuner):
        """Every completed trial of `tuner`, best first: a list of dicts with rank, trial_id, score, the
        accuracy metric, model_size (at the trial's best epoch), within_budget and the hyperparameters."""
        rows = []
        for trial in tuner.oracle.trials.values():
            if trial.score is None or not trial.metrics.exists("model_size"):
                continue
            size = _value_at(trial, "model_size")
            rows.append({"trial_id": trial.trial_id, "score": float(trial.score),
                         self.accuracy: _value_at(trial, self.accuracy), "model_size": int(size),
                         "within_budget": self.size_budget is None or size <= self.size_budget,
                         "hyperparameters": _active_values(trial.hyperparameters)})
        rows.sort(key=lambda row: -row["score"])
        for i, row in enumerate(rows):
            row["rank"] = i + 1
        return rows

    def get_config(self):
        return {"size_budget": self.size_budget, "size_weight": self.size_weight,
                "reference_size": self.reference_size, "accuracy": self.accuracy}

    def __str__(self):
        return (f"AccuracySizeObjective(size_budget={self.size_budget}, size_weight={self.size_weight}, "
                f"reference_size={self.reference_size}, accuracy={self.accuracy!r})")


def _positive_or_none(name, value):
    return _checks.number(name, value, low=0, low_open=True, optional=True)


def _active_values(hp):
    """The values of the hyperparameters the trial used (Keras Tuner also keeps those of inactive branches)."""
    return {item.name: hp.values[item.name] for item in hp.space if item.name in hp.values and hp.is_active(item)}


def _value_at(trial, name):
    """The metric's value at the trial's best step (its last value when not recorded there)."""
    history = trial.metrics.get_history(name)
    for observation in history:
        if observation.step == trial.best_step:
            return float(observation.mean())
    return float(trial.metrics.get_last_value(name))


class _ScoreLogs(keras.callbacks.Callback):
    def __init__(self, objective):
        super().__init__()
        self.objective = objective

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if self.objective.accuracy not in logs:
            raise ValueError(f"AccuracySizeObjective scores the metric {self.objective.accuracy!r}, which the epoch "
                             f"logs lack (they hold {sorted(logs)}); compile with metrics=['accuracy'] and pass "
                             f"validation data, or set `accuracy`.")
        size = deployed_size(self.model)
        logs["model_size"] = size
        logs["score"] = self.objective.score(logs[self.objective.accuracy], size)
