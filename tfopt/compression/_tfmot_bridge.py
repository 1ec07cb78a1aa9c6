"""TensorFlow/tf_keras only: pruning of legacy tf_keras (Keras 2) models delegated to tfmot.

`tfopt.compression.prune_low_magnitude` and `strip_pruning` call this module when they receive a tf_keras model
or layer, so one API serves both Keras generations. It imports `tensorflow_model_optimization` lazily, only for
such a model; `is_tf_keras` looks at `sys.modules` and so never imports tf_keras itself (a tf_keras object can only
exist once tf_keras is imported).
"""

import sys

from tfopt.layers.constant_sparsity import ConstantSparsity
from tfopt.layers.polynomial_decay import PolynomialDecay
from tfopt.layers.prune_low_magnitude import check_arguments

INSTALL_HINT = "pip install 'tfopt[tfmot]' (tensorflow-model-optimization and tf-keras)"


def is_tf_keras(obj):
    """True for a tf_keras layer or model, or a non-empty list of them."""
    tf_keras = sys.modules.get("tf_keras")
    if tf_keras is None:
        return False
    if isinstance(obj, (list, tuple)):
        return bool(obj) and all(is_tf_keras(item) for item in obj)
    layer_class = getattr(getattr(tf_keras, "layers", None), "Layer", None)
    return layer_class is not None and isinstance(obj, layer_class)


def _tfmot():
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError as e:
        raise ImportError(
            f"Pruning a tf_keras model delegates to TensorFlow Model Optimization, which is not installed: "
            f"{INSTALL_HINT}. (Keras 3 models need no extra: build the model with `keras`.) Cause: {e}"
        ) from e
    return tfmot


def to_tfmot_schedule(schedule, tfmot):
    """The tfmot schedule that gives the same (should_prune, sparsity) at every step."""

    sparsity = tfmot.sparsity.keras
    if isinstance(schedule, ConstantSparsity):
        return sparsity.ConstantSparsity(schedule.target_sparsity, schedule.begin_step, schedule.end_step,
                                         schedule.frequency)
    if isinstance(schedule, PolynomialDecay):
        return sparsity.PolynomialDecay(schedule.initial_sparsity, schedule.final_sparsity, schedule.begin_step,
                                        schedule.end_step, schedule.power, schedule.frequency)
    raise TypeError(
        "Argument `pruning_schedule` must be a tfopt ConstantSparsity or PolynomialDecay to prune a tf_keras "
        f"model through tfmot. Received: pruning_schedule={schedule!r} of type {type(schedule).__name__}"
    )


def prune_low_magnitude(to_prune, pruning_schedule, block_size, sparsity_m_by_n, pruning_scope):
    """tfmot's `prune_low_magnitude` with the equivalent arguments; our N:M `(N, M)` (non-zeros kept per group)
    becomes tfmot's `(M - N, M)` (zeros per group)."""

    if pruning_schedule is None:
        pruning_schedule = ConstantSparsity(0.5, begin_step=0, frequency=100)
    pruning_schedule, block_size, sparsity_m_by_n, pruning_scope = check_arguments(
        pruning_schedule, block_size, sparsity_m_by_n, pruning_scope)
    if pruning_scope != "layer":
        raise ValueError(
            "Argument `pruning_scope` must be 'layer' for a tf_keras model: tfmot has no global pruning. Build the "
            "model with Keras 3 (`keras`) for pruning_scope='global'. Received: pruning_scope='global'"
        )
    tfmot = _tfmot()
    kwargs = {"pruning_schedule": to_tfmot_schedule(pruning_schedule, tfmot), "block_size": block_size}
    if sparsity_m_by_n is not None:
        n, m = sparsity_m_by_n
        kwargs["sparsity_m_by_n"] = (m - n, m)
    if isinstance(to_prune, tuple):
        to_prune = list(to_prune)
    return tfmot.sparsity.keras.prune_low_magnitude(to_prune, **kwargs)


def strip_pruning(model):
    return _tfmot().sparsity.keras.strip_pruning(model)
