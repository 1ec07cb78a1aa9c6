"""`tfmot.clustering`: its `keras` namespace (weight clustering)."""

from tfopt.compat.tfmot.clustering import keras

__all__ = ["keras"]
