"""recompute_batch_norm_statistics: BatchNormalization moving statistics recomputed for a model's current weights
(after SWA's or Schedule-Free's weights were swapped in), as a cumulative average over data."""

import keras
import numpy as np

from tfopt import _checks


def _batch_norm_layers(layer):
    found = [layer] if isinstance(layer, keras.layers.BatchNormalization) else []
    for sublayer in getattr(layer, "layers", []):
        found.extend(_batch_norm_layers(sublayer))
    return found


def _input_batches(data, batch_size, steps):
    if hasattr(data, "shape") and hasattr(data, "__array__"):  # NumPy, TensorFlow or JAX arrays
        data = np.asarray(data)
        batches = (data[i: i + batch_size] for i in range(0, len(data), batch_size))
    else:
        batches = iter(data)
    for count, batch in enumerate(batches):
        if steps is not None and count >= steps:
            return
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def recompute_batch_norm_statistics(model, data, batch_size=32, steps=None):
    """Sets every BatchNormalization layer's moving mean and variance to their average over one pass of `data`.

    Averaged weights (SWA's, Schedule-Free's x) never produced the activations the moving statistics were
    collected on, so a network with BatchNormalization must have them recomputed before it is evaluated. This runs
    the model in training mode over `data`, batch by batch, with each layer's momentum set to `b / (b + 1)` for
    batch `b` (0 first), so that after the pass

        moving_mean = (1 / B) sum_b mean_b,        moving_variance = (1 / B) sum_b var_b

    the plain average of the B batch statistics (PyTorch's `torch.optim.swa_utils.update_bn` computes the same
    cumulative average). The old statistics do not enter, so nothing needs resetting. Trainable weights do not
    change; layers that behave differently in training (Dropout) do so during the pass, as in PyTorch. Momenta are
    restored afterwards.

    Args:
        model: the Keras model, holding the weights to compute statistics for.
        data: a NumPy array of inputs, or an iterable of batches (a `tf.data.Dataset`, a list, a generator); a
            batch that is a tuple or list `(x, y, ...)` contributes its first element.
        batch_size: batch size used to split an array, an integer >= 1. Default 32.
        steps: use at most this many batches, or None for all. Default None.

    Returns:
        The number of batches used (0 when the model has no BatchNormalization layer, which leaves it unchanged).
    """
    batch_size = _checks.integer("batch_size", batch_size, 1)
    steps = _checks.integer("steps", steps, 1, optional=True)
    layers = _batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    count = 0
    try:
        for count, batch in enumerate(_input_batches(data, batch_size, steps), start=1):
            for layer in layers:
                layer.momentum = (count - 1) / count
            model(batch, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return count
