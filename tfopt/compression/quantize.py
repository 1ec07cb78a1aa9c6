"""quantize_model: prepares a Keras model for quantization-aware training (QAT) and a full-integer TFLite export;
quantize_annotate_layer / quantize_annotate_model and quantize_apply: the same for selected layers, or with a
custom QuantizeConfig per layer."""

import keras
import numpy as np

from tfopt import _checks
from tfopt.compression import _model_graph
from tfopt.compression.cluster import strip_clustering
from tfopt.compression.fold import fold_batch_norms
from tfopt.compression.prune import strip_pruning
from tfopt.layers import quantizable_layer
from tfopt.layers.cluster_weights import ClusterWeights
from tfopt.layers.quantize_annotate import QuantizeAnnotate
from tfopt.layers.quantize_wrapper import _FIXED_RANGE, QuantizeWrapper, activation_name

__all__ = ["quantize_annotate_layer", "quantize_annotate_model", "quantize_apply", "quantize_model"]

# A weight with more distinct non-zero values than int8 has levels is not clustered: preserve_clusters skips it.
_MAX_CLUSTERS = 256

# Layers that only move, select or pool values: their int8 output keeps the input's scale, so they need no quantizer.
_PASS_THROUGH = (
    keras.layers.InputLayer,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Permute,
    keras.layers.Identity,
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
    keras.layers.ZeroPadding3D,
    keras.layers.Cropping1D,
    keras.layers.Cropping2D,
    keras.layers.Cropping3D,
    keras.layers.Softmax,
)
# Weightless layers that change the range of values: wrapped with an output quantizer.
_ACTIVATIONS = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU)
_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
)


def _role(layer, selected=None, configs=None):
    """ "wrap" (gets a QuantizeWrapper), "pass" (no quantizer needed), "float" (not selected) or "unsupported"."""
    if isinstance(layer, QuantizeWrapper):
        raise ValueError(f"Argument `model` is already prepared for QAT: layer {layer.name!r} is a QuantizeWrapper")
    if configs and configs.get(layer.name) is not None:
        return "wrap"
    role = _default_role(layer)
    if selected is not None and layer.name not in selected:
        return "pass" if role == "pass" else "float"
    return role


def _default_role(layer):
    if quantizable_layer.supports(layer):
        return "wrap"
    if isinstance(layer, keras.layers.Activation) and activation_name(layer.activation) in (*_FIXED_RANGE, "linear"):
        return "pass"
    if isinstance(layer, (*_ACTIVATIONS, *_MERGES)):
        return "wrap"
    if isinstance(layer, _PASS_THROUGH):
        return "pass"
    return "unsupported"


def _strip_pruning_wrappers(model):
    """A pruned model still wrapped for pruning is stripped first (its zeros are then kept by the QAT masks)."""
    if not any("prun" in type(layer).__name__.lower() for layer in model.layers):
        return model

    return strip_pruning(model)


