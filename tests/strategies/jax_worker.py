"""The processes of the multi-process JAX test: two processes on loopback, 4 virtual CPU devices each, joined by
`keras.distribution.initialize` (JAX's CPU collectives over gloo) into one (2, 4) hybrid mesh; and the same training
in one process over 8 virtual devices.

    python jax_worker.py process OUT INDEX PORT   (process INDEX of 2; the coordinator listens on localhost:PORT)
    python jax_worker.py single OUT               (one process, 8 devices, the same global batches)

Each writes its result as JSON under OUT. The mesh's batch axis runs across the processes (row i of the mesh is
process i's 4 devices), so each process feeds its half of every global batch: rows [8 i, 8 i + 8) of each batch of
16; `fit` gets the local half with batch_size=8 (`distribution.auto_shard_dataset = False`: the arrays are already
this process's part) and Keras assembles the global batch (`jax.make_array_from_process_local_data`).
"""

import json
import os
import sys

GLOBAL_BATCH, STEPS, EPOCHS, PROCESSES = 16, 4, 2, 2


def setup(devices):
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_data():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, 16)).astype("float32")
    return x, (x @ rng.normal(size=(16, 8))).astype("float32")


def build_model():
    import keras

    return keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(16),
                             keras.layers.Dense(8)])


def local_half(array, index):
    """Process `index`'s rows of every global batch, in order."""
    half = GLOBAL_BATCH // PROCESSES
    batches = array.reshape(STEPS, GLOBAL_BATCH, *array.shape[1:])
    return batches[:, index * half:(index + 1) * half].reshape(-1, *array.shape[1:])


def gathered(variable):
    """The whole value from this process's shards (a weight split over the model axis lies whole on each process's
    4 devices; `np.asarray` refuses an array that spans another process's devices)."""
    import numpy as np

    value = variable.value
    whole = np.zeros(value.shape, dtype=value.dtype)
    for shard in value.addressable_shards:
        whole[shard.index] = np.asarray(shard.data)
    return whole


def train(index=None):
    import keras

    from tfopt.strategies.get_distribution import get_distribution
    from tfopt.strategies.sharding_report import sharding_report

    keras.utils.set_random_seed(0)
    distribution = get_distribution("model_parallel", model=build_model, mesh_shape=(2, 4))
    x, y = make_data()
    batch = GLOBAL_BATCH
    if index is not None:
        x, y, batch = local_half(x, index), local_half(y, index), GLOBAL_BATCH // PROCESSES
        distribution.auto_shard_dataset = False  # each process feeds its own half, already split
    keras.utils.set_random_seed(0)
    with distribution.scope():
        model = build_model()
        model.compile(keras.optimizers.Adam(0.01), "mse")
        losses = model.fit(x, y, batch_size=batch, epochs=EPOCHS, shuffle=False, verbose=0).history["loss"]
    report = sharding_report(model)
    return {"losses": losses, "weights": [gathered(v).tolist() for v in model.weights],
            "axes": [e["axes"] for e in report["variables"]], "mesh": report["mesh"],
            "devices": len(keras.distribution.list_devices()),
            "local_devices": sorted({str(d) for v in model.weights for d in v.value.sharding.addressable_devices})}


def write(out, name, result):
    with open(os.path.join(out, name), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "single":
        setup(8)
        write(out, "single.json", train())
    else:
        index, port = int(sys.argv[3]), int(sys.argv[4])
        setup(4)
        import jax

        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        import keras

        keras.distribution.initialize(job_addresses=f"localhost:{port}", num_processes=PROCESSES, process_id=index)
        result = train(index)
        result["process_id"], result["process_count"] = jax.process_index(), jax.process_count()
        write(out, f"process-{index}.json", result)
