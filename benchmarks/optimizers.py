"""Optimizer speed, as ratios measured side by side in one run.

(a) TensorFlow backend, CPU: the `fit` step time of each tfopt optimizer as a ratio to Keras Adam, on a ~1M- and a
    ~10M-parameter MLP (synthetic data, batch 64). Target: <= 1.15x for the element-wise optimizers. TensorFlow runs
    on one thread (intra- and inter-op): on a small shared machine two thread pools contending for two cores make
    the step time bimodal (calls at ~60 or ~140 ms), which swamps the optimizer's share. `--part-a` runs only (a).
(b) JAX backend, jitted update of 100M float32 parameters (24 matrices 2048x2048): each tfopt optimizer's
    `stateless_apply` against optax's implementation of the same algorithm, both with donated state, and the
    ratio to the memory-bandwidth bound: bytes the update must read and write per parameter divided by the copy
    bandwidth measured in the same run. Target: <= 1.0x optax. It runs on whatever device JAX has, in a subprocess
    with KERAS_BACKEND=jax; for the GPU figures run the subprocess's command on the GPU machine and format its JSON
    here: `python benchmarks/optimizers.py --jax-update out.json` there, then
    `python benchmarks/optimizers.py --write-b out.json` here.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.harness import compare, write_results  # noqa: E402

# name, factory of the tfopt optimizer (called with the `keras` module), element-wise or not.
TFOPT = [
    ("RAdam", lambda k, o: o.RAdam(1e-3), True),
    ("AdaBelief", lambda k, o: o.AdaBelief(1e-3), True),
    ("Yogi", lambda k, o: o.Yogi(1e-3), True),
    ("Adan", lambda k, o: o.Adan(1e-3), True),
    ("ScheduleFreeSGD", lambda k, o: o.ScheduleFreeSGD(1e-2), True),
    ("ScheduleFreeAdamW", lambda k, o: o.ScheduleFreeAdamW(1e-3), True),
    ("Lookahead(Adam)", lambda k, o: o.Lookahead(k.optimizers.Adam(1e-3)), True),
    ("SWA(Adam)", lambda k, o: o.SWA(k.optimizers.Adam(1e-3), start_averaging=0, average_period=10), True),
    ("LARS", lambda k, o: o.LARS(1e-1), False),
    ("Prodigy", lambda k, o: o.Prodigy(1.0), False),
    ("GradientCentralization(Adam)", lambda k, o: o.GradientCentralization(k.optimizers.Adam(1e-3)), False),
    ("AdaptiveGradientClipping(Adam)", lambda k, o: o.AdaptiveGradientClipping(k.optimizers.Adam(1e-3)), False),
]


# label, layer widths, steps per timed call: a timed call of ~0.4 s or more for each model (a call of ~70 ms
# on the small one is swamped by the scheduler's jitter on a shared two-core machine).
MLPS = (("~1M-param MLP", (512, 1024, 512), 50), ("~10M-param MLP", (1024, 2048, 2048, 2048), 10))


def fit_step_ratios(repeats=7, mlps=MLPS, threads=1):
    import tensorflow as tf

    if threads:  # only possible before TensorFlow runs its first op
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    import numpy as np

    from tfopt import optimizers
    from tfopt.data import make_dataset

    rows = []
    for label, widths, steps in mlps:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(64 * steps, widths[0])).astype("float32")
        y = rng.integers(0, 10, len(x)).astype("int32")
        data = make_dataset(x, y, batch_size=64).repeat()

        def model_with(optimizer, widths=widths):
            keras.utils.set_random_seed(0)
            layers = [keras.Input((widths[0],))]
            layers += [keras.layers.Dense(w, activation="relu") for w in widths[1:]] + [keras.layers.Dense(10)]
            model = keras.Sequential(layers)
            model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            return model

        reference = model_with(keras.optimizers.Adam(1e-3))
        for name, make, elementwise in TFOPT:
            model = model_with(make(keras, optimizers))
            row = compare(
                f"fit step, {label}",
                lambda m=model, d=data, s=steps: m.fit(d, epochs=1, steps_per_epoch=s, shuffle=False, verbose=0),
                lambda r=reference, d=data, s=steps: r.fit(d, epochs=1, steps_per_epoch=s, shuffle=False, verbose=0),
                candidate_name=name,
                reference_name="keras Adam",
                repeats=repeats,
                warmup=2,
            )
            row["params"] = reference.count_params()
            row["element_wise"] = elementwise
            rows.append(row)
    return rows


# name, tfopt factory, optax factory, bytes read + written per float32 parameter by one update.
def _jax_cases(keras, o, optax):
    return [
        ("AdamW (Keras built-in)", lambda: keras.optimizers.AdamW(1e-3, weight_decay=1e-4),
         lambda: optax.adamw(1e-3, weight_decay=1e-4), 28),
        ("RAdam", lambda: o.RAdam(1e-3), lambda: optax.radam(1e-3), 28),
        ("AdaBelief", lambda: o.AdaBelief(1e-3), lambda: optax.adabelief(1e-3), 28),
        ("Yogi", lambda: o.Yogi(1e-3), lambda: optax.yogi(1e-3), 28),
        ("Adan", lambda: o.Adan(1e-3), lambda: optax.adan(1e-3), 44),
        ("LARS", lambda: o.LARS(1e-1), lambda: optax.lars(1e-1), 20),
        ("Prodigy", lambda: o.Prodigy(1.0), lambda: optax.contrib.prodigy(1.0), 36),
        ("ScheduleFreeSGD", lambda: o.ScheduleFreeSGD(1e-2), lambda: optax.contrib.schedule_free_sgd(1e-2), 20),
        ("ScheduleFreeAdamW", lambda: o.ScheduleFreeAdamW(1e-3),
         lambda: optax.contrib.schedule_free_adamw(1e-3), 28),
        ("Lookahead(Adam)", lambda: o.Lookahead(keras.optimizers.Adam(1e-3)),
         lambda: optax.lookahead(optax.adam(1e-3), sync_period=6, slow_step_size=0.5), 28),
    ]


def _time_update(name, make_keras, make_optax, shapes, grads, repeats, chain):
    """One tfopt optimizer against its optax twin, both jitted with donated state; returns the comparison row.

    Both sides take and return their state in the same order, so that each donated input buffer is reused by the
    output of the same shape and role (Keras's `stateless_apply(opt_vars, grads, train_vars)` returns
    `(train_vars, opt_vars)`: jitted and donated as it is, JAX pairs the returned parameters with the donated slots
    and XLA inserts a copy of every matrix). Each timed call chains `chain` updates and waits once, so the host's
    dispatch overlaps the device's work, as in a training loop.
    """
    import jax
    import jax.numpy as jnp
    import keras
    import optax

    params = sum(int(jnp.size(g)) for g in grads)
    variables = [keras.Variable(jnp.zeros(s, "float32")) for s in shapes]
    opt = make_keras()
    opt.build(variables)

    def keras_update(train, opt_vars, grads_):
        return opt.stateless_apply(opt_vars, grads_, train)

    keras_step = jax.jit(keras_update, donate_argnums=(0, 1))
    k_state = [[jnp.copy(v.value) for v in variables], [jnp.copy(v.value) for v in opt.variables]]

    def run_keras():
        for _ in range(chain):
            k_state[:] = keras_step(*k_state, grads)
        jax.block_until_ready(k_state)

    tx = make_optax()
    p = [jnp.zeros(s, "float32") for s in shapes]
    if name.startswith("Lookahead"):
        p = optax.LookaheadParams.init_synced(p)
    # Own buffers for every leaf: some optax states start as the parameters themselves (schedule-free's z).
    o_state = [jax.tree.map(jnp.copy, p), jax.tree.map(jnp.copy, tx.init(p))]

    def optax_update(params_, state_, grads_):
        updates, state_ = tx.update(grads_, state_, params_)
        return optax.apply_updates(params_, updates), state_

    optax_step = jax.jit(optax_update, donate_argnums=(0, 1))

    def run_optax():
        for _ in range(chain):
            o_state[:] = optax_step(*o_state, grads)
        jax.block_until_ready(o_state)

    row = compare(
        f"jitted update, {params / 1e6:.0f}M params",
        run_keras,
        run_optax,
        candidate_name=f"tfopt {name}" if "Keras" not in name else name,
        reference_name=f"optax {name.split(' ')[0].lower()}",
        repeats=repeats,
        warmup=2,
    )
    for key in ("candidate_ms", "reference_ms"):
        row[key] /= chain
    for key, step, state in (("tfopt", keras_step, k_state), ("optax", optax_step, o_state)):
        row[f"{key}_bytes_per_param"] = step.lower(*state, grads).compile().cost_analysis()["bytes accessed"] / params
    return row


def copy_bandwidth(params, repeats, chain):
    """Bytes read + written per second by a jitted, donated `x * 1.0001 + 1` over one buffer of `params` floats."""
    import jax
    import jax.numpy as jnp

    step = jax.jit(lambda x: x * 1.0001 + 1.0, donate_argnums=0)
    buf = [jnp.zeros((params,), "float32")]

    def run():
        for _ in range(chain):
            buf[0] = step(buf[0])
        jax.block_until_ready(buf)

    from tfopt._timing import time_call

    seconds = time_call(run, repeats=repeats, warmup=2).median / chain
    return 8 * params / seconds


CHAIN = {False: 2, True: 20}  # chained updates per timed call: on CPU, on GPU


def jax_update_ratios(matrices=24, size=2048, repeats=7, chain=None):
    """Runs under KERAS_BACKEND=jax (see main)."""
    import jax
    import jax.numpy as jnp
    import keras
    import optax

    from tfopt import optimizers

    platform = jax.devices()[0].platform
    chain = chain or CHAIN[platform == "gpu"]
    shapes = [(size, size)] * matrices
    key = jax.random.PRNGKey(0)
    grads = [jax.random.normal(jax.random.fold_in(key, i), s, "float32") * 1e-3 for i, s in enumerate(shapes)]
    params = sum(int(jnp.size(g)) for g in grads)
    bandwidth = copy_bandwidth(params, repeats, chain)

    rows = []
    for name, make_keras, make_optax, bytes_per_param in _jax_cases(keras, optimizers, optax):
        row = _time_update(name, make_keras, make_optax, shapes, grads, repeats, chain)
        bound = bytes_per_param * params / bandwidth
        row["bandwidth_bound_ms"] = bound * 1e3
        row["candidate_vs_bound"] = row["candidate_ms"] / 1e3 / bound
        row["device"] = platform if platform != "gpu" else jax.devices()[0].device_kind
        rows.append(row)
    return rows, bandwidth


COLUMNS_A = (
    ("benchmark", "Benchmark"),
    ("candidate", "Optimizer"),
    ("element_wise", "Element-wise"),
    ("candidate_ms", "Optimizer (ms)"),
    ("reference_ms", "Keras Adam (ms)"),
    ("ratio", "Ratio"),
    ("ratio_iqr", "Ratio IQR"),
)
COLUMNS_B = (
    ("benchmark", "Benchmark"),
    ("candidate", "tfopt"),
    ("reference", "optax"),
    ("candidate_ms", "tfopt (ms)"),
    ("reference_ms", "optax (ms)"),
    ("ratio", "Ratio to optax"),
    ("ratio_iqr", "Ratio IQR"),
    ("tfopt_bytes_per_param", "tfopt bytes/param"),
    ("optax_bytes_per_param", "optax bytes/param"),
    ("bandwidth_bound_ms", "Bandwidth bound (ms)"),
    ("candidate_vs_bound", "tfopt / bound"),
    ("device", "Device"),
)


def main():
    return part_a() + "\n" + part_b()


def part_a():
    return write_results(
        "optimizers",
        fit_step_ratios(),
        title="Optimizers (a): fit step time on CPU, TensorFlow backend, ratio to Keras Adam",
        notes=f"{' and '.join(f'{steps} steps ({label})' for label, _, steps in MLPS)} per timed call, "
        "interleaved with Keras Adam on an identical model; TensorFlow on one thread (intra- and inter-op). Target "
        "for the element-wise optimizers: ratio <= 1.15.",
        columns=COLUMNS_A,
    )


def part_b(from_json=None):
    if from_json is None:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "jax.json")
            env = dict(os.environ, KERAS_BACKEND="jax")
            subprocess.run([sys.executable, os.path.abspath(__file__), "--jax-update", out], check=True, env=env)
            with open(out) as f:
                result = json.load(f)
    else:
        with open(from_json) as f:
            result = json.load(f)
    # GPU runs (from the device machine) and CPU runs (here, without one) are kept apart: one does not overwrite
    # the other's table.
    on_cpu = result["rows"][0]["device"] == "cpu"
    return write_results(
        "optimizers_jax_update_cpu" if on_cpu else "optimizers_jax_update",
        result["rows"],
        title=f"Optimizers (b): jitted update of 100M float32 parameters, JAX backend{' on CPU' if on_cpu else ''}, "
        "ratio to optax",
        notes=f"Ran with KERAS_BACKEND=jax on {result['rows'][0]['device']} (jax {result.get('jax', '?')}, optax "
        f"{result.get('optax', '?')}); both sides jitted with donated state, {result.get('chain', '?')} chained "
        "updates per timed call; bytes/param is XLA's cost analysis of each compiled update. Measured copy bandwidth "
        f"{result['bandwidth'] / 1e9:.1f} GB/s (read + write). The bound is "
        "bytes per parameter (e.g. 28 for Adam: read p, g, m, v; write p, m, v) times parameters over that "
        "bandwidth. Target: ratio to optax <= 1.0.",
        columns=COLUMNS_B,
        meta=None if from_json is None else {
            "device": result["rows"][0]["device"],
            "keras backend": "jax",
            "jax": result.get("jax"),
            "optax": result.get("optax"),
            "date": time.strftime("%Y-%m-%d", time.localtime(os.path.getmtime(from_json))),
        },
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--jax-update":
        rows, bandwidth = jax_update_ratios(
            matrices=int(os.environ.get("TFOPT_BENCH_MATRICES", 24)), size=int(os.environ.get("TFOPT_BENCH_SIZE", 2048))
        )
        import jax
        import optax

        with open(sys.argv[2], "w") as f:
            json.dump({"rows": rows, "bandwidth": bandwidth, "jax": jax.__version__, "optax": optax.__version__,
                       "chain": CHAIN[jax.devices()[0].platform == "gpu"]}, f)
    elif len(sys.argv) == 3 and sys.argv[1] == "--write-b":
        print(part_b(sys.argv[2]))
    elif sys.argv[1:] == ["--part-a"]:
        print(part_a())
    else:
        print(main())
