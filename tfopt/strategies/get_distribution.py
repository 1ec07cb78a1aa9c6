"""`get_distribution`: Keras's data, model, hybrid and fully sharded parallelism on the JAX backend
(keras.distribution).

Keras only, no TensorFlow: `keras.distribution` runs on JAX (and, experimentally, other backends).
"""

import math

import keras

from tfopt import _checks
from tfopt.strategies._sharded_distributions import FullyShardedDataParallel, ShardedOptimizerDataParallel
from tfopt.strategies.auto_layout_map import auto_layout_map
from tfopt.strategies.check_layout_map import check_layout_map

KINDS = ("data_parallel", "model_parallel", "fsdp")


def get_distribution(kind="data_parallel", layout_map=None, *, model=None, mesh_shape=None, devices=None,
                     axis_names=("batch", "model"), shard_optimizer_state=False):
    """Returns the `keras.distribution` object for data, model, hybrid or fully sharded parallelism over a mesh.

    On the JAX backend, `tf.distribute` does not apply; Keras distributes with a `Distribution` set globally
    (`keras.distribution.set_distribution(d)`) or as a scope: build the model, compile and fit inside
    `with d.scope():`, and every variable is created with its layout. The kinds:

    - "data_parallel": every variable replicated, the batch split over all devices (the JAX counterpart of
      MirroredStrategy). With `shard_optimizer_state=True` the optimizer's slots (Adam's m and v, momentum) are
      split over the batch axis instead (ZeRO-1): per device, parameters stay whole, optimizer state is 1/N.
    - "model_parallel": a 2-D mesh (batch, model). The weights are split over the "model" axis by `layout_map`,
      or, without one, by `auto_layout_map(model)` (Megatron-LM rules: Dense pairs column-then-row,
      attention by heads, embeddings on their dimension, convolutions on output channels); the batch is split
      over the "batch" axis. Mesh (1, N) is pure model parallelism, (B, M) hybrid data x model parallelism.
      The automatic layout is read from `model` and still applies when the model is built again inside the
      scope with unnamed layers (other auto names), by each layer's position in the model.
    - "fsdp": a 1-D mesh over all devices; every variable of at least 1,024 elements is split over the batch
      axis on its largest divisible dimension: weights, gradients and optimizer state 1/N per device (ZeRO-3).

    Several processes (hosts): call `keras.distribution.initialize(job_addresses, num_processes, process_id)` in
    every process first (JAX's `jax.distributed`; on CPU set `jax.config.update(
    "jax_cpu_collectives_implementation", "gloo")` before it), then `get_distribution(...)` the same way in each:
    `devices=None` takes the devices of every process, and the first mesh axis runs across the processes (row i of
    a (2, 4) mesh over 2 processes of 4 devices is process i's). Each process feeds its part of every global batch:
    a `tf.data.Dataset` of the global data is split by Keras (`auto_shard_dataset`, the default), or arrays already
    split per process with `distribution.auto_shard_dataset = False` and the per-process batch size
    (`jax.make_array_from_process_local_data` assembles the global batch).

    `keras.distribution` lays out variables only on JAX in this Keras version: on TensorFlow, a ModelParallel
    run ignores every layout. So "model_parallel", "fsdp" and `shard_optimizer_state=True` raise there; use
    `tfopt.strategies.get_strategy` for data parallelism on TensorFlow.

    Args:
        kind: "data_parallel", "model_parallel" or "fsdp". Defaults to "data_parallel".
        layout_map: for "model_parallel", a `keras.distribution.LayoutMap`, or a dict from variable-path regex to
            a tuple of mesh axis names (or None) per dimension, e.g. `{"sequential/dense/kernel": (None,
            "model")}`; checked against `model` when both are given (`check_layout_map`: a key that matches no
            variable, a variable two keys match or an indivisible dimension is an error). None with `model`:
            `auto_layout_map`. Not used by the other kinds. Defaults to None.
        model: for "model_parallel", a built `keras.Model` or a zero-argument function that builds one (called
            here, outside any distribution). Defaults to None.
        mesh_shape: the mesh: a 1-tuple for "data_parallel" and "fsdp", a 2-tuple (batch, model) for
            "model_parallel", its product the number of devices. None: every device on one axis (the "model"
            axis for "model_parallel"). Defaults to None.
        devices: device names, e.g. `keras.distribution.list_devices()[:4]`; None uses every device (of every
            process, after `keras.distribution.initialize`). Defaults to None.
        axis_names: the names of the mesh axes, (batch, model). Defaults to ("batch", "model").
        shard_optimizer_state: with "data_parallel", split the optimizer state over the batch axis (ZeRO-1).
            Defaults to False.

    Returns:
        A `keras.distribution.DataParallel` or `keras.distribution.ModelParallel` (subclasses for "fsdp" and
        ZeRO-1).

    Example (JAX, 8 devices: 2-way data x 4-way model parallelism, layouts from the model's graph):

        distribution = get_distribution("model_parallel", model=build_model, mesh_shape=(2, 4))
        with distribution.scope():
            model = build_model()
            model.compile(...)
            model.fit(...)

    References:
        - Keras, "Distributed training with Keras 3", https://keras.io/guides/distribution/
        - Shoeybi et al., 2019, "Megatron-LM", https://arxiv.org/abs/1909.08053
        - Rajbhandari et al., 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models",
          https://arxiv.org/abs/1910.02054
        - Xu et al., 2021, "GSPMD: General and Scalable Parallelization for ML Computation Graphs",
          https://arxiv.org/abs/2105.04663
    """
    _checks.choice("kind", kind, KINDS)
    _checks.boolean("shard_optimizer_state", shard_optimizer_state)
    backend = keras.backend.backend()
    if backend != "jax" and (kind != "data_parallel" or shard_optimizer_state):
        asked = f"kind={kind!r}" + (", shard_optimizer_state=True" if shard_optimizer_state else "")
        raise ValueError(f"Argument `kind`: {asked} needs the JAX backend (KERAS_BACKEND=jax): keras.distribution "
                         f"lays out variables only on JAX in Keras {keras.__version__}, and on the {backend!r} "
                         "backend it would train fully replicated, ignoring every layout. For data parallelism "
                         "on TensorFlow use tfopt.strategies.get_strategy().")
    if shard_optimizer_state and kind != "data_parallel":
        raise ValueError(f"Argument `shard_optimizer_state` must be False for kind={kind!r} (it applies to "
                         "kind='data_parallel'; 'fsdp' shards the optimizer state already). Received: "
                         "shard_optimizer_state=True")
    if kind != "model_parallel":
        for name, value in (("layout_map", layout_map), ("model", model)):
            if value is not None:
                raise ValueError(f"Argument `{name}` must be None for kind={kind!r} (it is used only by "
                                 f"kind='model_parallel'). Received: {name}={value!r}")
    available = keras.distribution.list_devices()
    if devices is None:
        devices = available
    elif not isinstance(devices, list | tuple) or not devices or not all(d in available for d in devices):
        raise ValueError(f"Argument `devices` must be a non-empty list of devices among {available}. Received: "
                         f"devices={devices!r}")
    devices = list(devices)
    dims = 2 if kind == "model_parallel" else 1
    if mesh_shape is None:
        mesh_shape = (len(devices),) if dims == 1 else (1, len(devices))
    if (
        not isinstance(mesh_shape, list | tuple)
        or len(mesh_shape) != dims
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in mesh_shape)
        or math.prod(mesh_shape) != len(devices)
    ):
        raise ValueError(f"Argument `mesh_shape` must be {dims} positive integer(s) whose product is the number of "
                         f"devices, {len(devices)}, for kind={kind!r}. Received: mesh_shape={mesh_shape!r}")
    if (not isinstance(axis_names, list | tuple) or len(axis_names) < dims
            or not all(isinstance(a, str) and a for a in axis_names) or len(set(axis_names[:dims])) != dims):
        raise ValueError(f"Argument `axis_names` must be {dims} distinct non-empty strings (batch, model). "
                         f"Received: axis_names={axis_names!r}")
    names = list(axis_names[:dims])
    mesh = keras.distribution.DeviceMesh(shape=tuple(mesh_shape), axis_names=names, devices=devices)
    if kind == "fsdp":
        return FullyShardedDataParallel(mesh)
    if kind == "data_parallel":
        if shard_optimizer_state:
            return ShardedOptimizerDataParallel(mesh)
        return keras.distribution.DataParallel(device_mesh=mesh)
    reference = _reference_model(model)
    if layout_map is None:
        if reference is None:
            raise ValueError("Argument `layout_map` must be a keras.distribution.LayoutMap or a non-empty dict from "
                             "variable-path regex to a tuple of mesh axis names, or `model` must be given (a built "
                             "model or a function that builds it) for an automatic layout, for "
                             "kind='model_parallel'. Received: layout_map=None, model=None")
        built = auto_layout_map(reference, mesh, model_axis=names[1])
    else:
        built = _layout_map(layout_map, mesh)
        if reference is not None:
            check_layout_map(built, reference)
    return keras.distribution.ModelParallel(layout_map=built, batch_dim_name=names[0])


