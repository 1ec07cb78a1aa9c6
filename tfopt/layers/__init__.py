"""Layer wrappers for pruning, quantization and clustering, and their quantizers (keras.ops only)."""

from tfopt.layers.cluster_weights import ClusterWeights
from tfopt.layers.prunable_layer import PrunableLayer
from tfopt.layers.prune_low_magnitude import PruneLowMagnitude
from tfopt.layers.quantizable_layer import QuantizableLayer
from tfopt.layers.quantize_wrapper import QuantizeWrapper

__all__ = ["ClusterWeights", "PrunableLayer", "PruneLowMagnitude", "QuantizableLayer", "QuantizeWrapper"]
