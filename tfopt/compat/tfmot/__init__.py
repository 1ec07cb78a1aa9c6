"""tfmot's names on tfopt's objects: `import tfopt.compat.tfmot as tfmot` in place of
`import tensorflow_model_optimization as tfmot`, and code written for tfmot runs on Keras 3.

    tfmot.sparsity.keras        prune_low_magnitude, strip_pruning, UpdatePruningStep, PruningSummaries,
                                ConstantSparsity, PolynomialDecay, PruningSchedule, PrunableLayer, prune_scope
    tfmot.quantization.keras    quantize_model, quantize_annotate_layer, quantize_annotate_model, quantize_apply,
                                quantize_scope, QuantizeConfig, QuantizeWrapper, QuantizeScheme, quantizers.*,
                                default_8bit.Default8BitQuantizeScheme / Default8BitQuantizeConfig
    tfmot.clustering.keras      cluster_weights (tfmot's argument names), CentroidInitialization,
                                strip_clustering, cluster_scope
    tfmot.experimental.combine  Default8BitPrunePreserveQuantizeScheme, Default8BitClusterPreserveQuantizeScheme

Every name is tfopt's own object, or a function that renames arguments and calls one: the modules here hold no
algorithm. Where tfopt's default differs from tfmot's the module says so (QAT and clustering keep a pruned
model's zeros by default; activation ranges start at the first training batch).
"""

from tfopt.compat.tfmot import clustering, experimental, quantization, sparsity

__all__ = ["clustering", "experimental", "quantization", "sparsity"]
