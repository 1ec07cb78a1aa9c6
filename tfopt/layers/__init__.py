"""Layer wrappers for pruning, quantization and clustering, their quantizers and pruning schedules (keras.ops only).

Public objects:
    PruneLowMagnitude, PrunableLayer: the pruning wrapper, and the protocol a custom layer implements to be pruned.
    PruningSchedule, ConstantSparsity, PolynomialDecay: when to prune, and to what sparsity (a function of the step).
    QuantizeWrapper, QuantizableLayer: the QAT wrapper, and the protocol of a custom quantizable layer.
    QuantizeAnnotate: the mark `quantize_apply` turns into a QuantizeWrapper (quantize selected layers).
    QuantizeConfig, Default8BitQuantizeConfig: how one layer is quantized (custom weights/activations/outputs).
    Quantizer, LastValueQuantizer, MovingAverageQuantizer, AllValuesQuantizer: the quantizers a config uses.
    ClusterWeights: the weight-sharing wrapper.
"""

from tfopt.layers.cluster_weights import ClusterWeights
from tfopt.layers.constant_sparsity import ConstantSparsity
from tfopt.layers.polynomial_decay import PolynomialDecay
from tfopt.layers.prunable_layer import PrunableLayer
from tfopt.layers.prune_low_magnitude import PruneLowMagnitude
from tfopt.layers.pruning_schedule import PruningSchedule
from tfopt.layers.quantizable_layer import QuantizableLayer
from tfopt.layers.quantize_annotate import QuantizeAnnotate
from tfopt.layers.quantize_config import Default8BitQuantizeConfig, QuantizeConfig
from tfopt.layers.quantize_wrapper import QuantizeWrapper
from tfopt.layers.range_quantizers import AllValuesQuantizer, LastValueQuantizer, MovingAverageQuantizer, Quantizer

__all__ = [
    "AllValuesQuantizer",
    "ClusterWeights",
    "ConstantSparsity",
    "Default8BitQuantizeConfig",
    "LastValueQuantizer",
    "MovingAverageQuantizer",
    "PolynomialDecay",
    "PrunableLayer",
    "PruneLowMagnitude",
    "PruningSchedule",
    "QuantizableLayer",
    "QuantizeAnnotate",
    "QuantizeConfig",
    "QuantizeWrapper",
    "Quantizer",
]
