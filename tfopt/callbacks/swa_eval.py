"""SWAEval: evaluate, predict and save with SWA's averaged weights (their BatchNormalization statistics recomputed
by `recompute_batch_norm_statistics`)."""

import keras

from tfopt import _checks
from tfopt.callbacks._eval_swap import EvalSwap
from tfopt.callbacks.batch_norm_statistics import recompute_batch_norm_statistics
from tfopt.optimizers.swa import SWA


def find_swa_optimizer(optimizer):
    """The `SWA` optimizer in `optimizer` or among the optimizers it wraps (`inner_optimizer`), or None."""
    while optimizer is not None:
        if isinstance(optimizer, SWA):
            return optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None


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

    >>> import numpy as np
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
        batch_size = _checks.integer("batch_size", batch_size, 1)
        steps = _checks.integer("steps", steps, 1, optional=True)
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
