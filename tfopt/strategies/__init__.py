"""TensorFlow-only: the distribution-strategy factory, device detection and mixed precision."""

__all__ = []
