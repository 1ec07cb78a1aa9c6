"""`tfmot.quantization.keras.QuantizeScheme` on tfopt: a scheme is the set of `tfopt.compression.quantize_apply`
options it stands for (tfopt has one int8 scheme; the collaborative schemes switch its preserving options)."""

__all__ = ["QuantizeScheme"]


class QuantizeScheme:
    """The options of `tfopt.compression.quantize_apply` that a tfmot scheme selects (`preserve_sparsity`,
    `preserve_clusters`); `quantize_apply(model, scheme)` passes them on."""

    options = {}

    def quantize_apply_options(self):
        """The keyword arguments for `tfopt.compression.quantize_apply`."""
        return dict(self.options)
