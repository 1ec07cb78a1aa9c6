"""Model-level pruning: `prune_low_magnitude` wraps a model's prunable layers, `strip_pruning` gives back a plain
model with the zeros in place, `sparsity_report` measures per-layer and total sparsity.

Keras 3 models are pruned with `tfopt.layers.PruneLowMagnitude` (keras.ops only, every backend). A legacy tf_keras
model goes to tfmot through `tfopt.compression._tfmot_bridge` (TensorFlow only), so one call serves both.
"""

import warnings

import keras
import numpy as np

import tfopt.layers.prune_low_magnitude as _wrapper
from tfopt.compression import _model_graph, _tfmot_bridge
from tfopt.layers import pruning_rules
from tfopt.layers.constant_sparsity import ConstantSparsity

# Layers with weights that are not meant to be pruned: left alone without asking.
_NEVER_PRUNED = tuple(
    getattr(keras.layers, name)
    for name in ("BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
                 "RMSNormalization", "Normalization", "Rescaling")
    if hasattr(keras.layers, name)
)


def prune_low_magnitude(to_prune, pruning_schedule=None, block_size=(1, 1), sparsity_m_by_n=None,
                        pruning_scope="layer", *, skip_unsupported=False):
    """Wraps the prunable layers of a model (or a layer, or a list of layers) for magnitude pruning in `fit`.

    The API of tfmot's function of the same name, for Keras 3, plus N:M-aware layers and global pruning. A
    Sequential or functional model is copied: the returned model has its own layers with the same weights (the
    original model is not changed), each prunable layer inside a `tfopt.layers.PruneLowMagnitude`. A layer or a
    list of layers is wrapped as given (to build a model from). No callback is needed: the wrappers count the
    training steps themselves (`tfopt.callbacks.UpdatePruningStep` is optional, see its docstring).

    Layers without weights (pooling, flatten, dropout, ...) and normalization layers stay as they are. Any other
    layer that cannot be pruned raises a ValueError naming it, unless `skip_unsupported=True` leaves it dense.
    With `sparsity_m_by_n`, a model's layers whose input channels M does not divide (a first Conv2D on 1 or 3
    channels) stay dense, as in tfmot, with one warning that names them; wrapping such a layer itself (a layer or
    a list of layers) is a ValueError.

    Sparsity at step t (the schedule's), over a layer's n weights (or, with pruning_scope="global", over the n
    weights of every wrapped layer together): the weights whose magnitude is at least the k-th largest are kept,
    k = max(round(n (1 - s)), 1). See `PruneLowMagnitude` for the block and N:M rules.

    Given a tf_keras model or layer (the legacy Keras 2), the call is delegated to
    `tfmot.sparsity.keras.prune_low_magnitude` with the equivalent tfmot schedule (needs the `tfmot` extra; N:M is
    passed as tfmot's `(M - N, M)`, zeros per group; pruning_scope="global" is not available there).

    Args:
        to_prune: a Sequential or functional `keras.Model`, a `keras.layers.Layer`, or a list of layers.
        pruning_schedule: a `PruningSchedule`. Default `ConstantSparsity(0.5, begin_step=0, frequency=100)`.
        block_size: `(rows, cols)` blocks over the last two axes of each weight, pruned whole. Default (1, 1).
        sparsity_m_by_n: `(N, M)`: at most N non-zeros in every M consecutive weights along the input-channel
            axis, e.g. (2, 4); None (default) for magnitude pruning to the schedule's sparsity.
        pruning_scope: "layer" (default) or "global": one magnitude threshold across all wrapped layers. Global
            pruning never empties a layer: each pruned weight keeps at least 1% of its weights (and at least one),
            even where the shared threshold would remove more; the total sparsity is then slightly below target.
        skip_unsupported: leave layers that cannot be pruned dense instead of raising. Default False.

    Returns:
        The pruned model, the wrapper, or the list of wrappers.

    Example:

    >>> from tfopt.compression import PolynomialDecay, prune_low_magnitude, strip_pruning
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(2)])
    >>> pruned = prune_low_magnitude(model, PolynomialDecay(0.0, 0.8, begin_step=0, end_step=100, frequency=10))
    >>> [type(layer).__name__ for layer in pruned.layers]
    ['PruneLowMagnitude', 'PruneLowMagnitude']
    """
    if _tfmot_bridge.is_tf_keras(to_prune):
        return _tfmot_bridge.prune_low_magnitude(to_prune, pruning_schedule, block_size, sparsity_m_by_n,
                                                 pruning_scope)
    if pruning_schedule is None:

        pruning_schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
    arguments = dict(zip(("pruning_schedule", "block_size", "sparsity_m_by_n", "pruning_scope"),
                         _wrapper.check_arguments(pruning_schedule, block_size, sparsity_m_by_n, pruning_scope)))

    def wrap(layer):
        return _wrapper.PruneLowMagnitude(layer, **arguments)

    if isinstance(to_prune, keras.Model):
        model, wrappers = _copy_model(to_prune, wrap, skip_unsupported, arguments["sparsity_m_by_n"])
        result = model
    elif isinstance(to_prune, (list, tuple)):
        for i, layer in enumerate(to_prune):
            if not isinstance(layer, keras.layers.Layer):
                raise TypeError(f"Argument `to_prune` must hold keras layers. Received: to_prune[{i}]={layer!r} of "
                                f"type {type(layer).__name__}")
        result = [_wrap_layer(layer, wrap, skip_unsupported) for layer in to_prune]
        wrappers = [w for w in result if isinstance(w, _wrapper.PruneLowMagnitude)]
    elif isinstance(to_prune, keras.layers.Layer):
        result = _wrap_layer(to_prune, wrap, skip_unsupported)
        wrappers = [result] if isinstance(result, _wrapper.PruneLowMagnitude) else []
    else:
        raise TypeError(
            "Argument `to_prune` must be a keras.Model (Sequential or functional), a keras.layers.Layer or a list of "
            f"layers. Received: to_prune={to_prune!r} of type {type(to_prune).__name__}"
        )
    if arguments["pruning_scope"] == "global" and wrappers:
        _wrapper.link_global(wrappers)
    return result