def quantize_model(model, *, skip_unsupported=False, preserve_sparsity="auto", preserve_clusters=False, ema_decay=0.99,
                   fold_bn=True):
    """Returns a copy of `model` ready for quantization-aware training: each supported layer in a `QuantizeWrapper`.

    Fine-tune the result with `compile`/`fit` (a few epochs at a small learning rate, from a trained float
    model), then write a full-integer file with `export_tflite(qat_model, path, quantization="int8")`, which needs
    no representative data: the QAT model carries its own activation ranges. Weights are fake-quantized to int8
    per output channel (symmetric), activations to int8 per tensor with moving-average ranges (see
    `QuantizeWrapper` for the math); the int8 file computes the same integers as the fine-tuned model.
    `tf.lite.TFLiteConverter.from_keras_model(qat_model)` with `Optimize.DEFAULT` writes int8 kernels too (on
    TensorFlow the inference pass quantizes activations with TensorFlow's FakeQuant op, which the converter reads).

    Layers: Dense, Conv1D/2D/3D and DepthwiseConv1D/2D are wrapped with their weights; activation layers and
    Add/Subtract/Multiply/Average/Maximum/Minimum/Concatenate get an output quantizer; pooling, Flatten, Reshape,
    Dropout, padding, cropping and softmax/sigmoid/tanh activations pass through (their int8 output keeps the
    input's scale or a fixed range). A BatchNormalization after a Conv/Dense is folded into it first
    (`fold_batch_norms`). A custom layer takes part by implementing `tfopt.layers.QuantizableLayer`. Any other
    layer is an error, or stays in float when `skip_unsupported=True` (the layer after it then quantizes its
    input again; a model with float layers cannot be exported as full-integer int8).

    A pruned model keeps its zeros (sparsity-preserving QAT): with `preserve_sparsity="auto"` each kernel that has
    exactly-zero entries gets a fixed mask of its non-zeros, and int8 rounding maps 0 to 0. A model still wrapped
    for pruning is stripped first.

    A clustered model keeps its shared values (cluster-preserving QAT) with `preserve_clusters=True`: each kernel
    of at most 256 distinct non-zero values keeps its entries' assignments to them, and the shared values
    train (see `QuantizeWrapper`'s `preserve_clusters`). With `preserve_sparsity` too (the "auto" default on a
    pruned, then clustered model) this is PCQAT: zeros and shared values both reach the int8 file. A model still
    wrapped for clustering is stripped first.

    Args:
        model: a built Sequential or functional `keras.Model` (trained, for best results).
        skip_unsupported: leave unsupported layers in float instead of raising. Default False.
        preserve_sparsity: "auto" (default; mask the kernels that contain zeros), True (mask every kernel) or
            False (no masks: zeros may grow back during fine-tuning).
        preserve_clusters: keep each kernel's shared values (a clustered model). Default False.
        ema_decay: decay of the activation ranges' moving averages, in [0, 1). Default 0.99.
        fold_bn: fold each BatchNormalization that follows a Conv/Dense into it before wrapping. Default True.

    Returns:
        A new, uncompiled `keras.Model` with the same weights, wrapped for QAT.

    References:
        - Jacob et al., 2018, "Quantization and Training of Neural Networks for Efficient
          Integer-Arithmetic-Only Inference", https://arxiv.org/abs/1712.05877
        - Han, Mao and Dally, 2016, "Deep Compression: Compressing Deep Neural Networks with Pruning, Trained
          Quantization and Huffman Coding", https://arxiv.org/abs/1510.00149 (pruning, then clustering, then
          quantization, each keeping what the one before made)
    """
    return _quantize(model, None, {}, skip_unsupported=skip_unsupported, preserve_sparsity=preserve_sparsity,
                     preserve_clusters=preserve_clusters, ema_decay=ema_decay, fold_bn=fold_bn)


def quantize_annotate_layer(to_annotate, quantize_config=None):
    """Marks one layer for QAT (a `tfopt.layers.QuantizeAnnotate`): `quantize_apply` quantizes the annotated
    layers of a model and leaves the others in float.

    Annotate a layer where the model is built (`keras.Sequential([quantize_annotate_layer(Dense(10)), ...])`),
    or in a `keras.models.clone_model` `clone_function` that returns `quantize_annotate_layer(layer)` for the
    layers to quantize. With a `quantize_config` the layer is quantized as the config says (any layer, custom
    ones included); without one, by `QuantizeWrapper`'s rules (Dense, Conv, Depthwise, `QuantizableLayer`s,
    activation and merge layers).

    Args:
        to_annotate: a `keras.layers.Layer`.
        quantize_config: a `tfopt.layers.QuantizeConfig`, or None.

    Returns:
        The `QuantizeAnnotate` around the layer.
    """
    return QuantizeAnnotate(to_annotate, quantize_config)


