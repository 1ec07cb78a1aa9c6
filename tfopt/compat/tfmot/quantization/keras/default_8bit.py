"""`tfmot.quantization.keras.default_8bit` on tfopt: the int8 scheme and its per-layer config.

`Default8BitQuantizeScheme` is tfopt's QAT (int8 weights per output channel, int8 activations per tensor; pruned
kernels keep their zeros, which tfmot's default scheme does not promise); `Default8BitQuantizeConfig` is
`tfopt.layers.Default8BitQuantizeConfig(weight_attrs, activation_attrs, quantize_output)`.
"""

from tfopt.compat.tfmot.quantization.keras.quantize_scheme import QuantizeScheme
from tfopt.layers.quantize_config import Default8BitQuantizeConfig

__all__ = ["Default8BitQuantizeConfig", "Default8BitQuantizeScheme"]


class Default8BitQuantizeScheme(QuantizeScheme):
    """tfmot's default 8-bit scheme: `quantize_apply` with tfopt's defaults."""

    options = {"preserve_sparsity": "auto", "preserve_clusters": False}
