"""get_distribution on the JAX backend over 4 and 8 virtual CPU devices (subprocesses: the device count is fixed when
JAX starts): a Dense kernel sharded across the mesh, training that matches the unsharded run under every kind, bytes
per device under fsdp and ZeRO-1; and, in this process on TensorFlow, the error for the kinds TensorFlow ignores.

The JAX tests run JAX in processes of their own whatever this process's backend, so they are not marked
backend_agnostic: `make test` runs them once, in its TensorFlow pass, beside the TensorFlow-backend error test."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.strategies.jax_runner import run_scenario
from tfopt.strategies.get_distribution import get_distribution

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = r"""
import contextlib, json, sys
import numpy as np, keras
from tfopt.strategies.get_distribution import get_distribution

x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
y = x @ np.random.default_rng(1).normal(size=(8, 4)).astype("float32")

def train(distribution):
    keras.utils.set_random_seed(0)
    with distribution.scope() if distribution else contextlib.nullcontext():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="wide"),
                                  keras.layers.Dense(4, name="out")])
        model.compile(keras.optimizers.SGD(0.05), "mse")
        losses = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0).history["loss"]
    return model, losses

result = {"tensorflow_imported": "tensorflow" in sys.modules, "devices": len(keras.distribution.list_devices())}
for kind, args in (("model_parallel", {"layout_map": {".*wide/kernel": (None, "model")}, "mesh_shape": (2, 2)}),
                   ("data_parallel", {})):
    model, losses = train(get_distribution(kind, **args))
    sharding = model.get_layer("wide").kernel.value.sharding
    result[kind] = {"spec": [str(a) for a in sharding.spec], "mesh": dict(sharding.mesh.shape),
                    "shard_shapes": sorted({tuple(s.data.shape)
                                            for s in model.get_layer("wide").kernel.value.addressable_shards}),
                    "losses": losses, "weights": [w.tolist() for w in model.get_weights()]}
_, result["unsharded_losses"] = train(None)
result["unsharded_weights"] = [w.tolist() for w in _.get_weights()]
errors = []
for kwargs in ({"kind": "pipeline"}, {"kind": "model_parallel"}, {"kind": "data_parallel", "mesh_shape": (3,)},
               {"kind": "model_parallel", "layout_map": {"a": ("rows",)}}):
    try:
        get_distribution(**kwargs)
    except ValueError as e:
        errors.append(str(e))
result["errors"] = errors
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def result():
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=4",
               PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
    process = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-4000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_get_distribution_module_imports_only_keras(result):
    import ast
    import importlib

    module = importlib.import_module("tfopt.strategies.get_distribution")
    with open(module.__file__) as f:
        tree = ast.parse(f.read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"keras", "math", "tfopt"}
    tfopt_modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert tfopt_modules == {"tfopt", "tfopt.strategies._sharded_distributions", "tfopt.strategies.auto_layout_map",
                             "tfopt.strategies.check_layout_map"}  # all Keras-only modules
    assert result["devices"] == 4


def test_model_parallel_shards_the_dense_kernel_across_the_mesh(result):
    parallel = result["model_parallel"]
    assert parallel["mesh"] == {"batch": 2, "model": 2}
    assert parallel["spec"] == ["None", "model"]
    assert parallel["shard_shapes"] == [[8, 8]]  # 16 columns over the 2 devices of the model axis


def test_data_parallel_replicates_the_kernel(result):
    assert result["data_parallel"]["shard_shapes"] == [[8, 16]]


