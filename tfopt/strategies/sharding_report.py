"""`sharding_report`: what each device holds of a model's weights and optimizer state, and of its train step.

Keras only at import; the compiled step's memory (with `batch=`) needs the JAX backend and imports JAX there.
"""

import math

import keras
import numpy as np

from tfopt.strategies._structural_layout_map import StructuralLayoutMap
from tfopt.strategies._variables import unique_variables


class ShardingReport(dict):
    """The report as a dict (see `sharding_report`); `str()` is a table, one row per variable."""

    def __str__(self):
        rows = [("variable", "shape", "mesh axes", "bytes/device", "total bytes")]
        for entry in self["variables"] + self["optimizer_variables"]:
            axes = entry["axes"]
            layout = "replicated" if all(a is None for a in axes) else "(" + ", ".join(map(str, axes)) + ")"
            if entry.get("note"):
                layout = f"{layout} ({entry['note']})"
            rows.append((entry["path"], str(tuple(entry["shape"])), layout, f"{entry['bytes_per_device']:,}",
                         f"{entry['total_bytes']:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                 for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        mesh = " x ".join(f"{k} {v}" for k, v in self["mesh"].items()) or "one device"
        lines.append("")
        lines.append(f"mesh: {mesh}")
        for key, label in (("parameter", "parameters"), ("optimizer", "optimizer state")):
            total, per_device = self[f"{key}_bytes"], self[f"{key}_bytes_per_device"]
            share = f" ({per_device / total:.3f} of the total)" if total else ""
            lines.append(f"{label}: {per_device:,} bytes per device of {total:,}{share}")
        if self.get("step_bytes_per_device") is not None:
            lines.append(f"train step (arguments + temporaries, one device): {self['step_bytes_per_device']:,} bytes")
        return "\n".join(lines)


def sharding_report(model, batch=None, *, layout_map=None):
    """Per variable: where it landed and how many bytes each device holds; totals; optionally the train step's.

    Bytes per device of a variable are its shard's: `prod(shard shape) * itemsize`, where the shard shape divides
    each dimension by the sizes of the mesh axes it is split over; a replicated variable holds all its bytes on
    every device. `parameter_bytes` sums the model's weights, `optimizer_bytes` the optimizer's variables (0 while
    the optimizer is not built); the `_per_device` totals sum the shards one device holds.

    With `batch=(x, y)` (one global batch, JAX backend, a compiled model), `step_bytes_per_device` is the memory
    of the model's train step compiled by XLA for the current distribution (or one device without one):
    `argument_size_in_bytes + temp_size_in_bytes` of JAX's compiled memory analysis, per device (weights,
    optimizer state, the batch shard, gradients and activations). To compile that step the report builds the
    optimizer and evaluates the model once on `batch` (which builds the compiled metrics); it trains nothing.

    Args:
        model: a built `keras.Model`, created under the distribution to report on (or none).
        batch: None, or a tuple (x, y) of arrays: one global batch.
        layout_map: the map from `auto_layout_map` the model was laid out with, or None: the reason each
            variable it left replicated is printed beside it (found by position, so a rebuilt model's paths
            match). Defaults to None.

    Returns:
        A `ShardingReport` (a dict): "variables" and "optimizer_variables" (lists of {"path", "shape", "axes",
        "bytes_per_device", "total_bytes"}), "mesh" ({axis: size}), "parameter_bytes",
        "parameter_bytes_per_device", "optimizer_bytes", "optimizer_bytes_per_device", "step_bytes_per_device"
        (None without `batch`). `str()` of it is a table.

    References:
        - Xu et al., 2021, "GSPMD: General and Scalable Parallelization for ML Computation Graphs",
          https://arxiv.org/abs/2105.04663
    """
    if not isinstance(model, keras.Model) or not model.built:
        raise TypeError(f"Argument `model` must be a built keras.Model. Received: model={model!r} of type "
                        f"{type(model).__name__}")
    if layout_map is not None and not isinstance(layout_map, StructuralLayoutMap):
        raise TypeError(f"Argument `layout_map` must be a map from auto_layout_map, or None. Received: "
                        f"layout_map={layout_map!r} of type {type(layout_map).__name__}")
    notes = {}
    if layout_map is not None:
        for path, structural in layout_map.structural_paths([v.path for v in model.weights]).items():
            reference = layout_map.reference_for_structure(structural)
            if reference in layout_map.replicated:
                notes[path] = layout_map.replicated[reference]
    if batch is not None:
        if not isinstance(batch, tuple) or len(batch) != 2:
            raise TypeError(f"Argument `batch` must be None or a tuple (x, y) of arrays. Received: batch of type "
                            f"{type(batch).__name__}")
        if keras.backend.backend() != "jax":
            raise ValueError("Argument `batch` needs the JAX backend (the step's memory is JAX's compiled memory "
                             f"analysis). Received: batch=(x, y) on the {keras.backend.backend()!r} backend")
        if getattr(model, "optimizer", None) is None:
            raise ValueError("Argument `model` must be compiled (with an optimizer and a loss) when `batch` is "
                             "given. Received: an uncompiled model")
    optimizer = getattr(model, "optimizer", None)
    if batch is not None:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        # The compiled metrics are built on first use; one evaluation on the batch builds them (it changes no
        # weight) so that the step below has its whole state.
        model.evaluate(*batch, batch_size=len(batch[0]), verbose=0)
    mesh = {}
    variables = [_entry(v, mesh, notes) for v in unique_variables(model.weights)]
    optimizer_variables = ([_entry(v, mesh, {}) for v in optimizer.variables]
                           if optimizer is not None and optimizer.built else [])
    report = ShardingReport(
        variables=variables,
        optimizer_variables=optimizer_variables,
        mesh=mesh,
        parameter_bytes=sum(e["total_bytes"] for e in variables),
        parameter_bytes_per_device=sum(e["bytes_per_device"] for e in variables),
        optimizer_bytes=sum(e["total_bytes"] for e in optimizer_variables),
        optimizer_bytes_per_device=sum(e["bytes_per_device"] for e in optimizer_variables),
        step_bytes_per_device=None if batch is None else _step_bytes(model, batch),
    )
    return report


def _entry(variable, mesh, replicated):
    shape = tuple(int(s) for s in variable.shape)
    itemsize = np.dtype(keras.backend.standardize_dtype(variable.dtype)).itemsize
    axes, shard = (None,) * len(shape), shape
    sharding = getattr(getattr(variable, "value", None), "sharding", None)
    if sharding is not None and hasattr(sharding, "shard_shape"):
        shard = tuple(sharding.shard_shape(shape))
        spec = getattr(sharding, "spec", None)
        if spec is not None:
            axes = tuple(spec) + (None,) * (len(shape) - len(spec))
            mesh.update({str(k): int(v) for k, v in sharding.mesh.shape.items()})
    entry = {"path": variable.path, "shape": list(shape), "axes": [a if a is None else str(a) for a in axes],
             "bytes_per_device": math.prod(shard) * itemsize, "total_bytes": math.prod(shape) * itemsize}
    if variable.path in replicated:
        entry["note"] = replicated[variable.path]
    return entry




def _step_bytes(model, batch):
    import jax

    distribution = keras.distribution.distribution()
    data = tuple(np.asarray(a) for a in batch)
    if distribution is not None:
        data = tuple(jax.device_put(a, distribution.get_data_layout(a.shape).backend_layout) for a in data)
    groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables,
              model.metrics_variables)
    state = tuple([v.value for v in group] for group in groups)
    shardings = tuple([v.value.sharding for v in group] for group in groups)
    compiled = jax.jit(model.train_step, out_shardings=(None, shardings)).lower(state, data).compile()
    memory = compiled.memory_analysis()
    return int(memory.argument_size_in_bytes + memory.temp_size_in_bytes)
