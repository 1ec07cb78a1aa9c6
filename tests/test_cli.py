import json
import os
import subprocess
import sys

import pytest

from tfopt import cli, demo
from tfopt.compression.report_table import REPORT_COLUMNS


def run_tfopt(*args):
    env = dict(os.environ, COLUMNS="160")
    return subprocess.run(
        [sys.executable, "-m", "tfopt", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "report"
    result = run_tfopt("demo", "--epochs", "1", "--out", str(out), "--seed", "1")
    assert result.returncode == 0, result.stderr
    for _, title in REPORT_COLUMNS:
        assert title in result.stdout
    assert "baseline" in result.stdout and "tf.data pipeline" in result.stdout
    assert "Traceback" not in result.stderr
    assert f"TensorBoard: tensorboard --logdir {out / 'logs'}" in result.stdout
    assert (out / "logs" / "baseline" / "train").is_dir()

    report = json.loads((out / "report.json").read_text())
    stages = report["stages"]
    assert [s["stage"] for s in stages] == [name for name, _ in demo.STAGES]
    assert stages[0]["stage"] == "baseline" and stages[0]["accuracy"] > 0.3  # one epoch triples chance
    for row in stages:
        if row["stage"] == "channels pruned":  # a smaller dense model: half the channels, a quarter of the weights
            assert row["params"] == 13_178 and row["nonzero_params"] > 0.98 * row["params"]
            assert 0.15 < row["accuracy"] <= 1.0 and 0 < row["gzip_bytes"] < row["size_bytes"]
            continue
        if row["stage"] == "distilled student":  # a 5.3x smaller student, distilled from the baseline
            assert row["params"] == 9_802 and 0.15 < row["accuracy"] <= 1.0 and row["latency_ms"] > 0
            continue
        assert row["params"] == 51_946
        if "pruned" in row["stage"]:  # 80% of the weights pruned (biases and small layers stay dense)
            assert row["nonzero_params"] < 0.25 * row["params"]
        else:  # dense; int8 rounding zeroes a few hundred small weights
            assert row["nonzero_params"] > 0.98 * row["params"]
        # One epoch: every stage beats chance (10%) clearly; Prodigy's step size is still growing then.
        assert 0.15 < row["accuracy"] <= 1.0
        assert 0 < row["gzip_bytes"] < row["size_bytes"]
        assert row["latency_ms"] > 0
    assert report["meta"]["epochs"] == 1 and report["meta"]["seed"] == 1
    assert 0.3 < report["meta"]["baseline_val_accuracy"] <= 1.0
    assert stages[0]["epochs_to_baseline"] == 1  # one epoch: the baseline reaches its own final value there
    (schedule,) = [row for row in stages if row["stage"] == "schedule"]
    assert 1e-5 <= schedule["peak_learning_rate"] <= 1.0 and schedule["epochs"] == 1
    markdown = (out / "report.md").read_text()
    assert "| baseline |" in markdown and "| tf.data pipeline |" in markdown
    assert (out / "accuracy_vs_size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_quiet_demo_prints_only_the_table(tmp_path, monkeypatch, capsys):
    # What --quiet prints is under test, not the stages (test_demo_end_to_end runs them all): two stages suffice.
    monkeypatch.setattr(demo, "STAGES", demo.STAGES[:2])
    assert cli.main(["demo", "--epochs", "1", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    before_table, table = out.split("tfopt demo: before / after")
    assert "epochs" not in before_table and "stages" not in before_table  # no progress bars, no stage banner
    assert "baseline" in table and "tf.data pipeline" in table and "schedule" not in table
    assert (tmp_path / "report.json").is_file()


def test_help_describes_every_command_and_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--epochs", "--seed", "--quiet", "report.json", "digits"):
        assert option in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--epochs", "0"], "argument --epochs: must be an integer >= 1, got 0"),
        (["demo", "--epochs", "two"], "argument --epochs: must be an integer >= 1, got 'two'"),
        (["demo", "--seed", "-3"], "argument --seed: must be an integer in [0, 4294967295], got -3"),
        (["demo", "--seed", "4294967296"], "argument --seed: must be an integer in [0, 4294967295], got 4294967296"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["compres"], "invalid choice: 'compres'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("tfopt")


def test_unwritable_out_exits_2_without_traceback(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_tfopt("demo", "--out", str(blocker / "report"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("tfopt demo: error: argument --out: cannot write to")
    assert not (tmp_path / "a-file" / "report").exists()


def test_the_console_script_runs_the_cli():
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="tfopt")
    assert script.value == "tfopt.cli:main"
    assert script.load() is cli.main


def test_version_matches_the_package_metadata(capsys):
    from importlib.metadata import version

    import tfopt

    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"tfopt {tfopt.__version__}" == f"tfopt {version('tfopt')}"


def test_profile_end_to_end_on_the_demo_model(tmp_path):
    out = tmp_path / "profile"
    result = run_tfopt("profile", "--steps", "4", "--rounds", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "defaults" in result.stdout and "Best:" in result.stdout and "Speedup" in result.stdout
    saved = json.loads((out / "profile.json").read_text())
    names = [row["name"] for row in saved["rows"]]
    assert names[0] == "defaults" and "steps_per_execution_8" in names and "tfopt_pipeline" in names
    assert saved["meta"]["steps"] == 4 and saved["meta"]["batch_size"] == 32
    assert saved["best"]["candidate"] in names and 0.0 <= saved["input"]["waiting_fraction"] <= 1.0
    assert (out / "profile.md").read_text().startswith("# tfopt profile")
    assert (out / "speedups.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_profile_of_a_saved_model_on_npz_data(tmp_path):
    import keras
    import numpy as np

    x = np.random.default_rng(0).normal(size=(128, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    np.savez(tmp_path / "data.npz", x=x, y=y)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.save(tmp_path / "m.keras")
    result = run_tfopt(
        "profile", "--model", str(tmp_path / "m.keras"), "--data", str(tmp_path / "data.npz"), "--steps", "2",
        "--rounds", "3", "--quiet", "--out", str(tmp_path / "out"),
    )
    assert result.returncode == 0, result.stderr
    saved = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert saved["meta"]["steps"] == 2 and all(row["loss"] > 0 for row in saved["rows"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["profile", "--rounds", "2"], "argument --rounds: must be an integer >= 3, got 2"),
        (["profile", "--steps", "0"], "argument --steps: must be an integer >= 1, got 0"),
        (["profile", "--data", "/nonexistent/data.npz"], "argument --data: cannot read '/nonexistent/data.npz'"),
        (["profile", "--model", "/nonexistent/m.keras"], "argument --model: cannot load '/nonexistent/m.keras'"),
    ],
)
def test_profile_bad_arguments_exit_2_with_one_line(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("tfopt profile: error:")


def test_profile_npz_without_x_and_y_exits_2(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "bad.npz", images=np.zeros((4, 2)))
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["profile", "--data", str(tmp_path / "bad.npz"), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "must hold arrays named 'x' and 'y'" in capsys.readouterr().err


def test_profile_and_fast_demo_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["profile", "--help"])
    text = capsys.readouterr().out
    for option in ("--model", "--data", "--out", "--steps", "--rounds", "profile.json", "speedups.png"):
        assert option in text
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    assert "--fast" in capsys.readouterr().out


def _compress_inputs(folder):
    """A small trained model and an .npz of its data, as a user would bring them."""
    import keras
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(300, 6, 6, 2)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > x[..., 1].mean(axis=(1, 2))).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:240], y[:240], epochs=3, verbose=0)
    model.save(folder / "model.keras")
    np.savez(folder / "data.npz", x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:])
    np.savez(folder / "partial.npz", x_train=x[:240], y_train=y[:240], x_test=x[240:])


def test_compress_end_to_end(tmp_path):
    _compress_inputs(tmp_path)
    out = tmp_path / "out"
    result = run_tfopt("compress", str(tmp_path / "model.keras"), "--data", str(tmp_path / "data.npz"),
                       "--sparsity", "0.5", "--quantize", "int8", "--epochs", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tfopt compress: before / after" in result.stdout and "original (.keras)" in result.stdout
    assert "pruned 50% + int8 QAT (.tflite)" in result.stdout
    for name in ("compressed.keras", "compressed.tflite", "report.json", "report.md"):
        assert (out / name).stat().st_size > 0
    report = json.loads((out / "report.json").read_text())
    assert report["stages"][-1]["format"] == "tflite" and report["stages"][-1]["sparsity"] > 0.4


def test_compress_names_missing_arrays_in_one_line(tmp_path):
    _compress_inputs(tmp_path)
    result = run_tfopt("compress", str(tmp_path / "model.keras"), "--data", str(tmp_path / "partial.npz"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("tfopt compress: error: argument --data:")
    assert "lacks the array(s) y_test" in result.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compress", "m.keras"], "the following arguments are required: --data"),
        (["--sparsity", "1.5"], "argument --sparsity: must be a number in (0, 1), got 1.5"),
        (["--structure", "2-4"], "argument --structure: must be N:M with 0 < N < M"),
        (["--quantize", "int4"], "argument --quantize: invalid choice: 'int4'"),
        (["--clusters", "1"], "argument --clusters: must be an integer >= 2, got 1"),
        (["compress", "missing.keras", "--data", "d.npz"], "argument MODEL.keras: no .keras file at 'missing.keras'"),
    ],
)
def test_compress_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    if argv[0] != "compress":
        argv = ["compress", "m.keras", "--data", "d.npz", *argv]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("tfopt compress")


def test_strategy_option_names_the_strategy_or_fails_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--strategy", "tpu", "--out", str(tmp_path), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("tfopt demo: error: argument --strategy: Argument `tpu` must name a TPU for name='tpu'")
    with pytest.raises(SystemExit):
        cli.main(["demo", "--strategy", "ring"])
    assert "argument --strategy: invalid choice: 'ring'" in capsys.readouterr().err


def test_compress_teacher_flag_distills_from_the_input_model(tmp_path, capsys):
    _compress_inputs(tmp_path)
    out = tmp_path / "out"
    code = cli.main(["compress", str(tmp_path / "model.keras"), "--data", str(tmp_path / "data.npz"),
                     "--sparsity", "0.5", "--epochs", "1", "--teacher", "--out", str(out)])
    assert code == 0
    assert "pruned 50% (.keras)" in capsys.readouterr().out
    assert json.loads((out / "report.json").read_text())["meta"]["teacher"] == "distilled"


def test_compress_channels_returns_a_smaller_dense_model(tmp_path, capsys):
    import keras

    _compress_inputs(tmp_path)
    out = tmp_path / "out"
    code = cli.main(["compress", str(tmp_path / "model.keras"), "--data", str(tmp_path / "data.npz"),
                     "--channels", "0.5", "--epochs", "1", "--out", str(out)])
    assert code == 0
    assert "50% channels pruned (.tflite)" in capsys.readouterr().out
    small = keras.models.load_model(out / "compressed.keras")
    assert small.layers[0].filters == 4 and small.count_params() == (18 * 4 + 4) + (64 * 2 + 2)
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["channels"] == 0.5
    assert report["stages"][-2]["flops"] * 2 == report["stages"][0]["flops"]  # conv 16*18*4 + 64*2 vs 16*18*8 + 128*2


def test_compress_channels_out_of_range_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compress", "m.keras", "--data", "d.npz", "--channels", "1.0"])
    assert exit_info.value.code == 2
    assert "argument --channels: must be a number in (0, 1), got 1.0" in capsys.readouterr().err
