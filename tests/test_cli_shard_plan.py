"""`tfopt shard-plan MODEL.keras --mesh 2x4 [--kind model_parallel|fsdp]`: the sharding report of a saved model, in a
fresh process on the JAX backend (8 virtual CPU devices when there are not 8 accelerators); argument errors in one
line, before Keras loads."""

import os
import subprocess
import sys

import keras
import pytest

from tfopt import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "mlp.keras"
    # Named, so the paths do not depend on how many Dense layers this process made before.
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu", name="dense"),
                              keras.layers.Dense(32, name="dense_1"), keras.layers.Dense(10, name="dense_2")])
    model.compile(keras.optimizers.Adam(name="adam"), "mse")
    model.save(path)
    return str(path)


def plan(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])),
               JAX_PLATFORMS="cpu")
    env.pop("KERAS_BACKEND", None)  # shard-plan chooses JAX
    env.pop("XLA_FLAGS", None)
    return subprocess.run([sys.executable, "-m", "tfopt", "shard-plan", *args], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def hybrid(saved):
    return plan(saved, "--mesh", "2x4")


def test_the_plan_prints_each_variable_and_the_totals(hybrid, saved):
    assert hybrid.returncode == 0, hybrid.stderr[-3000:]
    lines = hybrid.stdout.splitlines()
    assert lines[0] == f"tfopt shard-plan: {saved}, --kind model_parallel, mesh 2 x 4 on 8 cpu devices"
    rows = {line.split()[0]: line for line in lines[3:] if line and not line.startswith(("mesh", "param", "opt"))}
    assert rows["dense/kernel"].split()[3:7] == ["(None,", "model)", "2,048", "8,192"]
    assert rows["dense_1/kernel"].split()[3:7] == ["(model,", "None)", "2,048", "8,192"]
    assert "replicated (dimension 1 (10) is not divisible by the 'model' axis (4))" in rows["dense_2/kernel"]
    assert rows["adam/dense_kernel_momentum"].split()[3:7] == ["(None,", "model)", "2,048", "8,192"]
    assert "mesh: batch 2 x model 4" in lines
    assert "parameters: 5,608 bytes per device of 18,088 (0.310 of the total)" in lines


def test_bad_arguments_are_one_line_before_keras_loads(saved, capsys):
    cases = (
        (["missing.keras", "--mesh", "2x4"], "shard-plan: error: argument MODEL.keras: no such file: 'missing.keras'"),
        ([saved, "--mesh", "2by4"], "shard-plan: error: argument --mesh: must be BATCHxMODEL (e.g. 2x4) or N, "
                                    "positive integers, got '2by4'"),
        ([saved, "--mesh", "8"], "shard-plan: error: argument --mesh: must be BATCHxMODEL for --kind model_parallel, "
                                 "got 8"),
        ([saved, "--mesh", "2x4", "--kind", "pipeline"], "argument --kind: invalid choice: 'pipeline'"),
    )
    for args, message in cases:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["shard-plan", *args])
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err


def test_another_backend_is_refused(saved, capsys):  # TensorFlow: the file is not backend_agnostic
    with pytest.raises(SystemExit):
        cli.main(["shard-plan", saved, "--mesh", "2x4"])
    assert ("needs the JAX backend (keras.distribution lays out variables only on JAX); got "
            f"KERAS_BACKEND={keras.backend.backend()!r}") in capsys.readouterr().err
