"""Model-level compression: prune, shrink, strip, quantize, cluster, fold, export, and measure.

Public objects:
    measure_model, ModelReport: size, sparsity, accuracy and latency of a Keras model or a TFLite file.
    quantize_model: quantization-aware training (int8 weights per channel, int8 activations); also PQAT, CQAT, PCQAT.
    quantize_annotate_layer, quantize_annotate_model, quantize_apply: QAT of selected layers, custom configs.
    export_tflite, inspect_tflite, evaluate_tflite: TFLite/LiteRT files (float, dynamic, float16, full int8).
    cluster_weights, strip_clustering: weight sharing with trainable centroids.
    fold_batch_norms: BatchNormalization merged into the Conv/Dense before it.
    fit_with_teacher: fine-tuning of a compressed model against its dense original's soft targets.
    prune_low_magnitude, strip_pruning, sparsity_report: magnitude pruning (unstructured, block, N:M, global).
    PruningSchedule, ConstantSparsity, PolynomialDecay: when to prune, and to what sparsity.
    prune_channels, remove_dead_channels, channel_importance: structured (channel) pruning to a smaller dense model.
    add_regularizer: a copy of a model with a regularizer (GroupLasso, L1 on BN gamma) on chosen layers.
    count_flops: multiply-accumulates per example of a model's Conv/Dense layers.
"""

from tfopt.compression.channel_importance import channel_importance
from tfopt.compression.cluster import cluster_weights, strip_clustering
from tfopt.compression.distill import fit_with_teacher
from tfopt.compression.export import evaluate_tflite, export_tflite, inspect_tflite
from tfopt.compression.fold import fold_batch_norms
from tfopt.compression.prune import prune_low_magnitude, sparsity_report, strip_pruning
from tfopt.compression.prune_channels import prune_channels
from tfopt.compression.quantize import (
    quantize_annotate_layer,
    quantize_annotate_model,
    quantize_apply,
    quantize_model,
)
from tfopt.compression.regularize import add_regularizer
from tfopt.compression.remove_dead_channels import remove_dead_channels
from tfopt.compression.report import ModelReport, count_flops, measure_model
from tfopt.layers.constant_sparsity import ConstantSparsity
from tfopt.layers.polynomial_decay import PolynomialDecay
from tfopt.layers.pruning_schedule import PruningSchedule

__all__ = [
    "ConstantSparsity",
    "ModelReport",
    "PolynomialDecay",
    "PruningSchedule",
    "add_regularizer",
    "channel_importance",
    "cluster_weights",
    "fit_with_teacher",
    "count_flops",
    "evaluate_tflite",
    "export_tflite",
    "fold_batch_norms",
    "inspect_tflite",
    "measure_model",
    "prune_channels",
    "prune_low_magnitude",
    "quantize_annotate_layer",
    "quantize_annotate_model",
    "quantize_apply",
    "quantize_model",
    "remove_dead_channels",
    "sparsity_report",
    "strip_clustering",
    "strip_pruning",
]