def _reference_model(model):
    """The built model to read layouts from: `model` itself, or what the function `model` builds, outside any
    distribution (its variables are plain, on one device)."""
    if model is None or isinstance(model, keras.Model):
        return model
    if not callable(model):
        raise TypeError(f"Argument `model` must be a built keras.Model or a zero-argument function that builds "
                        f"one. Received: model={model!r} of type {type(model).__name__}")
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        built = model()
    finally:
        keras.distribution.set_distribution(current)
    if not isinstance(built, keras.Model):
        raise TypeError(f"Argument `model` must be a built keras.Model or a zero-argument function that builds "
                        f"one; the function returned {built!r} of type {type(built).__name__}")
    return built


def _layout_map(layout_map, mesh):
    if isinstance(layout_map, keras.distribution.LayoutMap):
        return layout_map
    if not isinstance(layout_map, dict) or not layout_map:
        raise ValueError("Argument `layout_map` must be a keras.distribution.LayoutMap or a non-empty dict from "
                         "variable-path regex to a tuple of mesh axis names, e.g. {'.*dense/kernel': (None, "
                         f"'model')}}, for kind='model_parallel'. Received: layout_map={layout_map!r}")
    built = keras.distribution.LayoutMap(mesh)
    for pattern, axes in layout_map.items():
        if not isinstance(axes, tuple) or not all(a is None or a in mesh.axis_names for a in axes):
            raise ValueError(f"Argument `layout_map` must map each regex to a tuple of axis names among "
                             f"{mesh.axis_names} or None. Received: layout_map[{pattern!r}]={axes!r}")
        built[pattern] = axes
    return built
