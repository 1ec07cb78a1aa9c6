"""SWAEval: evaluate, predict and save with SWA's averaged weights; recompute BatchNormalization statistics for them."""

import keras
import numpy as np

from tfopt.callbacks._eval_swap import EvalSwap
from tfopt.optimizers.swa import SWA


def find_swa_optimizer(optimizer):
    """The `SWA` optimizer in `optimizer` or among the optimizers it wraps (`inner_optimizer`), or None."""
    while optimizer is not None:
        if isinstance(optimizer, SWA):
            return optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None


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
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"Argument `batch_size` must be an integer >= 1. Received: batch_size={batch_size!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"Argument `steps` must be None or an integer >= 1. Received: steps={steps!r}")
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


@keras.saving.register_keras_serializable(package="tfopt")
class SWAEval(EvalSwap):
    """Swaps SWA's averaged weights into the model outside training, optionally recomputing BatchNorm statistics.

    While `fit` runs, the model trains on its own weights and `SWA` averages them in optimizer slots. This
    callback puts the averages in at the end of every epoch, before validation and prediction, and when `fit`
    returns, and the trained weights back at the start of training and of every epoch; before the first snapshot
    it leaves the model alone. After `fit` the model therefore holds the averages, ready for `evaluate`, `predict`
    and `save`; the optimizer records (and saves with the model) which weights are in, so the next `fit` with this
    callback swaps the trained ones back first. List it before callbacks that save or copy the weights at the end
    of an epoch (`ModelCheckpoint`, `EarlyStopping(restore_best_weights=True)`).

    With `batch_norm_data`, every swap to the averages is followed by `recompute_batch_norm_statistics` over that
    data (one pass in training mode), as SWA requires for networks with BatchNormalization. This costs one pass
    over it per swap; the statistics are left as recomputed when training resumes, where they are not used and
    are updated again.

    Args:
        batch_norm_data: None (default: leave the statistics alone), or the inputs to recompute BatchNormalization
            statistics on: a NumPy array or an iterable of batches, as `recompute_batch_norm_statistics` takes.
        batch_size: batch size for an array `batch_norm_data`, an integer >= 1. Default 32.
        steps: at most this many batches of `batch_norm_data`, or None for all. Default None.

    Example:

    >>> from tfopt.optimizers.swa import SWA
    >>> x, y = np.ones((8, 2), "float32"), np.ones((8, 1), "float32")
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(SWA(keras.optimizers.SGD(0.1), average_period=1), loss="mse")
    >>> history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[SWAEval()])
    >>> model.optimizer.in_eval_mode, model.optimizer.averaged_snapshots
    (True, 4)
    """

    def __init__(self, batch_norm_data=None, batch_size=32, steps=None):
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Argument `batch_size` must be an integer >= 1. Received: batch_size={batch_size!r}")
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ValueError(f"Argument `steps` must be None or an integer >= 1. Received: steps={steps!r}")
        self.batch_norm_data = batch_norm_data
        self.batch_size = batch_size
        self.steps = steps

    def _optimizer(self):
        optimizer = find_swa_optimizer(getattr(self.model, "optimizer", None))
        if optimizer is None:
            raise ValueError(
                "SWAEval needs a model compiled with a tfopt SWA optimizer (possibly wrapped). Received: "
                f"optimizer={getattr(self.model, 'optimizer', None)!r}"
            )
        return optimizer

    def _to_eval(self):
        optimizer = self._optimizer()
        if optimizer.in_eval_mode:
            return
        optimizer.swap_to_eval(self.model.trainable_variables)
        if optimizer.in_eval_mode and self.batch_norm_data is not None:
            recompute_batch_norm_statistics(self.model, self.batch_norm_data, self.batch_size, self.steps)

    def _to_train(self):
        self._optimizer().swap_to_train(self.model.trainable_variables)

    def get_config(self):
        # The data is not serialized: a restored callback leaves BatchNormalization statistics alone.
        return {"batch_size": self.batch_size, "steps": self.steps}
