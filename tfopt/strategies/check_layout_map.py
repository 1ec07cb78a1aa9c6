"""`check_layout_map`: refuses a `keras.distribution.LayoutMap` that would silently leave a model replicated or
fail later (Keras only: no TensorFlow)."""

import math
import re

import keras

from tfopt.strategies._structural_layout_map import StructuralLayoutMap
from tfopt.strategies._variables import unique_variables


def check_layout_map(layout_map, model):
    """Checks a layout map against a built model's variables; raises one ValueError that lists every fault.

    `keras.distribution.ModelParallel` looks a variable up by its path (an exact key first, else every key as a
    regex that must match the whole path) and replicates the variable when nothing matches. A key that matches no
    variable (`"up/kernel"` where the path is `"sequential_1/up/kernel"`) therefore leaves the layer replicated
    without a word. This check finds, in one pass:

    - every key that matches no variable of `model`;
    - every variable that two or more keys match (Keras raises only when the variable is created);
    - every sharded dimension the mesh axes do not divide (size % product of the axes' sizes != 0), a layout
      whose rank is not the variable's, and an axis name that is not in the mesh.

    A map from `auto_layout_map` (keys by structural position) is checked through the positions, so it passes for
    a model built again with other auto names.

    Args:
        layout_map: a `keras.distribution.LayoutMap` (with its device mesh).
        model: a built `keras.Model`.

    Returns:
        {variable path: the key that lays it out} for the variables the map shards or places.
    """
    if not isinstance(layout_map, keras.distribution.LayoutMap):
        raise TypeError("Argument `layout_map` must be a keras.distribution.LayoutMap. Received: "
                        f"layout_map={layout_map!r} of type {type(layout_map).__name__}")
    if not isinstance(model, keras.Model) or not model.built:
        raise TypeError(f"Argument `model` must be a built keras.Model. Received: model={model!r} of type "
                        f"{type(model).__name__}")
    mesh = layout_map.device_mesh
    sizes = dict(zip(mesh.axis_names, mesh.shape)) if mesh is not None else {}
    variables = unique_variables(model.weights)
    matches = {}
    if isinstance(layout_map, StructuralLayoutMap):
        for path, structural in layout_map.structural_paths([v.path for v in variables]).items():
            key = layout_map.key_for_structure(structural)
            if key is not None:
                matches[path] = [key]
    else:
        for variable in variables:
            keys = [k for k in layout_map if k == variable.path or re.fullmatch(k, variable.path)]
            if keys:
                matches[variable.path] = keys
    faults = []
    used = {k for keys in matches.values() for k in keys}
    unused = [k for k in layout_map if k not in used]
    if unused:
        faults.append(f"patterns that match no variable: {unused}")
    for path, keys in matches.items():
        if len(keys) > 1:
            faults.append(f"variable {path!r} is matched by several patterns: {keys}")
    for variable in variables:
        keys = matches.get(variable.path)
        if not keys:
            continue
        axes = tuple(keras.distribution.LayoutMap.__getitem__(layout_map, keys[0]).axes)  # the key itself, exactly
        if len(axes) != len(variable.shape):
            faults.append(f"variable {variable.path!r} of shape {tuple(variable.shape)} has a layout of rank "
                          f"{len(axes)}: {axes}")
            continue
        for dim, axis in enumerate(axes):
            names = () if axis is None else (axis,) if isinstance(axis, str) else tuple(axis)
            missing = [n for n in names if n not in sizes]
            if missing:
                faults.append(f"variable {variable.path!r}: axis {missing} is not in the mesh axes "
                              f"{list(sizes)}")
                continue
            split = math.prod(sizes[n] for n in names)
            if names and variable.shape[dim] % split:
                faults.append(f"variable {variable.path!r}: dimension {dim} ({variable.shape[dim]}) is not "
                              f"divisible by the {axis!r} axis ({split})")
    if faults:
        raise ValueError("Argument `layout_map` does not fit the model's variables ("
                         f"{len(variables)} variables, e.g. {variables[0].path!r}): " + "; ".join(faults))
    return {path: keys[0] for path, keys in matches.items()}