def quantize_annotate_model(to_annotate):
    """A copy of a model with every layer annotated for QAT (layers annotated already keep their config), so that
    `quantize_apply` quantizes all of it (as `quantize_model` does) and custom-annotated layers their way.

    Args:
        to_annotate: a built Sequential or functional `keras.Model`.

    Returns:
        A new model with the same weights, each layer inside a `QuantizeAnnotate`.
    """
    _model_graph.check_model(to_annotate, "to_annotate")
    copies = []

    def clone(layer):
        # An annotated layer is kept as it is: its config may name classes registered only in quantize_apply's
        # custom-object scope.
        if isinstance(layer, (keras.layers.InputLayer, QuantizeAnnotate)):
            return layer
        fresh = layer.__class__.from_config(layer.get_config())
        copies.append((layer, fresh))
        return QuantizeAnnotate(fresh)

    annotated = keras.models.clone_model(to_annotate, clone_function=clone)
    for original, fresh in copies:
        if original.weights:
            fresh.set_weights(original.get_weights())
    return annotated


def quantize_apply(model, *, preserve_sparsity="auto", preserve_clusters=False, ema_decay=0.99, fold_bn=True,
                   name_prefix="quant_"):
    """Returns a copy of `model` ready for QAT in which only the annotated layers are quantized.

    Each `QuantizeAnnotate` (from `quantize_annotate_layer` or `quantize_annotate_model`) becomes a
    `QuantizeWrapper` with the annotation's `QuantizeConfig` (or the default rules); a layer that feeds an
    annotated layer from float gets its inputs quantized there. Layers left unannotated stay float (the model
    then exports as int8 only where it is quantized: `TFLiteConverter` with `Optimize.DEFAULT`, or
    `export_tflite(..., quantization="dynamic")`). Options as `quantize_model`.

    Args:
        model: a built Sequential or functional `keras.Model` with annotated layers.
        preserve_sparsity: "auto" (default), True or False; see `quantize_model`.
        preserve_clusters: keep clustered kernels' shared values; see `quantize_model`. Default False.
        ema_decay: decay of the activation ranges' moving averages, in [0, 1). Default 0.99.
        fold_bn: fold each BatchNormalization that follows a Conv/Dense into it first. Default True.
        name_prefix: the wrappers' names are `name_prefix + layer name`. Default "quant_".

    Returns:
        A new, uncompiled `keras.Model` with the same weights.
    """
    _model_graph.check_model(model)
    if not any(isinstance(layer, QuantizeAnnotate) for layer in model.layers):
        raise ValueError(
            f"Argument `model` has no annotated layer: mark layers with quantize_annotate_layer (or the whole model "
            f"with quantize_annotate_model) first, or call quantize_model. Received: model {model.name!r}"
        )
    plain, configs = _without_annotations(model)
    unsupported = [
        f"{name!r} ({type(plain.get_layer(name)).__name__})"
        for name, config in configs.items()
        if config is None and _default_role(plain.get_layer(name)) == "unsupported"
    ]
    if unsupported:
        raise ValueError(
            f"Argument `model` has annotated layers QAT does not support without a QuantizeConfig: "
            f"{', '.join(unsupported)}. Pass quantize_annotate_layer(layer, quantize_config=...) for them."
        )
    return _quantize(plain, set(configs), configs, skip_unsupported=True, preserve_sparsity=preserve_sparsity,
                     preserve_clusters=preserve_clusters, ema_decay=ema_decay, fold_bn=fold_bn,
                     name_prefix=name_prefix)


def _without_annotations(model):
    """A copy of `model` with each QuantizeAnnotate replaced by its layer, and `{layer name: QuantizeConfig or
    None}` of the annotated layers."""
    configs, copies = {}, []

    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        inner = layer.layer if isinstance(layer, QuantizeAnnotate) else layer
        fresh = inner.__class__.from_config(inner.get_config())
        if isinstance(layer, QuantizeAnnotate):
            configs[fresh.name] = layer.quantize_config
        copies.append((inner, fresh))
        return fresh

    plain = keras.models.clone_model(model, clone_function=clone)
    for inner, fresh in copies:
        if inner.weights:
            fresh.set_weights(inner.get_weights())
    return plain, configs