@pytest.mark.parametrize("kind", ["model_parallel", "data_parallel"])
def test_distributed_training_matches_the_unsharded_run(result, kind):
    np.testing.assert_allclose(result[kind]["losses"], result["unsharded_losses"], rtol=1e-5)
    for a, b in zip(result[kind]["weights"], result["unsharded_weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bad_arguments_name_themselves(result):
    kind, layout, mesh, axes = result["errors"]
    assert kind == ("Argument `kind` must be one of 'data_parallel', 'model_parallel', 'fsdp'. Received: "
                    "kind='pipeline'")
    assert layout == ("Argument `layout_map` must be a keras.distribution.LayoutMap or a non-empty dict from "
                      "variable-path regex to a tuple of mesh axis names, or `model` must be given (a built model or "
                      "a function that builds it) for an automatic layout, for kind='model_parallel'. Received: "
                      "layout_map=None, model=None")
    assert mesh == ("Argument `mesh_shape` must be 1 positive integer(s) whose product is the number of devices, 4, "
                    "for kind='data_parallel'. Received: mesh_shape=(3,)")
    assert axes.startswith("Argument `layout_map` must map each regex to a tuple of axis names among")


# In a JAX process with 8 virtual CPU devices: "fsdp" (8,) and ZeRO-1 on the MLP, the attention block and the CNN.

MODELS = ("mlp", "attention", "cnn")


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    return run_scenario("data_sharded", tmp_path_factory.mktemp("data_sharded"))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("kind", ["fsdp", "zero1", "data_parallel"])
def test_sharded_data_parallel_training_matches_one_device(sharded, name, kind):
    single, run = sharded[f"{name}/single"], sharded[f"{name}/{kind}"]
    np.testing.assert_allclose(run["losses"], single["losses"], rtol=1e-5)
    assert len(run["weights"]) == len(single["weights"])
    for a, b in zip(run["weights"], single["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_fsdp_holds_an_eighth_of_every_large_variable_and_its_optimizer_slots(sharded, name):
    report = sharded[f"{name}/fsdp"]["report"]
    assert report["mesh"] == {"batch": 8}
    large = [e for e in report["variables"] if np.prod(e["shape"]) >= 1024]
    assert large and all(e["axes"].count("batch") == 1 and e["bytes_per_device"] * 8 == e["total_bytes"]
                         for e in large)
    small = [e for e in report["variables"] if np.prod(e["shape"]) < 1024]
    assert all(e["axes"] == [None] * len(e["shape"]) and e["bytes_per_device"] == e["total_bytes"] for e in small)
    slots = {e["path"].split("/", 1)[1]: e for e in report["optimizer_variables"]}  # without "adam_N/"
    for e in large:  # Adam's m and v follow their weight
        for slot in ("momentum", "velocity"):
            entry = slots[f"{e['path'].replace('/', '_')}_{slot}"]
            assert entry["axes"] == e["axes"] and entry["bytes_per_device"] * 8 == entry["total_bytes"]


def test_zero1_keeps_parameters_whole_and_an_eighth_of_the_optimizer_state(sharded):
    report = sharded["mlp/zero1"]["report"]  # every MLP dimension divides by 8
    assert report["parameter_bytes_per_device"] == report["parameter_bytes"]
    assert all(e["axes"] == [None] * len(e["shape"]) for e in report["variables"])
    scalars = [e for e in report["optimizer_variables"] if e["shape"] == []]
    assert len(scalars) == 2  # iteration, learning_rate: replicated
    scalar_bytes = sum(e["total_bytes"] for e in scalars)
    assert (report["optimizer_bytes_per_device"] - scalar_bytes) * 8 == report["optimizer_bytes"] - scalar_bytes
    assert report["optimizer_bytes"] == 2 * report["parameter_bytes"] + scalar_bytes


@pytest.mark.parametrize("kind", ["fsdp", "zero1"])
def test_a_sharded_model_saves_whole_and_loads_with_its_layouts(sharded, kind):
    saved = sharded[f"saved/{kind}"]
    assert saved["count"] == 6 + 2 + 12  # weights, Adam's iteration and learning rate, m and v of each weight
    assert saved["max_diff"] == 0.0
    assert saved["same_layouts"]
    trained = sharded[f"mlp/{kind}"]["report"]
    for key in ("parameter_bytes_per_device", "optimizer_bytes_per_device"):
        assert saved["loaded_report"][key] == trained[key]


def test_plain_data_parallel_replicates_everything(sharded):
    report = sharded["mlp/data_parallel"]["report"]
    assert report["parameter_bytes_per_device"] == report["parameter_bytes"]
    assert report["optimizer_bytes_per_device"] == report["optimizer_bytes"]


def test_errors_name_the_argument(sharded):
    fsdp_model, zero1_mp, missed, bad_model, bad_flag, axes = sharded["errors"]
    assert fsdp_model[0] == "ValueError" and fsdp_model[1].startswith(
        "Argument `model` must be None for kind='fsdp' (it is used only by kind='model_parallel'). Received: model=")
    assert zero1_mp == ["ValueError", "Argument `shard_optimizer_state` must be False for kind='model_parallel' "
                        "(it applies to kind='data_parallel'; 'fsdp' shards the optimizer state already). Received: "
                        "shard_optimizer_state=True"]
    assert missed[0] == "ValueError" and "patterns that match no variable: ['up/kernel']" in missed[1]
    assert bad_model == ["TypeError", "Argument `model` must be a built keras.Model or a zero-argument function "
                         "that builds one. Received: model=3 of type int"]
    assert bad_flag == ["TypeError", "Argument `shard_optimizer_state` must be a bool. Received: "
                        "shard_optimizer_state=1 of type int"]
    assert axes == ["ValueError", "Argument `axis_names` must be 2 distinct non-empty strings (batch, model). "
                    "Received: axis_names=('batch', 'batch')"]


@pytest.mark.parametrize("kwargs", [{"kind": "model_parallel"}, {"kind": "fsdp"},
                                    {"kind": "data_parallel", "shard_optimizer_state": True}])
def test_tensorflow_backend_refuses_layouts_it_would_ignore(kwargs):
    with pytest.raises(ValueError) as error:
        get_distribution(**kwargs)
    message = str(error.value)
    assert message.startswith(f"Argument `kind`: kind={kwargs['kind']!r}")
    assert "needs the JAX backend (KERAS_BACKEND=jax)" in message
    assert "would train fully replicated, ignoring every layout" in message
    assert message.endswith("For data parallelism on TensorFlow use tfopt.strategies.get_strategy().")
