"""Layer wrappers for pruning, quantization and clustering, their quantizers and pruning schedules (keras.ops only).

Public objects:
    PruneLowMagnitude, PrunableLayer: the pruning wrapper, and the protocol a custom layer implements to be pruned.
    PruningSchedule, ConstantSparsity, PolynomialDecay: when to prune, and to what sparsity (a function of the step).
    QuantizeWrapper, QuantizableLayer: the QAT wrapper, and the protocol of a custom quantizable layer.
    ClusterWeights: the weight-sharing wrapper.
"""

from tfopt.layers.cluster_weights import ClusterWeights
from tfopt.layers.constant_sparsity import ConstantSparsity
from tfopt.layers.polynomial_decay import PolynomialDecay
from tfopt.layers.prunable_layer import PrunableLayer
from tfopt.layers.prune_low_magnitude import PruneLowMagnitude
from tfopt.layers.pruning_schedule import PruningSchedule
from tfopt.layers.quantizable_layer import QuantizableLayer
from tfopt.layers.quantize_wrapper import QuantizeWrapper

__all__ = [
    "ClusterWeights",
    "ConstantSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruneLowMagnitude",
    "PruningSchedule",
    "QuantizableLayer",
    "QuantizeWrapper",
]