def _wrap_layer(layer, wrap, skip_unsupported):
    # A layer given by itself was asked for by name: one that cannot be pruned (a BatchNormalization, which a
    # model's copy leaves alone) is an error, not returned unchanged, unless `skip_unsupported`.
    if isinstance(layer, _wrapper.PruneLowMagnitude):
        return layer
    if pruning_rules.is_prunable(layer):
        return wrap(layer)
    if skip_unsupported:
        return layer
    raise ValueError("Argument `to_prune`: " + pruning_rules.unsupported_message(layer)
                     + " Pass skip_unsupported=True to leave it dense.")


def _leave_alone(layer):
    if isinstance(layer, (*_NEVER_PRUNED, keras.layers.InputLayer)):
        return True
    return layer.built and not layer.weights


def _check_clonable(model, function):
    argument = "to_prune" if function == "prune_low_magnitude" else "model"
    _model_graph.check_model(model, argument, built=False,
                             advice=f"Apply {function} to its layers inside the model's __init__ instead.")


def _n_m_misfit(layer, n_m):
    """Whether M does not divide the N:M axis of one of a built layer's prunable weights."""
    if n_m is None or not layer.built:
        return False
    try:
        found = pruning_rules.prunable_weights(layer)
    except ValueError:
        return False
    return any((v.shape[axis] if len(v.shape) else 1) % n_m[1] for v, axis in found)


def _copy_model(model, clone_layer_function, skip_unsupported, sparsity_m_by_n=None):
    """Clones a Sequential/functional model, wrapping the prunable layers (but those whose channels the N:M
    pattern's M does not divide: they stay dense, with one warning); copies every weight. Returns the new model
    and its wrappers in model order."""
    _check_clonable(model, "prune_low_magnitude")
    copies = []  # (original layer, new layer whose weights receive the original's)
    left_dense = []

    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        fresh = layer.__class__.from_config(layer.get_config())
        copies.append((layer, fresh))
        if isinstance(layer, _wrapper.PruneLowMagnitude):
            return fresh
        if pruning_rules.is_prunable(layer) and _n_m_misfit(layer, sparsity_m_by_n):
            left_dense.append(f"{layer.name!r} ({type(layer).__name__})")
            return fresh
        if pruning_rules.is_prunable(layer):
            inner = fresh
            copies[-1] = (layer, inner)
            return clone_layer_function(inner)
        if skip_unsupported or _leave_alone(layer):
            return fresh
        raise ValueError(pruning_rules.unsupported_message(layer) + " Pass skip_unsupported=True to leave it dense.")

    new = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for original, fresh in copies:
        fresh.set_weights(original.get_weights())
    if left_dense:
        n, m = sparsity_m_by_n
        warnings.warn(
            f"prune_low_magnitude(sparsity_m_by_n={(n, m)!r}) leaves {len(left_dense)} layer(s) dense because "
            f"{m} does not divide their input channels: {', '.join(left_dense)}. The other layers are pruned "
            f"{n}:{m}.",
            stacklevel=3,
        )
    return new, _collect_wrappers(new)


def _collect_wrappers(model):
    found = []
    for layer in model.layers:
        if isinstance(layer, _wrapper.PruneLowMagnitude):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(_collect_wrappers(layer))
    return found


