"""`tfmot.experimental`: its `combine` namespace (collaborative optimization schemes)."""

from tfopt.compat.tfmot.experimental import combine

__all__ = ["combine"]
