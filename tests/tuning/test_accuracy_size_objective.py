"""AccuracySizeObjective: the score formula by hand, the ranking of a real (grid) search, the callback's logs, and
bad input."""

import math

import keras
import keras_tuner
import numpy as np
import pytest

from tfopt.tuning import AccuracySizeObjective, deployed_size

pytestmark = pytest.mark.backend_agnostic


def test_accuracy_only_within_the_budget_and_smaller_first_over_it():
    objective = AccuracySizeObjective(size_budget=1000)
    assert objective.score(0.9, 1000) == pytest.approx(0.9)
    assert objective.score(0.2, 10) == pytest.approx(0.2)
    # Over budget: 0 + (a - 1) - 1 - log2(s / B), below every model within budget.
    assert objective.score(0.99, 2000) == pytest.approx(-0.01 - 1 - 1)
    assert objective.score(0.99, 4000) == pytest.approx(-0.01 - 1 - 2)
    assert objective.score(0.0, 1000) > objective.score(1.0, 1001)


def test_size_weight_pays_per_halving_relative_to_the_reference():
    objective = AccuracySizeObjective(size_weight=0.05, reference_size=4096)
    assert objective.score(0.9, 4096) == pytest.approx(0.9)
    assert objective.score(0.9, 1024) == pytest.approx(0.9 + 2 * 0.05)
    assert objective.score(0.9, 8192) == pytest.approx(0.9 - 0.05)
    both = AccuracySizeObjective(size_budget=2048, size_weight=0.05, reference_size=4096)
    lowest = -0.05 * math.log2(2048 / 4096)
    assert both.score(0.5, 2048) == pytest.approx(0.5 + 0.05)
    assert both.score(1.0, 4096) == pytest.approx(lowest + 0.0 - 1.0 - 1.0)
    assert both.score(1.0, 4096) < both.score(0.0, 2048)


TRIALS = {0: (0.95, 4000), 1: (0.93, 900), 2: (0.80, 500), 3: (0.99, 1500)}


class GridOfResults(keras_tuner.GridSearch):
    def run_trial(self, trial, *args, **kwargs):
        accuracy, size = TRIALS[trial.hyperparameters.Int("i", 0, 3)]
        return {"val_accuracy": accuracy, "model_size": size,
                "score": self.oracle.objective.score(accuracy, size)}


def test_rank_orders_the_trials_of_a_search_by_score(tmp_path):
    objective = AccuracySizeObjective(size_budget=1000)
    tuner = GridOfResults(objective=objective, max_trials=4, directory=tmp_path, project_name="p", overwrite=True)
    tuner.search(verbose=0)
    rows = objective.rank(tuner)
    assert [(row["rank"], row["hyperparameters"]["i"]) for row in rows] == [(1, 1), (2, 2), (3, 3), (4, 0)]
    assert rows[0] | {"trial_id": None} == {"rank": 1, "trial_id": None, "score": pytest.approx(0.93),
                                           "val_accuracy": pytest.approx(0.93), "model_size": 900,
                                           "within_budget": True, "hyperparameters": {"i": 1}}
    assert [row["within_budget"] for row in rows] == [True, True, False, False]
    assert tuner.get_best_hyperparameters()[0].values["i"] == 1


def test_callback_adds_model_size_and_score_to_the_epoch_logs():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.default_rng(0).normal(size=(16, 4)).astype("float32"), np.arange(16) % 3
    objective = AccuracySizeObjective(size_weight=0.1, reference_size=100, accuracy="accuracy")
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[objective.callback()])
    size = deployed_size(model)
    assert history.history["model_size"] == [size]
    assert history.history["score"][0] == pytest.approx(history.history["accuracy"][0] - 0.1 * math.log2(size / 100))
    missing = AccuracySizeObjective()
    with pytest.raises(ValueError, match="AccuracySizeObjective scores the metric 'val_accuracy', which the epoch"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[missing.callback()])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"size_budget": 0}, ValueError, "Argument `size_budget` must be a finite number > 0 or None. Received: "
                                         "size_budget=0"),
        ({"size_budget": -5.0}, ValueError, "Received: size_budget=-5.0"),
        ({"size_weight": -1}, ValueError, "Argument `size_weight` must be a finite number >= 0"),
        ({"reference_size": 0}, ValueError, "Argument `reference_size` must be a finite number > 0 or None"),
        ({"accuracy": ""}, TypeError, "Argument `accuracy` must be the name of an epoch-log metric"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, message):
    with pytest.raises(error) as raised:
        AccuracySizeObjective(**kwargs)
    assert message in str(raised.value)


def test_a_size_weight_without_a_reference_cannot_score():
    with pytest.raises(ValueError, match="needs `reference_size` when `size_weight` > 0"):
        AccuracySizeObjective(size_weight=0.1).score(0.9, 100)