def collect_wrappers(model):
    """Every `PruneLowMagnitude` in a model (nested models included), in model order."""
    return _collect_wrappers(model)


def strip_pruning(model):
    """A plain model with the pruning wrappers removed and `weight * mask` in the weights.

    The result has no tfopt wrapper classes and predicts exactly what the pruned model predicts; its zeros are
    real zeros (they compress, and `sparsity_report` / `measure_model` count them). A Sequential or functional
    model is copied (the pruned model is not changed, so training can go on); a single `PruneLowMagnitude` layer
    returns its wrapped layer with the masks written into its weights. A tf_keras model goes to tfmot's
    `strip_pruning`.

    Args:
        model: a model pruned by `prune_low_magnitude`, or a `PruneLowMagnitude` layer.

    Returns:
        The stripped model (or layer).
    """
    if _tfmot_bridge.is_tf_keras(model):
        return _tfmot_bridge.strip_pruning(model)
    if isinstance(model, _wrapper.PruneLowMagnitude):
        model.apply_masks()
        return model.layer
    if not isinstance(model, keras.Model):
        raise TypeError("Argument `model` must be a keras.Model or a PruneLowMagnitude layer. Received: "
                        f"model={model!r} of type {type(model).__name__}")
    _check_clonable(model, "strip_pruning")
    copies = []

    def clone(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        if isinstance(layer, _wrapper.PruneLowMagnitude):
            fresh = layer.layer.__class__.from_config(layer.layer.get_config())
            masked = {id(v): keras.ops.convert_to_numpy(w) for v, w in zip(layer.pruned_weights,
                                                                          layer.masked_weights())}
            values = [masked.get(id(v), None) for v in layer.layer.weights]
            values = [keras.ops.convert_to_numpy(v) if m is None else m for v, m in zip(layer.layer.weights, values)]
            copies.append((values, fresh))
            return fresh
        fresh = layer.__class__.from_config(layer.get_config())
        copies.append((layer.get_weights(), fresh))
        return fresh

    new = keras.models.clone_model(model, clone_function=clone, recursive=True)
    for values, fresh in copies:
        fresh.set_weights(values)
    return new


def sparsity_report(model):
    """Per-layer and total sparsity of the prunable weights of a model (pruned, stripped, or never pruned).

    For a layer inside a `PruneLowMagnitude` the weights counted are `weight * mask` (what the layer computes
    with), with the current threshold; for a plain layer of a prunable type, its weights as stored.

    Args:
        model: a `keras.Model` or a layer.

    Returns:
        A dict: "layers", a list with one dict per prunable weight (layer, weight, shape, size, nonzero, sparsity,
        threshold or None), and "total" (size, nonzero, sparsity over all of them).
    """
    if _tfmot_bridge.is_tf_keras(model):
        raise TypeError("Argument `model` must be a Keras 3 model; for a tf_keras model, strip_pruning it and "
                        "count zeros with numpy, or use tfmot's own tooling. Received a tf_keras model")
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"Argument `model` must be a keras.Model or layer. Received: model={model!r} of type "
                        f"{type(model).__name__}")
    rows = []
    for layer in _walk(model):
        if isinstance(layer, _wrapper.PruneLowMagnitude):
            if not layer.built:
                continue
            for variable, value, threshold in zip(layer.pruned_weights, layer.masked_weights(), layer.thresholds):
                rows.append(_row(layer.name, variable, value, float(keras.ops.convert_to_numpy(threshold))))
        elif pruning_rules.is_prunable(layer) and layer.built and not isinstance(layer, keras.Model):
            try:
                found = pruning_rules.prunable_weights(layer)
            except ValueError:
                continue
            for variable, _ in found:
                rows.append(_row(layer.name, variable, variable.value, None))
    size = sum(r["size"] for r in rows)
    nonzero = sum(r["nonzero"] for r in rows)
    return {"layers": rows,
            "total": {"size": size, "nonzero": nonzero, "sparsity": 1.0 - nonzero / size if size else 0.0}}


def _row(layer_name, variable, value, threshold):
    value = keras.ops.convert_to_numpy(value)
    nonzero = int(np.count_nonzero(value))
    return {"layer": layer_name, "weight": variable.name, "shape": tuple(value.shape), "size": int(value.size),
            "nonzero": nonzero, "sparsity": 1.0 - nonzero / value.size if value.size else 0.0,
            "threshold": threshold}


def _walk(layer):
    yield layer
    if isinstance(layer, _wrapper.PruneLowMagnitude):
        return
    for sub in getattr(layer, "layers", None) or []:
        yield from _walk(sub)
