"""Keras Tuner search spaces over optimization recipes, a hypermodel that searches them, and `tfopt tune`.

Public objects:
    optimizer_from_hp: which optimizer (Keras's and tfopt's), its learning rate (log scale) and key settings.
    schedule_from_hp: which learning-rate schedule, and its shape, around a peak rate.
    pruning_from_hp: pruning sparsity, schedule, structure (unstructured, block, N:M) and scope.
    quantization_from_hp: quantization-aware training on or off, and its setting.
    OptimizationHyperModel: a keras_tuner.HyperModel that compiles and fits with the searched recipe.
    AccuracySizeObjective: accuracy and model size as one objective ("score"), with the per-trial ranking.
    deployed_size: gzip bytes of a model's weights as deployed (pruned, int8, clustered).
    run_tune: the search behind `tfopt tune` on the digits data.
"""

from tfopt.tuning.accuracy_size_objective import AccuracySizeObjective
from tfopt.tuning.deployed_size import deployed_size
from tfopt.tuning.optimization_hyper_model import OptimizationHyperModel
from tfopt.tuning.optimizer_from_hp import optimizer_from_hp
from tfopt.tuning.pruning_from_hp import pruning_from_hp
from tfopt.tuning.quantization_from_hp import quantization_from_hp
from tfopt.tuning.run_tune import run_tune
from tfopt.tuning.schedule_from_hp import schedule_from_hp

__all__ = [
    "AccuracySizeObjective",
    "OptimizationHyperModel",
    "deployed_size",
    "optimizer_from_hp",
    "pruning_from_hp",
    "quantization_from_hp",
    "run_tune",
    "schedule_from_hp",
]
