"""The JAX processes of the model-parallel tests: the device count is fixed when JAX starts, so each scenario runs
in a fresh Python with 8 virtual CPU devices and prints its result as one JSON line.

    python jax_parallel.py model_parallel OUT   (auto layouts on three models, rebuilt unnamed; save and load)
    python jax_parallel.py data_sharded OUT     (fsdp and ZeRO-1 on the same models)
    python jax_parallel.py report OUT           (sharding_report: bytes, the compiled step, the table)
"""

import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import contextlib  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfopt.strategies.get_distribution import get_distribution  # noqa: E402
from tfopt.strategies.sharding_report import sharding_report  # noqa: E402

EPOCHS, BATCH, SAMPLES = 3, 16, 64


def mlp():
    return keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(32),
                             keras.layers.Dense(32)])


def attention_block():
    tokens = keras.Input((8,), dtype="int32")
    h = keras.layers.Embedding(64, 32)(tokens)
    h = keras.layers.LayerNormalization()(keras.layers.Add()([h, keras.layers.MultiHeadAttention(4, 8)(h, h)]))
    f = keras.layers.Dense(32)(keras.layers.Dense(64, activation="gelu")(h))
    h = keras.layers.GlobalAveragePooling1D()(keras.layers.Add()([h, f]))
    return keras.Model(tokens, keras.layers.Dense(8)(h))


def cnn():
    return keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                             keras.layers.Conv2D(16, 3), keras.layers.Flatten(), keras.layers.Dense(8)])


MODELS = {"mlp": mlp, "attention": attention_block, "cnn": cnn}


def data(name):
    rng = np.random.default_rng(0)
    if name == "attention":
        x = rng.integers(0, 64, size=(SAMPLES, 8)).astype("int32")
    elif name == "cnn":
        x = rng.normal(size=(SAMPLES, 8, 8, 3)).astype("float32")
    else:
        x = rng.normal(size=(SAMPLES, 32)).astype("float32")
    out = 32 if name == "mlp" else 8
    return x, rng.normal(size=(SAMPLES, out)).astype("float32")


def train(name, distribution):
    """Builds (seeded, unnamed layers), compiles and fits under `distribution` (None: one device)."""
    x, y = data(name)
    keras.utils.set_random_seed(0)
    with distribution.scope() if distribution is not None else contextlib.nullcontext():
        model = MODELS[name]()
        model.compile(keras.optimizers.Adam(0.01), "mse")
        losses = model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0).history["loss"]
        report = sharding_report(model)
    return model, {"losses": losses, "weights": [w.tolist() for w in model.get_weights()],
                   "paths": [v.path for v in model.weights], "report": dict(report)}


def model_parallel(out):
    result = {"devices": len(keras.distribution.list_devices())}
    for name, build in MODELS.items():
        _, result[f"{name}/single"] = train(name, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            distribution = get_distribution("model_parallel", model=build, mesh_shape=(2, 4))
        layout_map = distribution._layout_map
        result[f"{name}/layout_keys"] = {k: list(layout_map[k].axes) for k in layout_map}
        result[f"{name}/warnings"] = [str(w.message) for w in caught]
        model, result[f"{name}/model_parallel"] = train(name, distribution)
        if name == "mlp":  # pure model parallelism: mesh (1, 8)
            _, result["mlp/model_parallel_1x8"] = train(name, get_distribution("model_parallel", model=build,
                                                                                  mesh_shape=(1, 8)))
        if name == "mlp":
            path = os.path.join(out, "mlp.keras")
            x, _ = data(name)
            expected = model.predict(x, verbose=0)
            model.save(path)
            loaded_plain = keras.models.load_model(path)
            with distribution.scope():
                loaded = keras.models.load_model(path)
                sharded_prediction = loaded.predict(x, verbose=0)
            result["saved"] = {
                "plain_max_diff": float(np.abs(loaded_plain.predict(x, verbose=0) - expected).max()),
                "sharded_max_diff": float(np.abs(sharded_prediction - expected).max()),
                "weights_diff": max(float(np.abs(a - b).max()) for a, b in zip(loaded.get_weights(),
                                                                               model.get_weights())),
                "plain_weights_diff": max(float(np.abs(a - b).max()) for a, b in zip(loaded_plain.get_weights(),
                                                                                     model.get_weights())),
                "optimizer_diff": max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                                      for a, b in zip(loaded.optimizer.variables, model.optimizer.variables)),
                "report": dict(sharding_report(loaded)),
            }
    # A Dense(10) over a model axis of 4: replicated, said so.
    keras.utils.set_random_seed(0)

    def narrow():
        return keras.Sequential([keras.Input((16,)), keras.layers.Dense(10), keras.layers.Dense(16)])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distribution = get_distribution("model_parallel", model=narrow, mesh_shape=(2, 4))
    with distribution.scope():
        model = narrow()
    report = sharding_report(model, layout_map=distribution._layout_map)
    result["narrow"] = {"warnings": [str(w.message) for w in caught], "report": dict(report), "table": str(report)}
    return result


