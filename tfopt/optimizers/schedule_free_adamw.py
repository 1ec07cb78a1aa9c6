"""ScheduleFreeAdamW: AdamW without a learning-rate schedule (Defazio et al. 2024, "The Road Less Scheduled")."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers._schedule_free import ScheduleFreeOptimizer


@keras.saving.register_keras_serializable(package="tfopt")
class ScheduleFreeAdamW(ScheduleFreeOptimizer):
    """Schedule-Free AdamW: a constant learning rate (after warmup) that matches or beats a tuned decay schedule.

    Schedule-Free replaces momentum and the decay schedule by interpolation and averaging, so training needs no
    stopping time fixed in advance and can run on or stop at any step. It won the self-tuning track of the
    AlgoPerf 2024 benchmark. Use it where you would use AdamW with warmup + cosine decay, with the same or a
    slightly larger learning rate, a warmup of a few percent of the steps, and no schedule. Gradients are taken
    at `y`, the point the model's variables hold during training; evaluate, predict and save at `x`, the
    average: wrap `fit` with `tfopt.callbacks.ScheduleFreeEval` (or call `swap_to_eval` / `swap_to_train` with
    the model's trainable variables), as the paper's reference implementation asks for `optimizer.eval()` and
    `optimizer.train()`.

    This follows the reference implementation (facebookresearch/schedule_free, `AdamWScheduleFree`), including
    Adam's bias correction folded into the learning rate, which also enters the averaging weights. Keras's own
    `keras.optimizers.ScheduleFreeAdamW` differs: it averages uniformly, decays weights before the step, and
    under `model.fit` on TensorFlow starts `z` at zero, so one step sends every weight to `-+lr`.

    With `g` the gradient at y, `k` the update index (0 first), `lr` the learning rate and `b1`, `b2` the betas:

        v       <- b2 v + (1 - b2) g^2
        lr_k    = lr * min(1, (k + 1) / warmup_steps) * sqrt(1 - b2^(k + 1))
        lr_max  = max_{i <= k} lr_i
        w_k     = (k + 1)^r * lr_max^weight_lr_power,        c_{k+1} = w_k / sum_{i <= k} w_i
        d       = g / (sqrt(v) + epsilon) + weight_decay * y
        y       <- (1 - c_{k+1}) y + c_{k+1} z + lr_k (b1 (1 - c_{k+1}) - 1) d
        z       <- z - lr_k d

    `z` starts equal to the initial weights; `x`, never stored, is `(y - (1 - b1) z) / b1`, and the two lines
    above are `z <- z - lr_k d`, `x <- (1 - c_{k+1}) x + c_{k+1} z`, `y = (1 - b1) z + b1 x`.

    Args:
        learning_rate: a number >= 0, a `keras.optimizers.schedules.LearningRateSchedule` or a callable.
            Default 0.0025 (the reference's). A schedule is allowed but rarely needed; warmup is built in.
        beta_1: interpolation between z and x in y, in (0, 1) (0 would leave x unrecoverable). Default 0.9;
            0.95 or 0.98 can help long runs.
        beta_2: decay of the squared-gradient average, in [0, 1). Default 0.999.
        epsilon: added to sqrt(v), a number >= 0. Default 1e-8.
        warmup_steps: linear warmup length in updates, an integer >= 0. Default 0.
        r: polynomial weighting of the average, w_k ~ (k + 1)^r, a number >= 0. Default 0.0.
        weight_lr_power: power of lr_max in the averaging weights, a number >= 0. Default 2.0.
        weight_decay: coefficient of the decay taken at y and applied through z, a number >= 0 or None (none).
            Default None. `exclude_from_weight_decay` works as for Keras's optimizers.
        **kwargs: the base optimizer options (`clipnorm`, `global_clipnorm`, `clipvalue`, `use_ema`,
            `loss_scale_factor`, `gradient_accumulation_steps`, `name`, ...), passed to
            `keras.optimizers.Optimizer`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(ScheduleFreeAdamW(0.01, warmup_steps=10), loss="mse")
    >>> from tfopt.callbacks.schedule_free_eval import ScheduleFreeEval
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0, callbacks=[ScheduleFreeEval()])
    >>> model.optimizer.in_eval_mode
    True

    References:
        - Defazio, Yang, Mehta, Mishchenko, Khaled and Cutkosky, 2024, "The Road Less Scheduled",
          https://arxiv.org/abs/2405.15682
        - Reference implementation: https://github.com/facebookresearch/schedule_free
    """

    def __init__(
        self,
        learning_rate=0.0025,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        warmup_steps=0,
        r=0.0,
        weight_lr_power=2.0,
        weight_decay=None,
        name=None,
        **kwargs,
    ):
        beta_2 = _checks.number("beta_2", beta_2, 0.0, 1.0, high_open=True)
        epsilon = _checks.number("epsilon", epsilon, 0.0)
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
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")

    def _lr_factor(self, step):
        # 1 - b2^t with b2 rounded to float32 as in the velocity update: the two roundings cancel in
        # v / (1 - b2^t), which an exactly computed correction (expm1) would leave at ~1e-5 at small t.
        return ops.sqrt(1.0 - ops.power(ops.cast(self.beta_2, "float32"), step))

    def _direction(self, gradient, variable):
        velocity = self._velocities[self._get_variable_index(variable)]
        one_minus_beta_2 = 1.0 - ops.cast(self.beta_2, variable.dtype)
        # v <- b2 v + (1 - b2) g^2, in place.
        self.assign_add(velocity, (ops.square(gradient) - velocity) * one_minus_beta_2)
        return gradient / (ops.sqrt(velocity) + ops.cast(self.epsilon, variable.dtype))

    def get_config(self):
        config = super().get_config()
        config.update({"beta_2": self.beta_2, "epsilon": self.epsilon})
        return config