def _cluster_count(layer, nonzero_only):
    """The most distinct values (non-zero ones, when the zeros are masked) in one of the layer's kernels, or 0 when
    one has more than int8 levels."""
    counts = []
    for weight in _kernels(layer):
        values = keras.ops.convert_to_numpy(weight)
        counts.append(len(np.unique(values[values != 0] if nonzero_only else values)))
    return 0 if not counts or max(counts) > _MAX_CLUSTERS else max(max(counts), 1)


def _quantize(model, selected, configs, *, skip_unsupported, preserve_sparsity, preserve_clusters, ema_decay,
              fold_bn, name_prefix="quant_"):
    """quantize_model (selected None: every layer) and quantize_apply (the layers named in `selected`)."""
    _model_graph.check_model(model)
    if preserve_sparsity not in ("auto", True, False):
        raise ValueError(
            f"Argument `preserve_sparsity` must be one of 'auto', True, False. Received: "
            f"preserve_sparsity={preserve_sparsity!r}"
        )
    _checks.boolean("preserve_clusters", preserve_clusters)
    _checks.number("ema_decay", ema_decay, 0.0, 1.0, high_open=True)
    model = _strip_pruning_wrappers(model)
    if any(isinstance(layer, ClusterWeights) for layer in model.layers):
        model = strip_clustering(model)
    if fold_bn:
        model = fold_batch_norms(model, on_unfoldable="keep")

    roles = {layer.name: _role(layer, selected, configs) for layer in model.layers}
    unsupported = [
        f"{name!r} ({type(model.get_layer(name)).__name__})" for name, r in roles.items() if r == "unsupported"
    ]
    if unsupported and not skip_unsupported:
        raise ValueError(
            f"Argument `model` has layers quantization-aware training does not support: {', '.join(unsupported)}. "
            "Supported: Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, activation, merge, pooling and reshaping layers, "
            "and layers implementing tfopt.layers.QuantizableLayer; pass skip_unsupported=True to keep the others "
            "in float."
        )

    # Which layers see float inputs: those get an input quantizer. A layer's output is quantized when it is
    # wrapped, or passes through values that all were.
    inbound, _ = _model_graph.layer_calls(model)
    quantized, quantize_inputs = {}, {}
    for name, calls in inbound.items():
        sources = [source for call in calls for source in call]
        inputs_quantized = bool(sources) and all(quantized.get(source, False) for source in sources)
        role = roles.get(name, "pass")
        if role == "wrap":
            quantize_inputs[name] = not inputs_quantized
            quantized[name] = True
        else:
            quantized[name] = role == "pass" and inputs_quantized and name in roles

    def make_wrapper(layer, fresh):
        config = configs.get(layer.name)
        weights = [v for v, _ in config.get_weights_and_quantizers(fresh)] if config is not None else _kernels(fresh)
        sparse = quantizable_layer.has_zeros(weights) if preserve_sparsity == "auto" else preserve_sparsity
        clusters = _cluster_count(fresh, sparse) if preserve_clusters and config is None else 0
        return QuantizeWrapper(
            fresh,
            quantize_inputs=quantize_inputs[layer.name],
            preserve_sparsity=sparse,
            ema_decay=ema_decay,
            quantize_config=config,
            preserve_clusters=clusters,
            name=f"{name_prefix}{layer.name}",
        )

    return _model_graph.clone_with_wrappers(model, lambda layer: roles[layer.name] == "wrap", make_wrapper)


def _kernels(layer):
    if not quantizable_layer.supports(layer):
        return []
    return [getattr(layer, name) for name in quantizable_layer.quantizable_weights(layer)]
