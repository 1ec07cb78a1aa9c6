"""Sparsity-inducing penalties (group lasso) as `keras.regularizers.Regularizer` subclasses.

Public objects:
    GroupLasso: the L2,1 penalty over output (or input) channels, for channel pruning; L1 on 1-D weights
        (BatchNormalization gamma: network slimming).
"""

from tfopt.regularizers.group_lasso import GroupLasso

__all__ = ["GroupLasso"]