def save_and_load(model, distribution, path):
    """Saves a sharded model and loads it back under its distribution: values and layouts of weights and slots."""
    model.save(path)
    with distribution.scope():
        loaded = keras.models.load_model(path)
    pairs = list(zip(model.weights + model.optimizer.variables, loaded.weights + loaded.optimizer.variables))
    return {"max_diff": max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in pairs),
            "same_layouts": all(a.value.sharding.is_equivalent_to(b.value.sharding, len(a.shape)) for a, b in pairs),
            "count": len(pairs), "loaded_report": dict(sharding_report(loaded))}


def data_sharded(out):
    result = {"devices": len(keras.distribution.list_devices())}
    for name in MODELS:
        _, result[f"{name}/single"] = train(name, None)
        for kind, distribution in (("fsdp", get_distribution("fsdp")),
                                   ("zero1", get_distribution("data_parallel", shard_optimizer_state=True))):
            model, result[f"{name}/{kind}"] = train(name, distribution)
            if name == "mlp":
                result[f"saved/{kind}"] = save_and_load(model, distribution, os.path.join(out, f"{kind}.keras"))
        _, result[f"{name}/data_parallel"] = train(name, get_distribution("data_parallel"))
    errors = []
    for kwargs in ({"kind": "fsdp", "model": mlp}, {"kind": "model_parallel", "shard_optimizer_state": True},
                   {"kind": "model_parallel", "layout_map": {"up/kernel": (None, "model")}, "model": mlp,
                    "mesh_shape": (2, 4)},
                   {"kind": "model_parallel", "model": 3},
                   {"kind": "data_parallel", "shard_optimizer_state": 1},
                   {"kind": "model_parallel", "mesh_shape": (2, 4), "axis_names": ("batch", "batch"), "model": mlp}):
        try:
            get_distribution(**kwargs)
            errors.append(None)
        except (TypeError, ValueError) as e:
            errors.append([type(e).__name__, str(e)])
    result["errors"] = errors
    return result


def device_bytes(variables):
    """Bytes each device really holds: the sizes of the arrays in every variable's addressable shards."""
    held = {}
    for variable in variables:
        for shard in variable.value.addressable_shards:
            held[str(shard.device)] = held.get(str(shard.device), 0) + shard.data.nbytes
    return held


def report(out):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 512)).astype("float32")

    def wide_mlp():
        return keras.Sequential([keras.Input((512,)), keras.layers.Dense(2048, activation="relu"),
                                 keras.layers.Dense(512)])

    result = {}
    for label, distribution in (("single", None),
                                ("hybrid", get_distribution("model_parallel", model=wide_mlp, mesh_shape=(2, 4))),
                                ("fsdp", get_distribution("fsdp")),
                                ("zero1", get_distribution("data_parallel", shard_optimizer_state=True)),
                                ("data_parallel", get_distribution("data_parallel"))):
        with distribution.scope() if distribution is not None else contextlib.nullcontext():
            model = wide_mlp()
            model.compile(keras.optimizers.Adam(1e-3), "mse", metrics=["mae"])  # metrics built by the report
            before = [w.copy() for w in model.get_weights()]
            rep = sharding_report(model, batch=(x, x))
            unchanged = all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
        result[label] = {"report": dict(rep), "weights_unchanged": unchanged, "table": str(rep),
                         "device_bytes": device_bytes(model.weights), "slot_device_bytes":
                         device_bytes(model.optimizer.variables)}
    return result


if __name__ == "__main__":
    scenario, out = sys.argv[1], sys.argv[2]
    print(json.dumps({"model_parallel": model_parallel, "data_sharded": data_sharded, "report": report}[scenario](out)))
