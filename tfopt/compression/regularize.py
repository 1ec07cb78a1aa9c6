"""add_regularizer: a copy of a model with a regularizer attached to one weight of chosen layers, weights kept."""

import keras

from tfopt.compression import _channel_graph, _model_graph

__all__ = ["DEFAULT_LAYER_TYPES", "add_regularizer"]

DEFAULT_LAYER_TYPES = _channel_graph.CONV + _channel_graph.DENSE + _channel_graph.SEPARABLE
# The config key of a weight's regularizer where it is not `<weight>_regularizer`.
_KEYS = {
    ("SeparableConv1D", "kernel"): "pointwise_regularizer",
    ("SeparableConv2D", "kernel"): "pointwise_regularizer",
    ("SeparableConv1D", "pointwise_kernel"): "pointwise_regularizer",
    ("SeparableConv2D", "pointwise_kernel"): "pointwise_regularizer",
    ("SeparableConv1D", "depthwise_kernel"): "depthwise_regularizer",
    ("SeparableConv2D", "depthwise_kernel"): "depthwise_regularizer",
    ("DepthwiseConv1D", "kernel"): "depthwise_regularizer",
    ("DepthwiseConv2D", "kernel"): "depthwise_regularizer",
}


def add_regularizer(model, regularizer, layer_types=DEFAULT_LAYER_TYPES, weight="kernel", exclude=()):
    """Returns a copy of `model` whose layers of `layer_types` carry `regularizer` on `weight`; weights are kept.

    Keras attaches regularizers when a layer is built, so adding one to a trained model means rebuilding it; this
    does that (`keras.models.clone_model` with each chosen layer's config given the regularizer) and copies every
    weight, so the copy predicts exactly what `model` predicts and its `model.losses` hold the new penalty. Compile
    and fine-tune the copy. A regularizer the layer already had on that weight is replaced.

    Two uses for channel pruning:

        add_regularizer(model, tfopt.regularizers.GroupLasso(1e-4))        # group lasso on Conv/Dense kernels
        add_regularizer(model, keras.regularizers.L1(1e-4),                 # network slimming: L1 on BN gamma
                        layer_types=(keras.layers.BatchNormalization,), weight="gamma")

    Args:
        model: a built Sequential or functional `keras.Model`.
        regularizer: a `keras.regularizers.Regularizer` (e.g. `tfopt.regularizers.GroupLasso`, `keras.regularizers.L1`).
        layer_types: a layer class or tuple of classes to regularize. Default: Conv1D/2D/3D, Dense,
            SeparableConv1D/2D.
        weight: which weight: "kernel" (default; the pointwise kernel of a SeparableConv, the depthwise kernel of a
            DepthwiseConv), "bias", "gamma", "beta", "depthwise_kernel", "pointwise_kernel", ...
        exclude: names of layers to leave without it (e.g. the output layer, whose units should not shrink).

    Returns:
        A new, uncompiled `keras.Model`.
    """
    _model_graph.check_model(model)
    if not isinstance(regularizer, keras.regularizers.Regularizer):
        raise TypeError("Argument `regularizer` must be a keras.regularizers.Regularizer (GroupLasso, L1, L2, ...). "
                        f"Received: regularizer={regularizer!r} of type {type(regularizer).__name__}")
    types = layer_types if isinstance(layer_types, tuple) else (layer_types,)
    if not types or not all(isinstance(t, type) and issubclass(t, keras.layers.Layer) for t in types):
        raise TypeError(f"Argument `layer_types` must be a keras layer class or a tuple of them. Received: "
                        f"layer_types={layer_types!r}")
    if not isinstance(weight, str):
        raise TypeError(f"Argument `weight` must be a string such as 'kernel'. Received: weight={weight!r}")
    if isinstance(exclude, str) or not all(isinstance(e, str) for e in exclude):
        raise TypeError(f"Argument `exclude` must be a list of layer names. Received: exclude={exclude!r}")
    names = {layer.name for layer in model.layers}
    missing = sorted(set(exclude) - names)
    if missing:
        raise ValueError(f"Argument `exclude` names layers that are not in model {model.name!r}: {missing}")
    chosen = [layer for layer in model.layers if isinstance(layer, types) and layer.name not in set(exclude)]
    if not chosen:
        raise ValueError(f"Argument `layer_types`: model {model.name!r} has no layer of the types "
                         f"{[t.__name__ for t in types]} to regularize.")
    keys = {}
    for layer in chosen:
        key = _KEYS.get((type(layer).__name__, weight), f"{weight}_regularizer")
        if key not in layer.get_config():
            raise ValueError(f"Argument `weight`: layer {layer.name!r} ({type(layer).__name__}) has no regularizer "
                             f"for a weight named {weight!r} (no {key!r} in its config). Received: weight={weight!r}")
        keys[layer.name] = key
    serialized = keras.saving.serialize_keras_object(regularizer)

    def clone(layer):
        config = layer.get_config()
        if layer.name in keys:
            config[keys[layer.name]] = serialized
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy
