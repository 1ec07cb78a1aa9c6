"""ScheduleFreeEval: evaluate, predict and save a Schedule-Free model at its average x, train it at y."""

import keras

from tfopt.callbacks._eval_swap import EvalSwap
from tfopt.optimizers._schedule_free import ScheduleFreeOptimizer


def find_schedule_free_optimizer(optimizer):
    """The Schedule-Free optimizer in `optimizer` or among the optimizers it wraps (`inner_optimizer`), or None."""
    while optimizer is not None:
        if isinstance(optimizer, ScheduleFreeOptimizer):
            return optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None


@keras.saving.register_keras_serializable(package="tfopt")
class ScheduleFreeEval(EvalSwap):
    """Swaps a Schedule-Free optimizer's evaluation point x into the model outside the training steps.

    `ScheduleFreeSGD` and `ScheduleFreeAdamW` take gradients at `y`, which the model's variables hold while
    training; the point to evaluate, predict with and save is the average `x = (y - (1 - beta_1) z) / beta_1`.
    This callback keeps the model at `x` whenever it is not training: it swaps `y` in when training starts and at
    the start of every epoch, and `x` in at the end of every epoch, before validation and prediction, and when
    `fit` returns. After `fit` the model therefore holds `x`, ready for `evaluate`, `predict` and `save`; the
    optimizer records which point the variables hold (and saves that with the model), so the next `fit` with
    this callback swaps `y` back in first. Pass it to every `fit` of a Schedule-Free model, and list it before
    callbacks that save or copy the weights at the end of an epoch (`ModelCheckpoint`, `EarlyStopping` with
    `restore_best_weights=True`), so that they see `x`. Saves in the middle of an epoch (`save_freq` in batches)
    see `y`.

    The optimizer may be wrapped (`LossScaleOptimizer`, tfopt's optimizer wrappers): the callback follows
    `inner_optimizer` to it. Pass it to `evaluate` or `predict` as well to swap `x` in before they run.

    Example:

    >>> import numpy as np
    >>> from tfopt.optimizers.schedule_free_sgd import ScheduleFreeSGD
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile(ScheduleFreeSGD(0.1), loss="mse")
    >>> history = model.fit(np.ones((8, 2)), np.ones((8, 1)), verbose=0, callbacks=[ScheduleFreeEval()])
    >>> model.optimizer.in_eval_mode
    True
    """

    def _optimizer(self):
        optimizer = find_schedule_free_optimizer(getattr(self.model, "optimizer", None))
        if optimizer is None:
            raise ValueError(
                "ScheduleFreeEval needs a model compiled with a Schedule-Free optimizer (ScheduleFreeSGD or "
                "ScheduleFreeAdamW, possibly wrapped). Received: optimizer="
                f"{getattr(self.model, 'optimizer', None)!r}"
            )
        return optimizer

    def _to_eval(self):
        self._optimizer().swap_to_eval(self.model.trainable_variables)

    def _to_train(self):
        self._optimizer().swap_to_train(self.model.trainable_variables)

    def get_config(self):
        return {}
