"""Layer wrappers for pruning, quantization and clustering, and their quantizers (keras.ops only)."""

__all__ = []
