"""`tfopt tune` / run_tune: a real search on the digits data, end to end through the command; its output, files,
saved model and TensorBoard tags; bad input."""

import json
import os

import keras
import numpy as np
import pytest

from tfopt import cli
from tfopt.tuning import run_tune


def tags(folder):
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return set(accumulator.Tags()["tensors"])


def test_tfopt_tune_searches_prints_the_best_recipe_against_the_baseline_and_saves_it(tmp_path, capsys):
    out = tmp_path / "tune"
    assert cli.main(["tune", "--trials", "2", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    stdout = capsys.readouterr().out
    result = json.loads((out / "tune.json").read_text())
    assert len(result["trials"]) == 2 and [row["rank"] for row in result["trials"]] == [1, 2]
    assert result["recipe"] == result["trials"][0]["hyperparameters"]
    best_line = f"Best recipe (trial {result['best_trial']['trial_id']}): {result['recipe_text']}"
    assert best_line in stdout and result["recipe_text"].startswith(f"optimizer={result['recipe']['optimizer']}, ")
    assert "vs baseline: test accuracy" in stdout and "deployed size" in stdout
    assert f"TensorBoard: tensorboard --logdir {out / 'logs'}" in stdout
    assert "| baseline |" in (out / "tune.md").read_text()

    from tfopt.compression import measure_model
    from tfopt.data import load_digits

    model = keras.models.load_model(out / "best_model.keras")
    data = load_digits()
    accuracy = measure_model(model, *data.test, measure_latency=False).accuracy
    assert accuracy == pytest.approx(result["best"]["accuracy"])
    assert result["baseline"]["accuracy"] > 0.5
    assert not any("prune" in type(layer).__name__.lower() for layer in model.layers)

    logs = out / "logs"
    assert tags(logs / "baseline" / "train") == {"learning_rate"}
    assert tags(logs / "baseline" / "gradients") == {"gradient_norm/global", "gradient_norm/conv2d",
                                                      "gradient_norm/conv2d_1", "gradient_norm/dense",
                                                      "gradient_norm/dense_1"}
    assert "conv2d/kernel" in tags(logs / "baseline" / "weights")
    for row in result["trials"]:
        folder = logs / "trials" / row["trial_id"]
        assert {"score", "model_size", "val_accuracy", "_hparams_/session_start_info"} <= tags(folder / "hparams")
        assert "learning_rate" in tags(folder / "train")
        assert os.path.isdir(folder / "gradients")


def test_bad_command_line_is_one_line_and_status_2(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["tune", "--trials", "0"])
    assert raised.value.code == 2
    assert capsys.readouterr().err.strip() == "tfopt tune: error: argument --trials: must be an integer >= 1, got 0"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"trials": 0}, ValueError, "Argument `trials` must be an integer >= 1. Received: trials=0"),
        ({"epochs": 1.5}, TypeError, "Argument `epochs` must be an integer >= 1"),
        ({"tuner": "grid"}, ValueError, "Argument `tuner` must be one of 'random', 'bayesian', 'hyperband'. "
                                        "Received: tuner='grid'"),
        ({"size_budget": 0}, ValueError, "Argument `size_budget` must be a finite number > 0 or None"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, error, message):
    with pytest.raises(error) as raised:
        run_tune(str(tmp_path), **kwargs)
    assert message in str(raised.value)
    assert not np.any([name.endswith(".keras") for name in os.listdir(tmp_path)])
