import json
import os
import subprocess
import sys

import pytest

from tfopt import cli, demo


def run_tfopt(*args):
    env = dict(os.environ, COLUMNS="160")
    return subprocess.run(
        [sys.executable, "-m", "tfopt", *args], capture_output=True, text=True, env=env, timeout=600
    )


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "report"
    result = run_tfopt("demo", "--epochs", "1", "--out", str(out), "--seed", "1")
    assert result.returncode == 0, result.stderr
    for _, title in demo.REPORT_COLUMNS:
        assert title in result.stdout
    assert "baseline" in result.stdout and "tf.data pipeline" in result.stdout
    assert "Traceback" not in result.stderr

    report = json.loads((out / "report.json").read_text())
    stages = report["stages"]
    assert [s["stage"] for s in stages] == [name for name, _ in demo.STAGES]
    assert stages[0]["stage"] == "baseline"
    for row in stages:
        assert row["params"] == 51_946 and row["nonzero_params"] == 51_946
        assert 0.3 < row["accuracy"] <= 1.0  # one epoch already triples chance (10%)
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


def test_quiet_demo_prints_only_the_table(tmp_path):
    result = run_tfopt("demo", "--epochs", "1", "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "epochs" not in result.stdout.split("tfopt demo: before / after")[0]
    assert "baseline" in result.stdout


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
