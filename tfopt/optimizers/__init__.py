"""Optimizers Keras 3 lacks, one algorithm per file, as `keras.optimizers.Optimizer` subclasses in keras.ops."""

__all__ = []
