"""`keras.callbacks.Callback` subclasses: learning-rate decay, pruning steps, monitoring."""

__all__ = []
