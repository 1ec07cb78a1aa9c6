"""`get_distribution`: Keras's data, model and hybrid parallelism on the JAX backend (keras.distribution).

Keras only, no TensorFlow: `keras.distribution` runs on JAX (and, experimentally, other backends).
"""

import math

import keras

KINDS = ("data_parallel", "model_parallel")


def get_distribution(kind="data_parallel", layout_map=None, *, mesh_shape=None, devices=None,
                     axis_names=("batch", "model")):
    """Returns the `keras.distribution` object for data, model or hybrid parallelism over a device mesh.

    On the JAX backend, `tf.distribute` does not apply; Keras distributes with a `Distribution` set globally
    (`keras.distribution.set_distribution(d)`) or as a scope (`with d.scope():` around model building and
    `fit`). "data_parallel" replicates every variable on every device and splits the batch (the JAX counterpart
    of MirroredStrategy). "model_parallel" lays out the variables named by `layout_map` across the "model" axis of
    a 2-D mesh (`batch` x `model`) and splits the batch over the "batch" axis: with a "batch" size of 1 it is pure
    model parallelism, with both sizes > 1 it is hybrid. Use it when a layer's weights do not fit on one device,
    or to spread a wide layer's compute.

    Args:
        kind: "data_parallel" or "model_parallel". Defaults to "data_parallel".
        layout_map: for "model_parallel", a `keras.distribution.LayoutMap`, or a dict from variable-path regex to
            a tuple of mesh axis names (or None) per dimension, e.g. `{".*dense/kernel": (None, "model")}`. Not used
            by "data_parallel". Defaults to None.
        mesh_shape: the mesh, e.g. (2, 2): a 1-tuple for "data_parallel", a 2-tuple (batch, model) for
            "model_parallel", its product the number of devices. None: every device on one axis, the "model" axis
            for "model_parallel". Defaults to None.
        devices: device names, e.g. `keras.distribution.list_devices()[:4]`; None uses every device. Defaults to
            None.
        axis_names: the names of the mesh axes, (batch, model). Defaults to ("batch", "model").

    Returns:
        A `keras.distribution.DataParallel` or `keras.distribution.ModelParallel`.

    Example (JAX, 4 devices: each Dense kernel split column-wise over 2, the batch over 2):

        distribution = get_distribution("model_parallel", {".*dense/kernel": (None, "model")}, mesh_shape=(2, 2))
        with distribution.scope():
            model = build_model()
            model.compile(...)
            model.fit(...)

    References:
        - Keras, "Distributed training with Keras 3", https://keras.io/guides/distribution/
    """
    if kind not in KINDS:
        allowed = ", ".join(repr(k) for k in KINDS)
        raise ValueError(f"Argument `kind` must be one of {allowed}. Received: kind={kind!r}")
    available = keras.distribution.list_devices()
    if devices is None:
        devices = available
    elif not isinstance(devices, list | tuple) or not devices or not all(d in available for d in devices):
        raise ValueError(f"Argument `devices` must be a non-empty list of devices among {available}. Received: "
                         f"devices={devices!r}")
    devices = list(devices)
    dims = 1 if kind == "data_parallel" else 2
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
    names = list(axis_names[:dims])
    mesh = keras.distribution.DeviceMesh(shape=tuple(mesh_shape), axis_names=names, devices=devices)
    if kind == "data_parallel":
        if layout_map is not None:
            raise ValueError("Argument `layout_map` must be None for kind='data_parallel' (every variable is "
                             f"replicated). Received: layout_map={layout_map!r}")
        return keras.distribution.DataParallel(device_mesh=mesh)
    return keras.distribution.ModelParallel(layout_map=_layout_map(layout_map, mesh), batch_dim_name=names[0])


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
