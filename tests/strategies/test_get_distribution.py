"""get_distribution on the JAX backend over 4 virtual CPU devices (a subprocess: the device count is fixed when JAX
starts): a Dense kernel sharded across the mesh, and training that matches the unsharded run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.backend_agnostic

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
    assert imported == {"keras", "math"}
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
    assert kind == "Argument `kind` must be one of 'data_parallel', 'model_parallel'. Received: kind='pipeline'"
    assert layout.startswith("Argument `layout_map` must be a keras.distribution.LayoutMap or a non-empty dict")
    assert mesh == ("Argument `mesh_shape` must be 1 positive integer(s) whose product is the number of devices, 4, "
                    "for kind='data_parallel'. Received: mesh_shape=(3,)")
    assert axes.startswith("Argument `layout_map` must map each regex to a tuple of axis names among")
