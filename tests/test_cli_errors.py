"""The `tfopt` command's common error path: a user's mistake is one line and exit status 2 before any file is
written; an unexpected error says it is internal (exit 1), and `--debug` shows its traceback."""

import importlib
import os
import re

import keras
import numpy as np
import pytest

from tfopt import cli


def _status(argv):
    """The exit status of `tfopt argv` run in this process (argparse's errors exit through SystemExit)."""
    try:
        return cli.main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.save(str(folder / "ok.keras"))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 4)).astype("float32"), np.arange(24) % 3
    np.savez(folder / "ok.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    np.savez(folder / "wrong_shape.npz", x_train=x[:, :3], y_train=y, x_test=x[:, :3], y_test=y)
    np.savez(folder / "labels.npz", x_train=x, y_train=y + 5, x_test=x, y_test=y)
    nan = x.copy()
    nan[2, 1] = np.nan
    np.savez(folder / "nan.npz", x_train=nan, y_train=y, x_test=x, y_test=y)
    (folder / "garbage.keras").write_bytes(b"not a keras archive at all")
    (folder / "zip.keras").write_bytes(b"PK\x03\x04 truncated zip")
    return folder


@pytest.mark.parametrize(("model", "data", "message"), [
    ("garbage.keras", "ok.npz", r"argument MODEL.keras: Argument `model` must be a Keras archive \(.keras\) file"),
    ("zip.keras", "ok.npz", r"Argument `model`: '.*zip.keras' is not a Keras model Keras can load"),
    ("ok.keras", "wrong_shape.npz", r"Argument `data\['x_train'\]` must have the model's input shape \(None, 4\)"
                                    r".*Received: data\['x_train'\] of shape \(24, 3\)"),
    ("ok.keras", "labels.npz", r"Argument `data\['y_train'\]` must hold class indices in the \[0, 2\] range"),
    ("ok.keras", "nan.npz", r"Argument `data\['x_train'\]` must hold finite numbers.*1 NaN or inf"),
])
def test_compress_refuses_bad_input_in_one_line_and_writes_nothing(files, tmp_path, capsys, model, data, message):
    out = tmp_path / "out"
    status = _status(["compress", str(files / model), "--data", str(files / data), "--epochs", "1",
                      "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("tfopt compress: error: ")
    assert "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()


def test_an_internal_error_says_so_and_debug_shows_the_traceback(files, tmp_path, capsys, monkeypatch):
    pipeline = importlib.import_module("tfopt.pipelines.compress")

    def broken(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(pipeline, "compress", broken)
    argv = ["compress", str(files / "ok.keras"), "--data", str(files / "ok.npz"), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "internal error" in err and "KeyError" in err and "--debug" in err
    with pytest.raises(KeyError, match="oops"):
        cli.main([*argv, "--debug"])


def test_a_run_that_passes_its_checks_writes_its_files(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["compress", str(files / "ok.keras"), "--data", str(files / "ok.npz"), "--epochs", "1",
                     "--out", str(out)]) == 0
    assert {"compressed.keras", "report.json"} <= set(os.listdir(out))
