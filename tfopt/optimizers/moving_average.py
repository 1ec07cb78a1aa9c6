"""MovingAverage: an exponential moving average of any optimizer's weights, kept in its slots (TensorFlow Addons'
`MovingAverage`, Polyak averaging)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _common
from tfopt.optimizers._wrapper import OptimizerWrapper


@keras.saving.register_keras_serializable(package="tfopt")
class MovingAverage(OptimizerWrapper):
    """Wraps any optimizer and keeps an exponential moving average of the weights it produces.

    The average of the recent iterates is usually a better model than the last one (less noise from the last
    steps, often a better validation score), for one copy of the weights. Train as usual; before evaluating or
    saving, `assign_average_vars(model.trainable_variables)` puts the average into the model. This is TensorFlow
    Addons' `tfa.optimizers.MovingAverage`, value for value; Keras's own `use_ema=True` option is the same idea
    with another first step (its average starts at the first updated weights, this one at the initial weights)
    and the average written over the weights every `ema_overwrite_frequency` steps.

    With `w_t` the weights after the inner optimizer's step `t` (0 first), `w_-1` the initial weights,
    `s = start_step`, `d = average_decay` and `n = num_updates`:

        a    <- w_-1                                             (when the optimizer is built)
        d_t  = 0                                  if t < s      (the average follows the weights)
               min(d, (1 + t - s) / (10 + t - s)) if dynamic_decay
               d                                  otherwise
        (with `num_updates`, d is first replaced by min(d, (1 + n) / (10 + n)))
        a    <- a - (1 - d_t) (a - w_t)

    Args:
        optimizer: the inner optimizer (an instance, a name or a config).
        average_decay: `d`, in [0, 1]. Default 0.99.
        num_updates: None or an integer >= 0 that caps the decay at `(1 + n) / (10 + n)`. Default None.
        start_step: `s`, the step from which averaging starts, an integer >= 0. Default 0.
        dynamic_decay: whether the decay grows from 0.1 towards `d` with the steps since `s`. Default False.
        name: optional name.

    Example:

    >>> optimizer = MovingAverage(keras.optimizers.SGD(1.0), average_decay=0.5)
    >>> w = keras.Variable([0.0])
    >>> for _ in range(2):
    ...     optimizer.apply([keras.ops.ones((1,))], [w])  # w: -1, then -2
    >>> optimizer.assign_average_vars([w])  # a: 0 -> -0.5 -> -1.25
    >>> keras.ops.convert_to_numpy(w).tolist()
    [-1.25]

    References:
        - Polyak and Juditsky, 1992, "Acceleration of Stochastic Approximation by Averaging", SIAM Journal on
          Control and Optimization 30(4)
    """

    def __init__(self, optimizer, average_decay=0.99, num_updates=None, start_step=0, dynamic_decay=False,
                 name=None, **kwargs):
        average_decay = _checks.number("average_decay", average_decay, 0.0, 1.0)
        num_updates = _checks.integer("num_updates", num_updates, 0, optional=True)
        start_step = _checks.integer("start_step", start_step, 0)
        dynamic_decay = _checks.boolean("dynamic_decay", dynamic_decay)
        super().__init__(optimizer, name=name, **kwargs)
        self.average_decay = average_decay
        self.num_updates = num_updates
        self.start_step = start_step
        self.dynamic_decay = dynamic_decay
        self._phase = "start"

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._averages = self.add_optimizer_variables(var_list, "average")

    def apply(self, grads, trainable_variables=None):
        self._build_if_needed(trainable_variables)
        # As Lookahead: a pass of the base class's update path before the inner step copies the initial weights
        # into the averages on the very first step, one after it folds the new weights in.
        self._phase = "start"
        super().apply(grads, trainable_variables)
        self.inner_optimizer.apply(grads, trainable_variables)
        self._phase = "average"
        super().apply(grads, trainable_variables)

    def _decay(self, t, dtype):
        decay = self.average_decay
        if self.num_updates is not None:
            decay = min(decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        decay = ops.cast(decay, dtype)
        if self.dynamic_decay:
            count = t - self.start_step
            decay = ops.minimum(decay, (1.0 + count) / (10.0 + count))
        return ops.where(t < self.start_step, ops.zeros((), dtype), decay)

    def update_step(self, gradient, variable, learning_rate):
        average = self._averages[self._get_variable_index(variable)]
        steps = self.inner_optimizer.iterations
        if self._phase == "start":
            _common.assign_when(self, ops.equal(steps, 0), lambda: [(average, ops.convert_to_tensor(variable))])
            return
        # The inner optimizer has counted this step already: it was step `steps - 1` (0 first).
        decay = self._decay(ops.cast(steps - 1, variable.dtype), variable.dtype)
        weights = ops.convert_to_tensor(variable)
        self.assign(average, average.value - (1.0 - decay) * (average.value - weights))

    def assign_average_vars(self, var_list):
        """Writes each variable's moving average into it (before evaluating or saving the averaged model);
        variables it does not train (`model.variables` may be passed) are left as they are."""
        for variable in var_list:
            if self._var_key(variable) in self._trainable_variables_indices:  # e.g. not BatchNorm statistics
                variable.assign(self._averages[self._get_variable_index(variable)])

    def _wrapper_config(self):
        return {"average_decay": self.average_decay, "num_updates": self.num_updates, "start_step": self.start_step,
                "dynamic_decay": self.dynamic_decay}
