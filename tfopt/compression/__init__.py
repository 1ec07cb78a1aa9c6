"""Model-level compression: prune, shrink, strip, quantize, cluster, fold, export, and measure.

Public objects:
    measure_model, ModelReport: size, sparsity, accuracy and latency of a Keras model or a TFLite file.
"""

from tfopt.compression.report import ModelReport, measure_model

__all__ = ["ModelReport", "measure_model"]
