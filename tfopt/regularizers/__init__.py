"""Sparsity-inducing penalties (group lasso) as `keras.regularizers.Regularizer` subclasses."""

__all__ = []
