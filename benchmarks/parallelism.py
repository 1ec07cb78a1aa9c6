"""Model, hybrid and fully sharded parallelism (JAX backend, 8 virtual CPU devices): memory per device as ratios to
one device, for each kind of `tfopt.strategies.get_distribution`.

Per device: parameter bytes, optimizer-state bytes (both from `sharding_report`: the shard each device holds) and
the bytes of the compiled train step (XLA's memory analysis of the jitted step: arguments plus temporaries, i.e.
weights, optimizer state, the batch shard, gradients and activations), each divided by the same figure for the
model on one device. These are byte counts from the compiler, not timings: they do not depend on the machine's
load. No speed is measured: on CPU the 8 virtual devices share this machine's cores, and a lent GPU machine has one
device, so neither says anything about the speed of a real mesh.

The device count is fixed when JAX starts, so `main` measures in a fresh Python. `--quick` writes to a temporary
folder (it checks the script; its numbers are not results).
"""

import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import harness  # noqa: E402

DEVICES = 8
WIDTHS = (512, 2048, 2048, 512)
BATCH = 64
KINDS = (
    ("one device", None, {}),
    ("data_parallel", (8,), {"kind": "data_parallel"}),
    ("data_parallel, ZeRO-1", (8,), {"kind": "data_parallel", "shard_optimizer_state": True}),
    ("fsdp (ZeRO-3)", (8,), {"kind": "fsdp"}),
    ("model_parallel", (1, 8), {"kind": "model_parallel", "mesh_shape": (1, 8)}),
    ("hybrid", (2, 4), {"kind": "model_parallel", "mesh_shape": (2, 4)}),
    ("hybrid", (4, 2), {"kind": "model_parallel", "mesh_shape": (4, 2)}),
)
COLUMNS = (
    ("kind", "Kind"),
    ("mesh", "Mesh"),
    ("parameter_ratio", "Parameters / device (x one device)"),
    ("optimizer_ratio", "Optimizer state / device (x one device)"),
    ("step_ratio", "Train step / device (x one device)"),
    ("step_mib", "Train step / device (MiB)"),
)


def _build():
    import keras

    layers = [keras.Input((WIDTHS[0],))]
    layers += [keras.layers.Dense(w, activation="relu") for w in WIDTHS[1:-1]] + [keras.layers.Dense(WIDTHS[-1])]
    return keras.Sequential(layers)


def measure(out):
    import contextlib

    import keras
    import numpy as np

    from tfopt.strategies.get_distribution import get_distribution
    from tfopt.strategies.sharding_report import sharding_report

    assert len(keras.distribution.list_devices()) == DEVICES
    x = np.random.default_rng(0).normal(size=(BATCH, WIDTHS[0])).astype("float32")
    reports = []
    for label, mesh, kwargs in KINDS:
        distribution = get_distribution(**kwargs, **({"model": _build} if kwargs.get("kind") == "model_parallel"
                                                      else {})) if kwargs else None
        keras.utils.set_random_seed(0)
        with distribution.scope() if distribution is not None else contextlib.nullcontext():
            model = _build()
            model.compile(keras.optimizers.Adam(1e-3), "mse")
            report = sharding_report(model, batch=(x, x))
        reports.append({"kind": label, "mesh": "x".join(map(str, mesh)) if mesh else "1",
                        "parameter_bytes": report["parameter_bytes_per_device"],
                        "optimizer_bytes": report["optimizer_bytes_per_device"],
                        "step_bytes": report["step_bytes_per_device"]})
    one = reports[0]
    rows = [dict(r, parameter_ratio=r["parameter_bytes"] / one["parameter_bytes"],
                 optimizer_ratio=r["optimizer_bytes"] / one["optimizer_bytes"],
                 step_ratio=r["step_bytes"] / one["step_bytes"], step_mib=r["step_bytes"] / 2**20) for r in reports]
    with open(out, "w") as f:
        json.dump({"rows": rows, "machine": dict(harness.machine(), devices=f"{DEVICES} virtual CPU")}, f)


def main(argv=()):
    quick = "--quick" in list(argv)
    tmp = tempfile.mkdtemp(prefix="parallelism_bench_")
    out = os.path.join(tmp, "measured.json")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="2",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={DEVICES}",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", out], env=env, check=True, timeout=900)
    with open(out) as f:
        measured = json.load(f)
    return harness.write_results(
        "parallelism", measured["rows"], title="Parallelism: memory per device against one device (JAX, 8 devices)",
        out_dir=tmp if quick else harness.RESULTS_DIR, columns=COLUMNS, meta=measured["machine"],
        notes=f"A {'-'.join(map(str, WIDTHS))} MLP (ReLU) with Adam, global batch {BATCH}, float32; "
              "`get_distribution` for each kind (model_parallel and hybrid: the automatic Megatron layout), "
              "bytes per device from `sharding_report` (the train step: XLA's compiled memory analysis, "
              "arguments + temporaries), each divided by the same model on one device. Mesh (batch x model). "
              "Byte counts, not timings; no speed is claimed: the 8 virtual CPU devices share this machine's "
              "cores, and the lent GPU machine has one device.",
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        measure(sys.argv[2])
    else:
        print(main(sys.argv[1:]))
