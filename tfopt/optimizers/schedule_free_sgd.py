"""ScheduleFreeSGD: SGD with momentum replaced by interpolation and averaging (Defazio et al. 2024)."""

import keras

from tfopt.optimizers._schedule_free import ScheduleFreeOptimizer


@keras.saving.register_keras_serializable(package="tfopt")
class ScheduleFreeSGD(ScheduleFreeOptimizer):
    """Schedule-Free SGD: a constant learning rate (after warmup) instead of momentum SGD with a decay schedule.

    Schedule-Free replaces momentum and the decay schedule by interpolation and averaging, so training needs no
    stopping time fixed in advance. Use it where you would use SGD with momentum and a step or cosine schedule
    (image classifiers with BatchNormalization); the reference suggests a learning rate 1-10x larger than the
    scheduled SGD's peak, and `beta_1` plays momentum's part. Gradients are taken at `y`, the point the model's
    variables hold during training; evaluate, predict and save at `x`, the average: wrap `fit` with
    `tfopt.callbacks.ScheduleFreeEval` (or call `swap_to_eval` / `swap_to_train` with the model's trainable
    variables). Models with BatchNormalization should recompute its statistics at `x` before evaluating (see
    `tfopt.callbacks.recompute_batch_norm_statistics`), as the reference recommends.

    This follows the reference implementation (facebookresearch/schedule_free, `SGDScheduleFree`). With `g` the
    gradient at y, `k` the update index (0 first) and `lr` the learning rate:

        lr_k    = lr * min(1, (k + 1) / warmup_steps)
        lr_max  = max_{i <= k} lr_i
        w_k     = (k + 1)^r * lr_max^weight_lr_power,        c_{k+1} = w_k / sum_{i <= k} w_i
        d       = g + weight_decay * y
        y       <- (1 - c_{k+1}) y + c_{k+1} z + lr_k (beta_1 (1 - c_{k+1}) - 1) d
        z       <- z - lr_k d

    `z` starts equal to the initial weights; `x`, never stored, is `(y - (1 - beta_1) z) / beta_1`, and the y
    line is `x <- (1 - c_{k+1}) x + c_{k+1} z`, `y = (1 - beta_1) z + beta_1 x` after the z step. The weight
    decay is taken at y and multiplied by the learning rate, as in PyTorch's SGD.

    Args:
        learning_rate: a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule` or a callable.
            Default 1.0 (the reference's). Warmup is built in; a decay schedule is not needed.
        beta_1: interpolation between z and x in y (the momentum), in (0, 1). Default 0.9.
        warmup_steps: linear warmup length in updates, an integer >= 0. Default 0.
        r: polynomial weighting of the average, w_k ~ (k + 1)^r, a number >= 0. Default 0.0.
        weight_lr_power: power of lr_max in the averaging weights, a number >= 0. Default 2.0.
        weight_decay: L2 coefficient added to the gradient at y, a number >= 0 or None (none). Default None.
        **kwargs: the base optimizer options (`clipnorm`, `global_clipnorm`, `clipvalue`, `use_ema`,
            `loss_scale_factor`, `gradient_accumulation_steps`, `name`, ...), passed to
            `keras.optimizers.Optimizer`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(ScheduleFreeSGD(0.1, warmup_steps=10), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)
    >>> model.optimizer.swap_to_eval(model.trainable_variables)  # now evaluate / predict / save
    >>> model.optimizer.in_eval_mode
    True

    References:
        - Defazio, Yang, Mehta, Mishchenko, Khaled and Cutkosky, 2024, "The Road Less Scheduled",
          https://arxiv.org/abs/2405.15682
        - Reference implementation: https://github.com/facebookresearch/schedule_free
    """

    def __init__(
        self,
        learning_rate=1.0,
        beta_1=0.9,
        warmup_steps=0,
        r=0.0,
        weight_lr_power=2.0,
        weight_decay=None,
        name=None,
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            warmup_steps=warmup_steps,
            r=r,
            weight_lr_power=weight_lr_power,
            weight_decay=weight_decay,
            name=name,
            **kwargs,
        )

    def _direction(self, gradient, variable):
        return gradient
