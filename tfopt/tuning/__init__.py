"""Keras Tuner hypermodels and search spaces over optimization recipes."""

__all__ = []
