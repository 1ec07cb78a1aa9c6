"""Distribution strategies on this machine (TensorFlow backend, CPU): throughput ratios measured side by side in one
run, and the time `get_strategy` itself takes.

(a) MirroredStrategy over 2 logical CPU devices against MirroredStrategy over 1, the same model, data and global
    batch, `fit` epochs interleaved in one process.
(b) MultiWorkerMirroredStrategy with 2 local worker processes (loopback TF_CONFIG, gRPC collectives) against one
    process on one device, for the same global batch. The one-process run is timed inside worker 0 between its
    multi-worker epochs (worker 1 waits at its next collective meanwhile), so both sides are interleaved rounds of
    the same process and see the same machine.
(c) `get_strategy(name)` against the bare `tf.distribute` constructor it wraps, for every kind this machine has
    ("tpu": its error path), and the time a 2-worker cluster takes to form inside `get_strategy`.

Logical devices and TF_CONFIG must be set before TensorFlow initialises, so every part runs in a fresh Python
started by `main`. Examples/s count the global batch: `batch * steps / epoch seconds`. `--quick` runs fewer rounds
and writes to a temporary folder (it checks the script; its numbers are not results).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import harness  # noqa: E402

GLOBAL_BATCH = 256
STEPS = 16
WIDTHS = (256, 512, 512, 10)
TIMEOUT = 600

THROUGHPUT_COLUMNS = harness.COLUMNS + (
    ("candidate_examples_per_s", "Candidate (examples/s)"),
    ("reference_examples_per_s", "Reference (examples/s)"),
    ("throughput_ratio", "Throughput ratio"),
)
FACTORY_COLUMNS = harness.COLUMNS[:3] + (
    ("candidate_us", "Candidate (us)"),
    ("reference_us", "Reference (us)"),
    ("ratio", "Ratio"),
)


def _counts(quick):
    """(repeats, warm-up rounds) of the throughput comparisons."""
    return (3, 1) if quick else (15, 2)


def _data():
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, WIDTHS[0])).astype("float32")
    y = rng.integers(0, WIDTHS[-1], len(x)).astype("int32")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH, drop_remainder=True).repeat()


def _model(strategy=None):
    import contextlib

    import keras

    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        keras.utils.set_random_seed(0)
        layers = [keras.Input((WIDTHS[0],))]
        layers += [keras.layers.Dense(w, activation="relu") for w in WIDTHS[1:-1]] + [keras.layers.Dense(WIDTHS[-1])]
        model = keras.Sequential(layers)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _epoch(model, data):
    return lambda: model.fit(data, epochs=1, steps_per_epoch=STEPS, shuffle=False, verbose=0)


def _with_throughput(row):
    examples = GLOBAL_BATCH * STEPS
    row["candidate_examples_per_s"] = examples / (row["candidate_ms"] / 1e3)
    row["reference_examples_per_s"] = examples / (row["reference_ms"] / 1e3)
    row["throughput_ratio"] = 1.0 / row["ratio"]
    row["global_batch"] = GLOBAL_BATCH
    row["steps_per_epoch"] = STEPS
    return row


def _time_factory(name, candidate, reference, repeats=30):
    row = harness.compare("factory time", candidate, reference, candidate_name=f"get_strategy({name!r})",
                          reference_name="bare tf.distribute constructor", repeats=repeats, warmup=2)
    row["candidate_us"] = row["candidate_ms"] * 1e3
    row["reference_us"] = row["reference_ms"] * 1e3
    return row


def local_part(out, quick):
    """(a) and (c) in this process: 2 logical CPUs, then the Mirrored comparison and the factory timings."""
    import tensorflow as tf

    from tfopt.strategies import configure_devices, get_strategy

    configure_devices(logical_cpus=2)
    repeats, warmup = _counts(quick)
    data = _data()
    one = _model(get_strategy("mirrored", devices=["/cpu:0"]))
    two = _model(get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"]))
    mirrored = _with_throughput(harness.compare(
        "fit epoch, Mirrored on logical CPUs", _epoch(two, data), _epoch(one, data),
        candidate_name="Mirrored, 2 logical CPUs", reference_name="Mirrored, 1 logical CPU", repeats=repeats,
        warmup=warmup,
    ))

    def expect_error(name):
        def call():
            try:
                get_strategy(name)
            except ValueError:
                return
            raise AssertionError(f"get_strategy({name!r}) should fail on this machine")
        return call

    factory_repeats = 5 if quick else 30
    factory = [
        _time_factory("one_device", lambda: get_strategy("one_device"),
                      lambda: tf.distribute.OneDeviceStrategy("/cpu:0"), factory_repeats),
        _time_factory("mirrored", lambda: get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"]),
                      lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), factory_repeats),
        # Without TF_CONFIG: one task over this host's devices (TensorFlow warns that collectives were not set up
        # at start-up; the comparison is of the factory's own cost).
        _time_factory("multi_worker_mirrored", lambda: get_strategy("multi_worker_mirrored"),
                      tf.distribute.MultiWorkerMirroredStrategy, factory_repeats),
        _time_factory("auto", get_strategy, lambda: tf.distribute.OneDeviceStrategy("/cpu:0"), factory_repeats),
    ]
    tpu = harness.compare("factory time, error path", expect_error("tpu"),
                          lambda: tf.config.list_physical_devices("TPU"),
                          candidate_name="get_strategy('tpu'), no TPU: ValueError",
                          reference_name="tf.config.list_physical_devices('TPU')", repeats=factory_repeats, warmup=2)
    tpu["candidate_us"], tpu["reference_us"] = tpu["candidate_ms"] * 1e3, tpu["reference_ms"] * 1e3
    factory.append(tpu)
    with open(out, "w") as f:
        json.dump({"mirrored": mirrored, "factory": factory}, f)


def worker_part(out, index, quick):
    """(b) in one worker of the loopback cluster (TF_CONFIG is set by `main`); worker 0 writes the row."""
    from tfopt.strategies import distribute_dataset, get_strategy

    start = time.perf_counter()
    strategy = get_strategy(connect_timeout=120)
    formed = time.perf_counter() - start
    repeats, warmup = _counts(quick)
    multi = _model(strategy)
    multi_epoch = _epoch(multi, distribute_dataset(_data(), strategy))
    if index == 0:
        single_epoch = _epoch(_model(), _data())
    else:
        def single_epoch():  # worker 1 has no one-process run; it goes straight on to the next collective epoch
            return None
    row = harness.compare(
        "fit epoch, 2 worker processes vs 1 process", multi_epoch, single_epoch,
        candidate_name="MultiWorkerMirrored, 2 local workers", reference_name="1 process, 1 device",
        repeats=repeats, warmup=warmup,
    )
    if index == 0:
        row = _with_throughput(row)
        row["replicas"] = strategy.num_replicas_in_sync
    with open(out, "w") as f:
        json.dump({"row": row, "cluster_forms_s": formed}, f)


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _python(args, env=None):
    env = dict(env or os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(processes):
    """Waits for all; kills every one on failure or timeout, so a cluster that breaks cannot hang the benchmark."""
    deadline = time.monotonic() + TIMEOUT
    try:
        for p in processes:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if p.returncode != 0:
                raise RuntimeError(f"benchmark process {p.args[2:]} failed ({p.returncode}):\n{err[-4000:]}")
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()


def _load(path):
    with open(path) as f:
        return json.load(f)


def main(argv=()):
    argv = list(argv)
    quick = "--quick" in argv
    flag = ["--quick"] if quick else []
    tmp = tempfile.mkdtemp(prefix="strategies_bench_")

    local = os.path.join(tmp, "local.json")
    _finish([_python(["--local", local, *flag])])
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(_python(["--worker", str(index), os.path.join(tmp, f"worker-{index}.json"), *flag], env))
    _finish(workers)

    measured = _load(local)
    worker_results = [_load(os.path.join(tmp, f"worker-{i}.json")) for i in range(2)]
    formed = ", ".join(f"{r['cluster_forms_s']:.2f} s" for r in worker_results)
    rows = [measured["mirrored"], worker_results[0]["row"]]
    out_dir = tmp if quick else harness.RESULTS_DIR
    meta = dict(harness.machine(), backend="tensorflow")
    text = harness.write_results(
        "strategies", rows, title="Distribution strategies: fit throughput (TensorFlow, CPU)", out_dir=out_dir,
        columns=THROUGHPUT_COLUMNS, meta=meta,
        notes=f"One `fit` epoch of a {WIDTHS[0]}-{'-'.join(map(str, WIDTHS[1:]))} MLP (Adam), global batch "
              f"{GLOBAL_BATCH}, {STEPS} steps, timed in interleaved rounds; Ratio < 1 (throughput ratio > 1): the "
              "distributed side is faster. Logical CPU devices and local workers share this machine's cores, so "
              "these figures show the overhead of the strategy's machinery; speed-ups need real devices or hosts.",
    )
    text += "\n" + harness.write_results(
        "strategies_factory", measured["factory"], title="get_strategy: time of the factory itself",
        out_dir=out_dir, columns=FACTORY_COLUMNS, meta=meta,
        notes="Each kind against the bare `tf.distribute` constructor it wraps (2 logical CPUs; "
              "'multi_worker_mirrored' without TF_CONFIG is one task; 'tpu' is the error path, no TPU here). "
              f"In a 2-worker loopback cluster, `get_strategy()` returned after {formed} (worker 0, worker 1), "
              "most of it waiting for the other process to start.",
    )
    return text


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--local":
        local_part(args[1], "--quick" in args)
    elif args and args[0] == "--worker":
        worker_part(args[2], int(args[1]), "--quick" in args)
    else:
        print(main(args))
