"""`tfmot.sparsity`: its `keras` namespace (pruning)."""

from tfopt.compat.tfmot.sparsity import keras

__all__ = ["keras"]
