"""The machinery ScheduleFreeSGD and ScheduleFreeAdamW share: averaging weights, the y/z/x relations, eval swap.

Schedule-Free keeps two sequences per variable: `z`, where the base optimizer's steps land (a slot), and `x`, the
weighted average of the `z` iterates that evaluation should use. The model's variable holds
`y = (1 - beta_1) z + beta_1 x`, the point where gradients are taken. `x` is not stored: it is recovered from y and
z as `x = (y - (1 - beta_1) z) / beta_1`, so the method costs one slot more than plain SGD.
"""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common
from tfopt.optimizers._eval_swap import EvalSwapMixin


class ScheduleFreeOptimizer(EvalSwapMixin, _base.Optimizer):
    """Base of the Schedule-Free optimizers; subclasses define `_direction(gradient, variable)`, the step direction
    before weight decay (the gradient for SGD, the preconditioned gradient for AdamW), and may define `_lr_factor`.

    Per step `k` (0 for the first update), with `lr` the (scheduled) learning rate, the reference implementation
    (facebookresearch/schedule_free) computes

        lr_k    = lr * min(1, (k + 1) / warmup_steps) * lr_factor(k)
        lr_max  = max(lr_max, lr_k)
        w_k     = (k + 1)^r * lr_max^weight_lr_power
        c_{k+1} = w_k / sum_{i <= k} w_i
        d       = direction(g, y) + weight_decay * y
        y      <- (1 - c_{k+1}) y + c_{k+1} z + lr_k (beta_1 (1 - c_{k+1}) - 1) d
        z      <- z - lr_k d

    The `y` line is `y = (1 - beta_1) z + beta_1 x` after `z` took its step and `x <- (1 - c) x + c z`, written
    without forming `x`. `lr_max`, the sum of the weights and the step they were last advanced at are optimizer
    variables; every `update_step` of one step computes the same new values from the values before the step, so
    they advance once per step whichever variables get gradients.
    """

    def __init__(self, learning_rate, beta_1, warmup_steps, r, weight_lr_power, weight_decay, **kwargs):
        learning_rate = _checks.learning_rate(learning_rate)
        beta_1 = _checks.number("beta_1", beta_1, 0.0, 1.0, low_open=True, high_open=True)
        warmup_steps = _checks.integer("warmup_steps", warmup_steps, 0)
        r = _checks.number("r", r, 0.0)
        weight_lr_power = _checks.number("weight_lr_power", weight_lr_power, 0.0)
        weight_decay = _checks.weight_decay(weight_decay)
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        self.beta_1 = beta_1
        self.warmup_steps = warmup_steps
        self.r = r
        self.weight_lr_power = weight_lr_power

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # z starts equal to y. It is filled in on the first update (step 0), not here: Keras may build the
        # optimizer inside a traced train function, where a copy made at build time is not kept.
        self._z = self.add_optimizer_variables(var_list, "z")
        scalar = dict(shape=(), dtype="float32", initializer="zeros")
        self._lr_max = self.add_variable(name="lr_max", **scalar)
        self._lr_max_before = self.add_variable(name="lr_max_before", **scalar)
        self._weight_sum = self.add_variable(name="weight_sum", **scalar)
        self._weight_sum_before = self.add_variable(name="weight_sum_before", **scalar)
        self._averaged_at = self.add_variable(
            shape=(), dtype="int", initializer=keras.initializers.Constant(-1), name="averaged_at"
        )
        self._eval_mode = self.add_variable(shape=(), dtype="int", initializer="zeros", name="eval_mode")

    def _apply_weight_decay(self, variables):
        # Keras's decoupled decay would act on y before the step; the reference adds weight_decay * y to the
        # step direction instead (see `update_step`), so the base class's version must not run.
        return

    def _lr_factor(self, step):
        """Extra learning-rate factor at 1-based `step` (AdamW's bias correction); 1 for SGD."""
        return 1.0

    def _step_scalars(self, learning_rate):
        """The effective learning rate lr_k and the averaging weight c_{k+1} of this step (float32 scalars)."""
        iterations = ops.cast(self.iterations, self._averaged_at.dtype)
        step = ops.cast(iterations + 1, "float32")
        lr = ops.cast(learning_rate, "float32") * self._lr_factor(step)
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(step / float(self.warmup_steps), 1.0)
        # The first update_step of a step finds `averaged_at` behind and starts from the stored sums; the next
        # ones of the same step start from the copies it kept, so all of them compute the same values.
        first = ops.not_equal(self._averaged_at.value, iterations)
        lr_max_before = ops.where(first, self._lr_max.value, self._lr_max_before.value)
        weight_sum_before = ops.where(first, self._weight_sum.value, self._weight_sum_before.value)
        lr_max = ops.maximum(lr_max_before, lr)
        weight = ops.power(step, self.r) * ops.power(lr_max, self.weight_lr_power)
        weight_sum = weight_sum_before + weight
        self.assign(self._lr_max_before, lr_max_before)
        self.assign(self._weight_sum_before, weight_sum_before)
        self.assign(self._lr_max, lr_max)
        self.assign(self._weight_sum, weight_sum)
        self.assign(self._averaged_at, iterations)
        return lr, ops.divide_no_nan(weight, weight_sum)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr, ckp1 = self._step_scalars(learning_rate)
        lr = ops.cast(lr, dtype)
        ckp1 = ops.cast(ckp1, dtype)
        beta_1 = ops.cast(self.beta_1, dtype)
        # Sparse gradients (TensorFlow's IndexedSlices for Embedding tables) are made dense: y moves towards z
        # in every row each step, looked up or not.
        gradient = _common.dense_gradient(gradient, variable)
        z_slot = self._z[self._get_variable_index(variable)]
        z, z_filled = _common.first_step_value(self, z_slot, variable)
        y = ops.convert_to_tensor(variable)

        direction = self._direction(gradient, variable)
        if self.weight_decay and self._use_weight_decay(variable):
            direction = direction + ops.cast(self.weight_decay, dtype) * y
        # z first, then y from the new z (y <- y + c (z_new - y) - lr (1 - c)(1 - beta_1) d is the update above with
        # z = z_new + lr d), so nothing reads the old z after it is overwritten: under XLA no copy of z is needed to
        # update it in place. Where z was filled in (TensorFlow, each op a pass over the weights) z is updated in
        # place; under XLA the z slot still holds zeros on the first step and gets the selected z's new value.
        if z_filled:
            self.assign_sub(z_slot, lr * direction)
            z = z_slot.value
        else:
            z = z - lr * direction
            self.assign(z_slot, z)
        self.assign_add(variable, ckp1 * (z - y) - lr * (1.0 - ckp1) * (1.0 - beta_1) * direction)

    def _eval_slots(self):
        return self._z

    def _swap_moves_weights(self):
        # Before the first update z is not filled in yet and x = y = z: nothing to move.
        return int(ops.convert_to_numpy(self.iterations)) > 0

    def _exchange(self, variable, z, to_eval):
        if to_eval:
            variable.assign((variable - (1.0 - self.beta_1) * z) / self.beta_1)
        else:
            variable.assign(self.beta_1 * variable + (1.0 - self.beta_1) * z)

    def swap_to_eval(self, variables):
        """Puts the evaluation point `x = (y - (1 - beta_1) z) / beta_1` into `variables` (which hold y).

        Call it before `evaluate`, `predict` or saving the model for inference, with the variables the optimizer
        trains (`model.trainable_variables`); `swap_to_train` undoes it. Calling it twice is harmless: the
        optimizer remembers (in an optimizer variable, saved with the model) which point the variables hold.
        `tfopt.callbacks.ScheduleFreeEval` calls both at the right moments of `fit`.
        """
        self._swap(variables, to_eval=True)

    def swap_to_train(self, variables):
        """Puts the gradient point `y = beta_1 x + (1 - beta_1) z` back into `variables` (which hold x)."""
        self._swap(variables, to_eval=False)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "warmup_steps": self.warmup_steps,
                "r": self.r,
                "weight_lr_power": self.weight_lr_power,
            }
        )
        return config

