"""`auto_layout_map`: a tensor-parallel `keras.distribution.LayoutMap` for any Sequential or functional model, read
from its graph (Keras only: no TensorFlow)."""

import warnings

import keras

from tfopt import _checks
from tfopt.strategies._structural_layout_map import StructuralLayoutMap

_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_CONV_TRANSPOSES = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)


def auto_layout_map(model, device_mesh, *, model_axis="model"):
    """A `LayoutMap` that splits a model's weights across the `model_axis` of a device mesh (tensor parallelism).

    The layers are read in graph order (nested models included) and laid out with the Megatron-LM rules, so that
    each pair of matrix products needs one collective instead of two:

    - Dense / EinsumDense, in consecutive pairs: the first is split by columns (kernel `(None, model)`, its bias
      `(model,)`: each device computes a slice of the output features), the second by rows (kernel
      `(model, None)`, bias replicated: each device multiplies its slice and one all-reduce sums the partial
      products). For an EinsumDense the first kernel dimension is read as its input and the last as its output.
    - MultiHeadAttention: query, key and value projections split by heads (kernel `(None, model, None)`, bias
      `(model, None)`), the output projection by its input heads (kernel `(model, None, None)`, bias replicated):
      each device runs whole heads. A Dense after it starts a new pair.
    - Embedding: the table split on the embedding dimension `(None, model)`.
    - Conv1D/2D/3D: kernels split on the output channels (last dimension; second to last for a transposed
      convolution), the bias with them.

    A dimension the mesh axis does not divide (a Dense(10) over 4 devices) stays replicated: the layer is left
    out of the map, listed in the map's `replicated` dict (path -> reason) and in a warning, never an error; the
    Dense after a replicated one starts a new pair. Every other variable (normalization, biases of row-split
    layers) is replicated. The keys are the model's exact variable paths, so no key matches a variable by
    accident; the map still finds the layouts when the same architecture is built again with unnamed layers
    (auto names such as `dense_7` instead of `dense_3`), by each layer's position in the model.

    Args:
        model: a built `keras.Model` (Sequential or functional).
        device_mesh: a `keras.distribution.DeviceMesh` with an axis named `model_axis`.
        model_axis: the mesh axis the weights are split over. Defaults to "model".

    Returns:
        A `keras.distribution.LayoutMap` (for `keras.distribution.ModelParallel`) with a `replicated` attribute.

    Example (JAX, 8 devices, data x model = 2 x 4):

        mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"), keras.distribution.list_devices())
        layout_map = auto_layout_map(build_model(), mesh)
        with keras.distribution.ModelParallel(layout_map=layout_map, batch_dim_name="batch").scope():
            model = build_model()

    References:
        - Shoeybi et al., 2019, "Megatron-LM: Training Multi-Billion Parameter Language Models Using Model
          Parallelism", https://arxiv.org/abs/1909.08053
        - Xu et al., 2021, "GSPMD: General and Scalable Parallelization for ML Computation Graphs",
          https://arxiv.org/abs/2105.04663
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Argument `model` must be a built keras.Model. Received: model={model!r} of type "
                        f"{type(model).__name__}")
    if not model.built or not model.weights:
        raise ValueError(f"Argument `model` must be a built keras.Model with weights. Received: model={model!r} "
                         f"(built={model.built}, {len(model.weights)} weights)")
    if not isinstance(device_mesh, keras.distribution.DeviceMesh):
        raise TypeError(f"Argument `device_mesh` must be a keras.distribution.DeviceMesh. Received: "
                        f"device_mesh={device_mesh!r} of type {type(device_mesh).__name__}")
    _checks.choice("model_axis", model_axis, tuple(device_mesh.axis_names))
    size = device_mesh.shape[list(device_mesh.axis_names).index(model_axis)]
    layouts, replicated = {}, {}

    def place(variable, axes):
        for dim, axis in enumerate(axes):
            if axis is not None and variable.shape[dim] % size:
                replicated[variable.path] = (f"dimension {dim} ({variable.shape[dim]}) is not divisible by the "
                                             f"{model_axis!r} axis ({size})")
                return False
        layouts[variable.path] = axes
        return True

    def split(layer, kernel_dim, bias_dim=None):
        """Splits the kernel on `kernel_dim` and the bias on `bias_dim` (None: bias replicated), both or none."""
        kernel = layer.kernel
        if not isinstance(kernel, keras.Variable):  # LoRA or quantized: the kernel is computed, not stored
            for variable in layer.weights:
                replicated[variable.path] = "the layer's kernel is not a plain variable (LoRA or quantized)"
            return False
        axes = [None] * len(kernel.shape)
        axes[kernel_dim] = model_axis
        bias = getattr(layer, "bias", None) if bias_dim is not None else None
        if not place(kernel, tuple(axes)):
            if bias is not None:
                replicated[bias.path] = f"with its kernel: {replicated[kernel.path]}"
            return False
        if bias is not None:
            bias_axes = [None] * len(bias.shape)
            bias_axes[bias_dim] = model_axis
            place(bias, tuple(bias_axes))
        return True

    def attention(layer):
        if layer.num_heads % size:
            reason = f"{layer.num_heads} heads are not divisible by the {model_axis!r} axis ({size})"
            for variable in layer.weights:
                replicated[variable.path] = reason
            return
        for projection in (layer.query_dense, layer.key_dense, layer.value_dense):
            split(projection, 1, 0)
        split(layer.output_dense, 0)

    row_next = False
    for layer in _layers_in_order(model):
        if isinstance(layer, keras.layers.MultiHeadAttention):
            attention(layer)
            row_next = False
        elif isinstance(layer, keras.layers.Dense | keras.layers.EinsumDense):
            if row_next:
                split(layer, 0)
                row_next = False
            else:
                bias = getattr(layer, "bias", None)
                same = bias is not None and bias.shape[-1] == layer.kernel.shape[-1]
                row_next = split(layer, -1, -1 if same else None)
        elif isinstance(layer, keras.layers.Embedding):
            place(layer.embeddings, (None, model_axis))
            row_next = False
        elif isinstance(layer, _CONVS):
            split(layer, -1, 0)
            row_next = False
        elif isinstance(layer, _CONV_TRANSPOSES):
            split(layer, -2, 0)
            row_next = False
    if replicated:
        listed = "; ".join(f"{path}: {reason}" for path, reason in replicated.items())
        warnings.warn(f"auto_layout_map: these variables stay replicated: {listed}", stacklevel=2)
    layout_map = StructuralLayoutMap(device_mesh, [v.path for v in model.weights], replicated)
    for path, axes in layouts.items():
        layout_map[path] = axes
    return layout_map


def _layers_in_order(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers_in_order(layer)
        else:
            yield layer
