"""`tfmot.quantization`: its `keras` namespace (quantization-aware training)."""

from tfopt.compat.tfmot.quantization import keras

__all__ = ["keras"]
