"""COCOB-Backprop: learning-rate-free training by coin betting (Orabona and Tommasi 2017)."""

import keras
from keras import ops

from tfopt import _checks
from tfopt.optimizers import _base, _common


@keras.saving.register_keras_serializable(package="tfopt")
class COCOB(_base.Optimizer):
    """COCOB-Backprop: an optimizer without a learning rate, which bets on the sign of each weight's gradients.

    Each weight is a bettor whose wealth (`reward`) grows while its gradients keep their sign; it moves from its
    starting point by a fraction of that wealth, normalized by the largest gradient it has seen. There is no
    learning rate to tune: use it for a quick baseline or where tuning is too costly; `alpha` only limits how
    far the first steps go. This is TensorFlow Addons' `tfa.optimizers.COCOB`, value for value.

    Per element, with `g` the gradient, `w_0` the weights at the first step and the slots starting at 0:

        L       <- max(L, |g|)                       (the largest gradient seen)
        G       <- G + g                             (the sum of the gradients)
        |G|     <- |G| + |g|                          (the sum of their magnitudes; slot `grad_norm_sum`)
        reward  <- max(reward - g x, 0)              (x: the current offset from w_0)
        x'      = -G / (L max(|G| + L, alpha L)) * (reward + L)
        w       <- w - x + x';  x <- x'

    An element whose gradients have all been 0 (L = 0) stays where it is (TFA divides 0 by 0 there).

    Args:
        alpha: how far the first steps may go, a number >= 1. Default 100.
        **kwargs: the base optimizer options (`clipnorm`, `clipvalue`, `weight_decay`, `use_ema`, ...); the
            learning rate is not used.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> model.compile(COCOB(), loss="mse")
    >>> history = model.fit(np.ones((32, 4)), np.ones((32, 1)), epochs=2, verbose=0)

    References:
        - Orabona and Tommasi, 2017, "Training Deep Networks without Learning Rates Through Coin Betting",
          NeurIPS, https://arxiv.org/abs/1705.07795
    """

    def __init__(self, alpha=100.0, name=None, **kwargs):
        kwargs.pop("learning_rate", None)
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.alpha = _checks.number("alpha", alpha, low=1.0)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        (self._largest, self._magnitude_sums, self._gradient_sums, self._offsets,
         self._rewards) = self.add_optimizer_variables(
            var_list, ["largest_gradient", "grad_norm_sum", "gradients_sum", "offset", "reward"])

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        gradient = _common.dense_gradient(gradient, variable)
        index = self._get_variable_index(variable)
        largest = ops.maximum(self._largest[index], ops.abs(gradient))
        gradient_sum = self._gradient_sums[index] + gradient
        magnitude_sum = self._magnitude_sums[index] + ops.abs(gradient)
        offset = self._offsets[index]
        reward = ops.maximum(self._rewards[index] - gradient * offset, 0.0)
        denominator = largest * ops.maximum(magnitude_sum + largest, ops.cast(self.alpha, dtype) * largest)
        seen = denominator > 0
        new_offset = ops.where(seen, -gradient_sum / ops.where(seen, denominator, 1.0) * (reward + largest), 0.0)
        self.assign_add(variable, new_offset - offset)
        self.assign(self._offsets[index], new_offset)
        self.assign(self._largest[index], largest)
        self.assign(self._gradient_sums[index], gradient_sum)
        self.assign(self._magnitude_sums[index], magnitude_sum)
        self.assign(self._rewards[index], reward)

    def get_config(self):
        config = super().get_config()
        config.pop("learning_rate", None)
        config["alpha"] = self.alpha
        return config
