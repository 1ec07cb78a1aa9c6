"""Lookahead: k fast steps forward with any optimizer, then one step back towards them (Zhang et al. 2019)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _common
from tfopt.optimizers._wrapper import OptimizerWrapper


@keras.saving.register_keras_serializable(package="tfopt")
class Lookahead(OptimizerWrapper):
    """Wraps any optimizer: its steps move fast weights; every `sync_period` steps slow weights follow them.

    The inner optimizer takes `sync_period` ordinary steps from the slow weights; then the slow weights move a
    fraction `slow_step_size` of the way to where those steps ended, and the fast weights restart from there.
    This lowers the variance of the inner optimizer and makes it less sensitive to its learning rate and
    hyperparameters, at the cost of one copy of the weights. Use it around Adam, RAdam (as "Ranger") or SGD when
    training is noisy or the learning rate is hard to tune; the paper's defaults are `sync_period=5..10` and
    `slow_step_size=0.5`.

    With `theta` the model's (fast) weights, `phi` the slow weights (a slot, `phi_0 = theta_0`), `k` the sync
    period and `alpha` the slow step size, after the inner optimizer's update number `t` (1, 2, ...):

        theta_t = inner_update(theta_{t-1}, g_t)
        if t % k == 0:   phi <- phi + alpha (theta_t - phi);   theta_t <- phi

    The inner optimizer keeps its own state (it is not reset at synchronisation, as in the paper's experiments
    and optax's default). Counting uses the inner optimizer's `iterations`, so with inner
    `gradient_accumulation_steps` a "step" is an applied update. `learning_rate` reads and sets the inner
    optimizer's; the model and `model.save` see the fast weights, which equal the slow ones right after each
    synchronisation. The base options (clipping, weight decay, `use_ema`, ...) belong on the inner optimizer; its
    moving average (`use_ema=True`) is updated inside its step, so at synchronisation steps it takes in the fast
    weights before they are pulled back. Compose with the other wrappers freely, e.g. "Ranger" is
    `Lookahead(GradientCentralization(RAdam(...)))`.

    Args:
        optimizer: the inner optimizer: a `keras.optimizers.Optimizer`, or a string identifier or config that
            `keras.optimizers.get` resolves ("adam", "sgd", ...).
        sync_period: `k`, the number of inner steps between synchronisations, an integer >= 1. Default 6.
        slow_step_size: `alpha`, in (0, 1]. Default 0.5. `alpha = 1` with any `k` is the inner optimizer alone.
        name: optional name.

    Example:

    >>> optimizer = Lookahead("adam", sync_period=5, slow_step_size=0.5)
    >>> optimizer.learning_rate = 0.01  # sets Adam's
    >>> round(float(optimizer.inner_optimizer.learning_rate), 6)
    0.01

    References:
        - Zhang, Lucas, Hinton and Ba, 2019, "Lookahead Optimizer: k steps forward, 1 step back",
          https://arxiv.org/abs/1907.08610
    """

    def __init__(self, optimizer, sync_period=6, slow_step_size=0.5, name=None, **kwargs):
        sync_period = _checks.integer("sync_period", sync_period, 1)
        slow_step_size = _checks.number("slow_step_size", slow_step_size, 0.0, 1.0, low_open=True)
        super().__init__(optimizer, name=name, **kwargs)
        self.sync_period = sync_period
        self.slow_step_size = slow_step_size
        self._phase = "start"

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._slow_weights = self.add_optimizer_variables(var_list, "slow")

    def apply(self, grads, trainable_variables=None):
        self._build_if_needed(trainable_variables)
        # Two passes of the base class's update path around the inner step: the first copies the weights into the
        # slow slots before the very first inner update (a copy made in `build` can be lost when Keras builds the
        # optimizer while tracing the train step), the second synchronises. The gradients only ride along.
        self._phase = "start"
        super().apply(grads, trainable_variables)
        self.inner_optimizer.apply(grads, trainable_variables)
        self._phase = "sync"
        super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        slow = self._slow_weights[self._get_variable_index(variable)]
        steps = self.inner_optimizer.iterations
        if self._phase == "start":  # before the inner step: the slow weights start at the first weights
            when = ops.equal(steps, 0)

            def targets():
                return [(slow, ops.convert_to_tensor(variable))]
        else:  # after it: every sync_period inner steps, both move to the interpolation
            when = ops.logical_and(ops.greater(steps, 0), ops.equal(steps % self.sync_period, 0))

            def targets():
                synced = slow + ops.cast(self.slow_step_size, variable.dtype) * (variable - slow)
                return [(slow, synced), (variable, synced)]

        _common.assign_when(self, when, targets)

    def _wrapper_config(self):
        return {"sync_period": self.sync_period, "slow_step_size": self.slow_step_size}
