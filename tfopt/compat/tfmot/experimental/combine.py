"""`tfmot.experimental.combine` on tfopt: the collaborative-optimization schemes for `quantize_apply`.

    Default8BitPrunePreserveQuantizeScheme()                         PQAT: quantize_apply(preserve_sparsity=True)
    Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True) PCQAT (CQAT with preserve_sparsity=False):
                                                                     quantize_apply(preserve_clusters=True, ...)

tfopt keeps the zeros and the shared values into the int8 TFLite file (see `tfopt.layers.QuantizeWrapper`).
"""

from tfopt.compat.tfmot.quantization.keras.quantize_scheme import QuantizeScheme

__all__ = ["Default8BitClusterPreserveQuantizeScheme", "Default8BitPrunePreserveQuantizeScheme"]


class Default8BitPrunePreserveQuantizeScheme(QuantizeScheme):
    """Sparsity-preserving QAT (PQAT): each kernel's zeros stay zero through fine-tuning."""

    options = {"preserve_sparsity": True, "preserve_clusters": False}


class Default8BitClusterPreserveQuantizeScheme(QuantizeScheme):
    """Cluster-preserving QAT (CQAT): each clustered kernel keeps its shared values; with `preserve_sparsity`
    (tfmot's default True) its zeros too (PCQAT).

    Args:
        preserve_sparsity: keep the zeros of kernels that have them. Default True.
    """

    def __init__(self, preserve_sparsity=True):
        self.preserve_sparsity = bool(preserve_sparsity)
        self.options = {"preserve_sparsity": "auto" if self.preserve_sparsity else False, "preserve_clusters": True}
