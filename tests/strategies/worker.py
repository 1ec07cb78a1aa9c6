"""The processes the strategy tests start (TensorFlow only): logical devices and TF_CONFIG must be set before
TensorFlow initialises, so each scenario runs in a fresh Python.

    python worker.py multi_worker OUT INDEX PORTS EPOCHS [--backup] [--sleep S]
    python worker.py reference OUT EPOCHS        (the same training in one process, one device)
    python worker.py mirrored OUT                (Mirrored over 2 logical CPUs vs OneDevice)
    python worker.py scope_all OUT               (every tfopt object under Mirrored: fit, save, load, resume)

Each writes its result as JSON under OUT.
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GLOBAL_BATCH = 16
STEPS = 8


def make_data(n=GLOBAL_BATCH * STEPS):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x @ rng.normal(size=(6, 1)) + 0.1 * rng.normal(size=(n, 1))).astype("float32")
    return x, y


def build_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])


def dataset(x, y):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH, drop_remainder=True)


def weights_of(model):
    return [w.tolist() for w in model.get_weights()]


def write(out, name, result):
    with open(os.path.join(out, name), "w") as f:
        json.dump(result, f)


def multi_worker(out, index, ports, epochs, backup=False, sleep=0.0):
    import keras

    os.environ["TF_CONFIG"] = json.dumps(
        {"cluster": {"worker": [f"localhost:{p}" for p in ports.split(",")]},
         "task": {"type": "worker", "index": index}}
    )
    from tfopt.strategies import describe_strategy, distribute_dataset, get_strategy

    strategy = get_strategy(connect_timeout=120)
    description = describe_strategy(strategy)

    class EpochFiles(keras.callbacks.Callback):
        """Marks each epoch's start and end with a file, so the test sees where training is."""

        def on_epoch_begin(self, epoch, logs=None):
            open(os.path.join(out, f"begin-{index}-{epoch}-{os.getpid()}"), "w").close()
            time.sleep(sleep)  # room for the fault test to kill a worker inside the epoch, not while saving

        def on_epoch_end(self, epoch, logs=None):
            with open(os.path.join(out, f"end-{index}-{epoch}-{os.getpid()}"), "w") as f:
                json.dump(logs, f)

    with strategy.scope():
        model = build_model()
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "mse")
    callbacks = [EpochFiles()]
    if backup:
        callbacks.insert(0, keras.callbacks.BackupAndRestore(os.path.join(out, f"backup-{index}")))
    history = model.fit(distribute_dataset(dataset(*make_data()), strategy), epochs=epochs, callbacks=callbacks,
                        verbose=0)
    write(out, f"worker-{index}.json",
          {"description": dict(description), "losses": history.history["loss"], "weights": weights_of(model)})


def reference(out, epochs):
    import keras

    model = build_model()
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), "mse")
    history = model.fit(dataset(*make_data()), epochs=epochs, verbose=0)
    write(out, "reference.json", {"losses": history.history["loss"], "weights": weights_of(model)})


def mirrored(out):
    import keras

    from tfopt.strategies import configure_devices, describe_strategy, get_strategy

    configure_devices(logical_cpus=2)
    result = {}
    for name in ("mirrored", "one_device"):
        strategy = get_strategy(name)
        with strategy.scope():
            model = build_model()
            model.compile(keras.optimizers.Adam(0.01), "mse")
        history = model.fit(dataset(*make_data()), epochs=3, verbose=0)
        result[name] = {"description": dict(describe_strategy(strategy)), "losses": history.history["loss"],
                        "weights": weights_of(model)}
    write(out, "mirrored.json", result)


