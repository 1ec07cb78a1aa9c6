"""SWA: stochastic weight averaging of any optimizer's iterates (Izmailov et al. 2018)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _common
from tfopt.optimizers._eval_swap import EvalSwapMixin
from tfopt.optimizers._wrapper import OptimizerWrapper


@keras.saving.register_keras_serializable(package="tfopt")
class SWA(EvalSwapMixin, OptimizerWrapper):
    """Wraps any optimizer and keeps the running average of its weights, taken every few steps late in training.

    Averaging the weights SGD visits along a high or cyclical learning rate lands in a wider, flatter region of
    the loss than any single iterate and generalizes better, for the cost of one copy of the weights. Use it for
    the last 20-25% of a run: train normally, then continue with a constant or cyclical learning rate while SWA
    averages every `average_period` steps (or once per epoch), and evaluate and ship the average. The model trains
    on its own weights; the average lives in optimizer slots, and `swap_to_eval` / `swap_to_train` exchange the
    two (exactly, in place). `tfopt.callbacks.SWAEval` does so around evaluation, prediction and saving,
    and `tfopt.callbacks.recompute_batch_norm_statistics` refreshes BatchNormalization statistics for the
    averaged weights, which SWA requires for networks with BatchNormalization.

    With `theta_t` the weights after the inner optimizer's update number `t` (1, 2, ...), `s = start_averaging`,
    `p = average_period` and the snapshot steps `t_j = t_0 + j p` (`t_0 = s`, or `p` when `s = 0`):

        theta_swa <- theta_swa + (theta_t - theta_swa) / (j + 1)      at t = t_j,  j = 0, 1, ...

    so after `n` snapshots `theta_swa` is their plain mean. Counting uses the inner optimizer's `iterations`,
    so with inner `gradient_accumulation_steps` a step is an applied update. Put a `LossScaleOptimizer` around
    SWA, not inside it (Keras's `compile` does so under mixed precision), so that skipped steps are skipped here
    too.

    Args:
        optimizer: the inner optimizer: a `keras.optimizers.Optimizer`, or a string identifier or config that
            `keras.optimizers.get` resolves ("sgd", "adam", ...).
        start_averaging: `s`, the step count from which snapshots are averaged, an integer >= 0. Default 0.
        average_period: `p`, the number of steps between snapshots, an integer >= 1. Default 10.
        name: optional name.

    Example:

    >>> optimizer = SWA(keras.optimizers.SGD(0.5), start_averaging=2, average_period=2)
    >>> w = keras.Variable([0.0])
    >>> for _ in range(6):
    ...     optimizer.apply([keras.ops.ones((1,))], [w])  # w: -0.5, -1, ..., -3
    >>> optimizer.averaged_snapshots  # steps 2, 4 and 6
    3
    >>> optimizer.swap_to_eval([w])
    >>> keras.ops.convert_to_numpy(w).tolist()  # mean of -1, -2 and -3
    [-2.0]

    References:
        - Izmailov, Podoprikhin, Garipov, Vetrov and Wilson, 2018, "Averaging Weights Leads to Wider Optima and
          Better Generalization", https://arxiv.org/abs/1803.05407
    """

    def __init__(self, optimizer, start_averaging=0, average_period=10, name=None, **kwargs):
        start_averaging = _checks.integer("start_averaging", start_averaging, 0)
        average_period = _checks.integer("average_period", average_period, 1)
        super().__init__(optimizer, name=name, **kwargs)
        self.start_averaging = start_averaging
        self.average_period = average_period

    @property
    def _first_snapshot(self):
        return self.start_averaging if self.start_averaging > 0 else self.average_period

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._averages = self.add_optimizer_variables(var_list, "average")
        self._eval_mode = self.add_variable(shape=(), dtype="int", initializer="zeros", name="eval_mode")

    def apply(self, grads, trainable_variables=None):
        self._build_if_needed(trainable_variables)
        self.inner_optimizer.apply(grads, trainable_variables)
        # The base class's update path (which the gradients only ride along) folds the new weights into the
        # average in `update_step`.
        super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        average = self._averages[self._get_variable_index(variable)]
        steps = self.inner_optimizer.iterations
        due = ops.logical_and(
            ops.greater_equal(steps, self._first_snapshot),
            ops.equal((steps - self._first_snapshot) % self.average_period, 0),
        )
        accumulation = self.inner_optimizer.gradient_accumulation_steps
        if accumulation:
            # The inner optimizer applies an update on every `accumulation`-th call only; `_iterations` counts
            # this wrapper's calls, the current one not yet included.
            applied = ops.equal((self._iterations + 1) % accumulation, 0)
            due = ops.logical_and(due, applied)
        snapshots_before = ops.cast((steps - self._first_snapshot) // self.average_period, variable.dtype)

        def targets():
            # average <- average + (w - average) / (snapshots + 1), the running mean of the snapshots.
            weights = ops.convert_to_tensor(variable)
            return [(average, average.value + (weights - average.value) / (snapshots_before + 1.0))]

        _common.assign_when(self, due, targets)

    @property
    def averaged_snapshots(self):
        """How many snapshots the average holds so far (0 before the first)."""
        steps = int(ops.convert_to_numpy(self.inner_optimizer.iterations)) if self.built else 0
        if steps < self._first_snapshot:
            return 0
        return (steps - self._first_snapshot) // self.average_period + 1

    def _eval_slots(self):
        return self._averages

    def _has_eval_weights(self):
        return self.averaged_snapshots > 0  # No average yet: the model keeps its weights, in training mode.

    def _exchange(self, variable, average, to_eval):
        weights = ops.copy(ops.convert_to_tensor(variable))
        variable.assign(average)
        average.assign(weights)

    def swap_to_eval(self, variables):
        """Exchanges `variables` (the trained weights) with their averages, for evaluation, prediction or saving.

        Does nothing before the first snapshot or when the averages are already in. Pass the variables this
        optimizer trains (`model.trainable_variables`); the slots keep the trained weights until `swap_to_train`.
        The state is an optimizer variable, saved with the model.
        """
        self._swap(variables, to_eval=True)

    def swap_to_train(self, variables):
        """Puts the trained weights back into `variables` (and the averages back into the slots)."""
        self._swap(variables, to_eval=False)

    def assign_average_vars(self, var_list):
        """Writes the average into `var_list` for good (TensorFlow Addons' method; `swap_to_eval` exchanges
        instead, so that training can go on). Does nothing to variables before the first snapshot."""
        if self.averaged_snapshots == 0:
            return
        for variable in var_list:
            if self._var_key(variable) in self._trainable_variables_indices:  # e.g. not BatchNorm statistics
                variable.assign(self._averages[self._get_variable_index(variable)])

    def _wrapper_config(self):
        return {"start_averaging": self.start_averaging, "average_period": self.average_period}
