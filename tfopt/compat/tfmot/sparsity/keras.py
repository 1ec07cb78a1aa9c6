"""`tfmot.sparsity.keras` on tfopt: magnitude pruning of Keras 3 models with tfmot's names and arguments.

`ConstantSparsity`, `PolynomialDecay`, `PruningSchedule`, `PrunableLayer`, `strip_pruning`, `UpdatePruningStep`
and `PruningSummaries` are tfopt's objects, whose arguments are tfmot's. `prune_low_magnitude` takes tfmot's
arguments and calls `tfopt.compression.prune_low_magnitude`; what differs:

- `sparsity_m_by_n=(n, m)` counts zeros in tfmot ("2 zeros out of 4") and non-zeros in tfopt; it is passed on as
  `(m - n, m)` (the same for 2:4).
- `block_pooling_type` is "AVG" (tfopt scores a block by its mean magnitude); "MAX" is an error.
- `pruning_policy` must be None: tfopt has no pruning policies (`PruneForLatencyOnXNNPack`).
- `UpdatePruningStep` is optional with tfopt (each wrapper counts its own steps), and warns when the schedule
  never prunes within `fit`.
"""

import keras

from tfopt.callbacks.pruning_summaries import PruningSummaries
from tfopt.callbacks.update_pruning_step import UpdatePruningStep
from tfopt.compression import prune as _prune
from tfopt.compression.prune import strip_pruning
from tfopt.layers.constant_sparsity import ConstantSparsity
from tfopt.layers.polynomial_decay import PolynomialDecay
from tfopt.layers.prunable_layer import PrunableLayer
from tfopt.layers.pruning_schedule import PruningSchedule

__all__ = [
    "ConstantSparsity",
    "PolynomialDecay",
    "PrunableLayer",
    "PruningSchedule",
    "PruningSummaries",
    "UpdatePruningStep",
    "prune_low_magnitude",
    "prune_scope",
    "strip_pruning",
]


def prune_low_magnitude(to_prune, pruning_schedule=None, block_size=(1, 1), block_pooling_type="AVG",
                        pruning_policy=None, sparsity_m_by_n=None, **kwargs):
    """tfmot's `prune_low_magnitude(to_prune, pruning_schedule, block_size, block_pooling_type, pruning_policy,
    sparsity_m_by_n)`: `tfopt.compression.prune_low_magnitude` with tfmot's arguments (see the module docstring).

    Args:
        to_prune: a Sequential or functional Keras 3 model, a layer, or a list of layers.
        pruning_schedule: a `PruningSchedule`. Default `ConstantSparsity(0.5, begin_step=0, frequency=100)`,
            tfmot's.
        block_size: `(rows, cols)` blocks pruned whole. Default (1, 1).
        block_pooling_type: "AVG" only.
        pruning_policy: None only.
        sparsity_m_by_n: tfmot's `(zeros, M)`, e.g. (2, 4), or None.
    """
    if kwargs:
        raise TypeError(f"prune_low_magnitude() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
    if block_pooling_type != "AVG":
        raise ValueError(
            "Argument `block_pooling_type` must be 'AVG': tfopt scores a block by its mean magnitude. Received: "
            f"block_pooling_type={block_pooling_type!r}"
        )
    if pruning_policy is not None:
        raise ValueError(
            "Argument `pruning_policy` must be None: tfopt has no pruning policies; prune the layers you choose "
            f"with keras.models.clone_model instead. Received: pruning_policy={pruning_policy!r}"
        )
    if sparsity_m_by_n is not None:
        if not isinstance(sparsity_m_by_n, (tuple, list)) or len(sparsity_m_by_n) != 2:
            raise ValueError(f"Argument `sparsity_m_by_n` must be None or a pair (zeros, M). Received: "
                             f"sparsity_m_by_n={sparsity_m_by_n!r}")
        zeros, m = sparsity_m_by_n
        sparsity_m_by_n = (m - zeros, m)
    return _prune.prune_low_magnitude(to_prune, pruning_schedule, block_size, sparsity_m_by_n)


def prune_scope():
    """tfmot's `prune_scope()`: the scope for loading pruned models. tfopt registers its classes with Keras, so
    `keras.models.load_model` needs no scope; this one is empty and kept for code that uses it."""
    return keras.saving.CustomObjectScope({})