def tfopt_objects():
    """name -> (make_optimizer, wrap_model): every optimizer, every schedule (inside SGD), and the compression
    wrappers (with Adam) that tfopt has."""
    import keras

    from tfopt import optimizers as o
    from tfopt import schedules as s

    sgd = keras.optimizers.SGD

    def keep(model):
        return model

    objects = {
        "RAdam": lambda: o.RAdam(0.01),
        "AdaBelief": lambda: o.AdaBelief(0.01),
        "Yogi": lambda: o.Yogi(0.01),
        "Adan": lambda: o.Adan(0.01),
        "LARS": lambda: o.LARS(0.5, trust_coefficient=0.02),
        "Prodigy": lambda: o.Prodigy(1.0),
        "ScheduleFreeSGD": lambda: o.ScheduleFreeSGD(0.05),
        "ScheduleFreeAdamW": lambda: o.ScheduleFreeAdamW(0.01),
        "Lookahead": lambda: o.Lookahead(keras.optimizers.Adam(0.01)),
        "SWA": lambda: o.SWA(keras.optimizers.Adam(0.01), start_averaging=2, average_period=2),
        "GradientCentralization": lambda: o.GradientCentralization(keras.optimizers.Adam(0.01)),
        "AdaptiveGradientClipping": lambda: o.AdaptiveGradientClipping(keras.optimizers.Adam(0.01)),
        "LinearDecay": lambda: sgd(s.LinearDecay(0.05, 20)),
        "StepDecay": lambda: sgd(s.StepDecay(0.05, 5)),
        "Warmup": lambda: sgd(s.Warmup(0.05, 5)),
        "OneCycle": lambda: sgd(s.OneCycle(0.05, 30)),
        "CyclicalLearningRate": lambda: sgd(s.CyclicalLearningRate(0.01, 0.05, 4)),
        "WarmupStableDecay": lambda: sgd(s.WarmupStableDecay(0.05, 30, 5, 10)),
        "InverseSqrt": lambda: sgd(s.InverseSqrt(0.05, 5)),
        "Sequential": lambda: sgd(s.Sequential([s.Warmup(0.05, 4), s.LinearDecay(0.05, 20)], [4])),
        "ScaledSchedule": lambda: sgd(s.ScaledSchedule(s.StepDecay(0.05, 5), 0.5)),
    }
    table = {name: (make, keep) for name, make in objects.items()}
    from tfopt import compression as c

    table["prune_low_magnitude"] = (
        lambda: keras.optimizers.Adam(0.01),
        lambda m: c.prune_low_magnitude(m, c.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=16, frequency=4)),
    )
    table["quantize_model"] = (lambda: keras.optimizers.Adam(0.01), lambda m: c.quantize_model(m))
    table["cluster_weights"] = (lambda: keras.optimizers.Adam(0.01), lambda m: c.cluster_weights(m, 4))
    from tfopt import models as tm

    table["SharpnessAwareMinimization"] = (
        lambda: keras.optimizers.SGD(0.05),
        lambda m: tm.SharpnessAwareMinimization(m),
    )
    table["SharpnessAwareMinimization+Lookahead"] = (
        lambda: o.Lookahead(keras.optimizers.Adam(0.01)),
        lambda m: tm.SharpnessAwareMinimization(m, rho=0.1, adaptive=True),
    )
    return table


def scope_all(out, names):
    import keras
    import numpy as np

    from tfopt.strategies import configure_devices, get_strategy

    configure_devices(logical_cpus=2)
    strategy = get_strategy("mirrored")
    data = dataset(*make_data())
    table = tfopt_objects()
    result = {}
    for name in names:
        make_optimizer, wrap = table[name]
        try:
            with strategy.scope():
                model = wrap(build_model())
                model.compile(make_optimizer(), "mse", jit_compile=False)
            first = model.fit(data, epochs=1, verbose=0).history["loss"]
            path = os.path.join(out, f"{name}.keras")
            model.save(path)
            with strategy.scope():
                loaded = keras.models.load_model(path)
            same_state = all(
                np.array_equal(np.asarray(a), np.asarray(b))
                for a, b in zip(model.optimizer.variables, loaded.optimizer.variables)
            ) and len(model.optimizer.variables) == len(loaded.optimizer.variables)
            resumed = loaded.fit(data, epochs=1, verbose=0).history["loss"]
            unbroken = model.fit(data, epochs=1, verbose=0).history["loss"]
            result[name] = {
                "replicas": strategy.num_replicas_in_sync,
                "losses": first + unbroken,
                "resumed": resumed,
                "same_optimizer_state": bool(same_state),
                "max_weight_difference": max(
                    float(np.max(np.abs(a - b))) for a, b in zip(model.get_weights(), loaded.get_weights())
                ),
            }
        except Exception as e:  # reported per object, so one failure names itself and the others still run
            result[name] = {"error": f"{type(e).__name__}: {e}"[:2000]}
    write(out, "scope_all.json", result)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "multi_worker":
        sleep = float(sys.argv[sys.argv.index("--sleep") + 1]) if "--sleep" in sys.argv else 0.0
        multi_worker(out, int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), "--backup" in sys.argv, sleep)
    elif mode == "reference":
        reference(out, int(sys.argv[3]))
    elif mode == "mirrored":
        mirrored(out)
    elif mode == "scope_all":
        scope_all(out, sys.argv[3].split(","))
