"""GroupLasso: the L2,1 penalty that drives whole output channels (or input channels) of a kernel to zero."""

import keras
from keras import ops

from tfopt import _checks

AXES = ("output", "input")


@keras.saving.register_keras_serializable(package="tfopt")
class GroupLasso(keras.regularizers.Regularizer):
    """Group lasso: `l` times the sum, over channels, of each channel's L2 norm (the L2,1 norm of the kernel).

    An L1 penalty makes single weights zero; group lasso makes whole *groups* zero together, here the weights of
    one output channel (a Conv filter, a Dense unit) or of one input channel. Train with it to concentrate what a
    layer computes in a few channels, then remove the weak ones with `tfopt.compression.prune_channels` (or the
    exactly-zero ones, losslessly, with `remove_dead_channels`). Attach it like Keras's `L1`/`L2`
    (`kernel_regularizer=GroupLasso(1e-4)`), or to an existing model with `tfopt.compression.add_regularizer`.
    Typical `l`: 1e-5 to 1e-3 with a mean loss; too large a value zeroes channels the task needs.

    With the weight W reshaped to a matrix whose columns are the groups (axis="output": the last axis; "input":
    the second to last, the input channels of a Dense/Conv kernel; a 1-D weight such as BatchNormalization's gamma
    has one-element groups, so the penalty is L1, network slimming's):

        penalty(W) = l * sum_g ||W_g||_2 = l * sum_g sqrt(sum_{i in g} W_i^2)
        d penalty / d W_i = l * W_i / ||W_g||_2   (0 for a group that is exactly zero: a subgradient)

    Args:
        l: the penalty factor, a number >= 0. Default 0.01 (Keras's L1/L2 default).
        axis: "output" (default) or "input": which channels form the groups.

    References:
        Yuan & Lin, "Model selection and estimation in regression with grouped variables", 2006,
        https://doi.org/10.1111/j.1467-9868.2005.00532.x;
        Wen et al., "Learning Structured Sparsity in Deep Neural Networks", 2016, https://arxiv.org/abs/1608.03665
    """

    def __init__(self, l=0.01, axis="output"):  # noqa: E741  (Keras's name for the factor)
        self.l = _checks.finite_number("l", l)
        self.axis = _checks.choice("axis", axis, AXES)

    def __call__(self, x):
        x = ops.cast(x, "float32") if "float" not in str(x.dtype) else x
        if len(x.shape) <= 1:
            return self.l * ops.sum(ops.abs(x))
        channel = -1 if self.axis == "output" else -2
        groups = ops.reshape(ops.moveaxis(x, channel, -1), (-1, x.shape[channel]))
        squares = ops.sum(ops.square(groups), axis=0)
        # sqrt has an infinite derivative at 0: evaluate it only where the group is non-zero, so an all-zero
        # group (a pruned channel) gets the zero subgradient instead of NaN.
        positive = ops.greater(squares, 0)
        norms = ops.where(positive, ops.sqrt(ops.where(positive, squares, ops.ones_like(squares))), 0.0)
        return self.l * ops.sum(norms)

    def get_config(self):
        return {"l": self.l, "axis": self.axis}
