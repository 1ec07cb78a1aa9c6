"""The two `keras.distribution` distributions Keras lacks, for the JAX backend (Keras only: no TensorFlow).

- `FullyShardedDataParallel` (ZeRO-3 / FSDP): every variable large enough is split over the batch axis, so
  weights, gradients and optimizer state (the optimizer's slots take their variable's layout) are each held
  1/N per device; GSPMD gathers a weight where a step needs it whole.
- `ShardedOptimizerDataParallel` (ZeRO-1): weights replicated as in `DataParallel`, the optimizer's slot
  variables split over the batch axis. Keras gives a slot its weight's layout, so the first such distribution
  installs a small wrapper around `keras.optimizers.Optimizer.add_variable_from_reference` that, only while this
  distribution is the current one, hands the optimizer a sharded layout instead; under any other distribution
  the wrapper calls Keras unchanged.

References:
    - Rajbhandari et al., 2020, "ZeRO: Memory Optimizations Toward Training Trillion Parameter Models",
      https://arxiv.org/abs/1910.02054
    - Xu et al., 2021, "GSPMD: General and Scalable Parallelization for ML Computation Graphs",
      https://arxiv.org/abs/2105.04663
"""

import math

import keras

# Below 1,024 elements (4 KiB in float32) a shard saves less memory than the gather it costs.
FSDP_MIN_ELEMENTS = 1024
_MARK = "_tfopt_sharded_slots"


def batch_axes(shape, size, axis, min_elements=0):
    """The layout that splits the largest dimension `size` divides over `axis` (all None when none does, or the
    variable has fewer than `min_elements` elements)."""
    axes = [None] * len(shape)
    if not shape or math.prod(shape) < max(min_elements, 1):
        return tuple(axes)
    divisible = [d for d in range(len(shape)) if shape[d] % size == 0]
    if divisible:
        axes[max(divisible, key=lambda d: (shape[d], -d))] = axis
    return tuple(axes)


def _axis_size(mesh, axis):
    return mesh.shape[list(mesh.axis_names).index(axis)]


class FullyShardedDataParallel(keras.distribution.ModelParallel):
    """Data parallelism over a 1-D mesh with every variable of at least `FSDP_MIN_ELEMENTS` elements split over
    the batch axis, on its largest divisible dimension (ZeRO-3)."""

    def __init__(self, device_mesh):
        super().__init__(layout_map=keras.distribution.LayoutMap(device_mesh),
                         batch_dim_name=device_mesh.axis_names[0])

    def get_variable_layout(self, variable):
        if getattr(variable, "_layout", None) is not None:
            return variable._layout
        axes = batch_axes(tuple(variable.shape), _axis_size(self.device_mesh, self.batch_dim_name),
                          self.batch_dim_name, FSDP_MIN_ELEMENTS)
        return keras.distribution.TensorLayout(axes, self.device_mesh)


class ShardedOptimizerDataParallel(keras.distribution.DataParallel):
    """`DataParallel` whose optimizer slot variables are split over the batch axis (ZeRO-1)."""

    def __init__(self, device_mesh):
        super().__init__(device_mesh=device_mesh)
        _install_slot_layouts()

    def get_slot_layout(self, shape):
        """The layout of an optimizer slot of `shape`: its largest dimension the batch axis divides, split."""
        axes = batch_axes(tuple(shape), _axis_size(self.device_mesh, self.batch_dim_name), self.batch_dim_name)
        return keras.distribution.TensorLayout(axes, self.device_mesh)


class _LaidOutReference:
    """A weight as `add_variable_from_reference` reads it (path, shape, dtype, ...), with the slot's layout in
    place of the weight's."""

    def __init__(self, variable, layout):
        self._variable = variable
        self._layout = layout

    def __getattr__(self, name):  # everything but the layout is the weight's
        return getattr(self._variable, name)


def _install_slot_layouts():
    optimizer = keras.optimizers.Optimizer
    if getattr(optimizer.add_variable_from_reference, _MARK, False):
        return
    keras_method = optimizer.add_variable_from_reference

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        distribution = keras.distribution.distribution()
        if isinstance(distribution, ShardedOptimizerDataParallel) and hasattr(reference_variable, "path"):
            reference_variable = _LaidOutReference(reference_variable,
                                                   distribution.get_slot_layout(reference_variable.shape))
        return keras_method(self, reference_variable, name=name, initializer=initializer)

    add_variable_from_reference.__doc__ = keras_method.__doc__
    setattr(add_variable_from_reference, _MARK, True)
    optimizer.add_variable_from_reference = add_variable_from_reference
