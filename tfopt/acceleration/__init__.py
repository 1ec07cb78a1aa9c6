"""Fit speed: measures XLA, steps_per_execution, precision and input pipelines on the model and machine at hand."""

__all__ = []
