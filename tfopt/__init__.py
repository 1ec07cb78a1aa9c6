"""tfopt: the optimization toolkit for Keras 3 on TensorFlow.

Every technique is a Keras object that composes into `model.compile` / `model.fit`. The public API is what this
module and each subpackage's `__init__` export; nothing else is public.

Names load on first use (PEP 562), so `import tfopt` is instant and the `tfopt` command can quiet TensorFlow's
start-up logs before Keras imports it; `tfopt.X` and `from tfopt import X` work as usual. tfopt's Keras classes are
registered with Keras's serialization as soon as Keras is imported (tfopt/_registration.py), so after `import tfopt`
`keras.models.load_model` loads any model tfopt saved.
"""

import importlib

from tfopt import _registration

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    # Areas, one subpackage each.
    "acceleration": "tfopt.acceleration",
    "callbacks": "tfopt.callbacks",
    "compression": "tfopt.compression",
    "data": "tfopt.data",
    "layers": "tfopt.layers",
    "models": "tfopt.models",
    "optimizers": "tfopt.optimizers",
    "pipelines": "tfopt.pipelines",
    "regularizers": "tfopt.regularizers",
    "schedules": "tfopt.schedules",
    "strategies": "tfopt.strategies",
    "tuning": "tfopt.tuning",
    # Data.
    "DigitsSplit": "tfopt.data",
    "load_digits": "tfopt.data",
    "make_dataset": "tfopt.data",
    "read_tfrecords": "tfopt.data",
    "write_tfrecords": "tfopt.data",
    # Fit speed.
    "Candidate": "tfopt.acceleration",
    "FitProfile": "tfopt.acceleration",
    "diagnose_input": "tfopt.acceleration",
    "profile_fit": "tfopt.acceleration",
    # Measurement.
    "ModelReport": "tfopt.compression",
    "measure_model": "tfopt.compression",
    # Learning-rate schedules (tfopt.schedules.Sequential stays in its area: beside keras.Sequential it misleads).
    "CyclicalLearningRate": "tfopt.schedules",
    "ScaledCyclicalLearningRate": "tfopt.schedules",
    "TriangularCyclicalLearningRate": "tfopt.schedules",
    "Triangular2CyclicalLearningRate": "tfopt.schedules",
    "ExponentialCyclicalLearningRate": "tfopt.schedules",
    "InverseSqrt": "tfopt.schedules",
    "LinearDecay": "tfopt.schedules",
    "OneCycle": "tfopt.schedules",
    "StepDecay": "tfopt.schedules",
    "Warmup": "tfopt.schedules",
    "WarmupStableDecay": "tfopt.schedules",
    # Learning-rate callbacks and the range test.
    "LRFinder": "tfopt.callbacks",
    "LearningRateDecay": "tfopt.callbacks",
    "LearningRateMonitor": "tfopt.callbacks",
    "MomentumCycle": "tfopt.callbacks",
    "ReduceLROnPlateau": "tfopt.callbacks",
    "find_learning_rate": "tfopt.callbacks",
    # Optimizers and optimizer wrappers, with the callbacks that evaluate at their averaged weights.
    "AdaBelief": "tfopt.optimizers",
    "AdaptiveGradientClipping": "tfopt.optimizers",
    "Adan": "tfopt.optimizers",
    "GradientCentralization": "tfopt.optimizers",
    "LARS": "tfopt.optimizers",
    "Lookahead": "tfopt.optimizers",
    "Prodigy": "tfopt.optimizers",
    "RAdam": "tfopt.optimizers",
    "SWA": "tfopt.optimizers",
    "ScheduleFreeAdamW": "tfopt.optimizers",
    "ScheduleFreeSGD": "tfopt.optimizers",
    "Yogi": "tfopt.optimizers",
    "LazyAdam": "tfopt.optimizers",
    "MultiOptimizer": "tfopt.optimizers",
    "MovingAverage": "tfopt.optimizers",
    "NovoGrad": "tfopt.optimizers",
    "COCOB": "tfopt.optimizers",
    "ConditionalGradient": "tfopt.optimizers",
    "ProximalAdagrad": "tfopt.optimizers",
    "SGDW": "tfopt.optimizers",
    "DecoupledAdamW": "tfopt.optimizers",
    "DecoupledWeightDecayExtension": "tfopt.optimizers",
    "extend_with_decoupled_weight_decay": "tfopt.optimizers",
    "SWAEval": "tfopt.callbacks",
    "ScheduleFreeEval": "tfopt.callbacks",
    "recompute_batch_norm_statistics": "tfopt.callbacks",
    # Pruning: the model-level functions, the schedules, and the callbacks.
    "prune_low_magnitude": "tfopt.compression",
    "strip_pruning": "tfopt.compression",
    "sparsity_report": "tfopt.compression",
    "ConstantSparsity": "tfopt.compression",
    "PolynomialDecay": "tfopt.compression",
    "UpdatePruningStep": "tfopt.callbacks",
    "PruningSummaries": "tfopt.callbacks",
    # Quantization, TFLite/LiteRT export, clustering, BatchNorm folding, and the compress pipeline.
    "quantize_model": "tfopt.compression",
    "quantize_annotate_layer": "tfopt.compression",
    "quantize_annotate_model": "tfopt.compression",
    "quantize_apply": "tfopt.compression",
    "export_tflite": "tfopt.compression",
    "inspect_tflite": "tfopt.compression",
    "evaluate_tflite": "tfopt.compression",
    "cluster_weights": "tfopt.compression",
    "strip_clustering": "tfopt.compression",
    "fold_batch_norms": "tfopt.compression",
    "compress": "tfopt.pipelines",
    "QuantizeWrapper": "tfopt.layers",
    "ClusterWeights": "tfopt.layers",
    "QuantizableLayer": "tfopt.layers",
    "QuantizeConfig": "tfopt.layers",
    "Default8BitQuantizeConfig": "tfopt.layers",
    # Structured (channel) pruning: a smaller dense model, group lasso, FLOPs.
    "prune_channels": "tfopt.compression",
    "remove_dead_channels": "tfopt.compression",
    "channel_importance": "tfopt.compression",
    "add_regularizer": "tfopt.compression",
    "count_flops": "tfopt.compression",
    "GroupLasso": "tfopt.regularizers",
    "StructuredPruning": "tfopt.callbacks",
    # Distribution: the strategy factory and its helpers (TensorFlow), and keras.distribution for JAX.
    "get_strategy": "tfopt.strategies",
    "describe_strategy": "tfopt.strategies",
    "get_distribution": "tfopt.strategies",
    "auto_layout_map": "tfopt.strategies",
    "check_layout_map": "tfopt.strategies",
    "sharding_report": "tfopt.strategies",
    # Sharpness-aware minimization and distillation extras on keras.distillation; teacher-guided compression.
    "SharpnessAwareMinimization": "tfopt.models",
    "CachedDistiller": "tfopt.models",
    "HintDistillation": "tfopt.models",
    "SoftTargetDistillation": "tfopt.models",
    "cache_teacher_outputs": "tfopt.models",
    "fit_with_teacher": "tfopt.compression",
    # Keras Tuner search over optimization recipes, and TensorBoard inspection.
    "OptimizationHyperModel": "tfopt.tuning",
    "AccuracySizeObjective": "tfopt.tuning",
    "optimizer_from_hp": "tfopt.tuning",
    "schedule_from_hp": "tfopt.tuning",
    "pruning_from_hp": "tfopt.tuning",
    "quantization_from_hp": "tfopt.tuning",
    "GradientNormMonitor": "tfopt.callbacks",
    "NonFiniteGuard": "tfopt.callbacks",
    "WeightHistograms": "tfopt.callbacks",
    "HParamsLogger": "tfopt.callbacks",
}

__all__ = sorted(_EXPORTS)

_registration.register_when_keras_is_imported()


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tfopt' has no attribute {name!r}")
    value = importlib.import_module(module)
    if module.rsplit(".", 1)[-1] != name:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
