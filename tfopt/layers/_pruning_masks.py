"""Pruning masks from weight magnitudes (keras.ops only): unstructured, block, N:M, and a threshold shared by
many weights (global pruning).

A mask is 1 where a weight is kept and 0 where it is pruned. Magnitude pruning keeps the weights (or blocks)
whose score is at least the k-th largest score, k = max(round(n * (1 - sparsity)), 1) of n scores, as tfmot does;
with distinct scores exactly n - k are pruned. N:M keeps the N largest magnitudes in every group of M consecutive
weights along one axis (ties go to the lower index), so no group holds more than N non-zeros.
"""

import math

from keras import ops


def check_block_divides(block_size, shape, where):
    """ValueError naming `block_size` when it does not tile the last two axes of a weight of `shape`."""
    rows, cols = _matrix_dims(shape)
    if rows % block_size[0] or cols % block_size[1]:
        raise ValueError(
            f"Argument `block_size` must divide the last two axes of every pruned weight ({rows}, {cols}) "
            f"of {where} (shape {tuple(shape)}). Received: block_size={tuple(block_size)!r}"
        )


def check_n_m_divides(n_m, shape, axis, where):
    """ValueError naming `sparsity_m_by_n` when M does not divide the channel count along `axis`."""
    channels = shape[axis] if len(shape) else 1
    if channels % n_m[1]:
        raise ValueError(
            f"Argument `sparsity_m_by_n` must have an M that divides the input channels ({channels}, axis {axis}) "
            f"of {where} (shape {tuple(shape)}). Received: sparsity_m_by_n={tuple(n_m)!r}"
        )


def _matrix_dims(shape):
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    return shape[-2], shape[-1]


def scores(weight, block_size=(1, 1)):
    """Magnitude score of every weight, or the mean magnitude of every block of the last two axes."""
    magnitude = ops.abs(ops.cast(weight, "float32"))
    if tuple(block_size) == (1, 1):
        return magnitude
    rows, cols = _matrix_dims(weight.shape)
    lead = tuple(weight.shape[:-2]) if len(weight.shape) >= 2 else ()
    b1, b2 = block_size
    blocks = ops.reshape(magnitude, lead + (rows // b1, b1, cols // b2, b2))
    return ops.mean(blocks, axis=(-3, -1))


def expand(block_mask, block_size, shape):
    """A per-block mask back to the weight's shape."""
    if tuple(block_size) == (1, 1):
        return block_mask
    mask = ops.repeat(ops.repeat(block_mask, block_size[0], axis=-2), block_size[1], axis=-1)
    return ops.reshape(mask, tuple(shape))


def threshold(all_scores, sparsity):
    """The k-th largest of the scores (any number of tensors, flattened together), k = max(round(n(1-s)), 1)."""
    flat = ops.concatenate([ops.reshape(s, (-1,)) for s in all_scores])
    n = int(flat.shape[0])
    keep = ops.maximum(ops.round(float(n) * (1.0 - ops.cast(sparsity, "float32"))), 1.0)
    index = n - ops.cast(keep, "int32")
    return ops.take(ops.sort(flat), index)


def magnitude_mask(weight, threshold_value, block_size=(1, 1), dtype="float32"):
    """1 where the (block) score is >= the threshold."""
    kept = ops.greater_equal(scores(weight, block_size), threshold_value)
    return ops.cast(expand(kept, block_size, weight.shape), dtype)


def n_m_mask(weight, n, m, axis, dtype="float32"):
    """Keeps the `n` largest magnitudes of every `m` consecutive weights along `axis` (ties: lower index).

    Returns `(mask, threshold)`, the threshold being the largest magnitude pruned (0 when nothing was).
    """
    magnitude = ops.abs(ops.cast(weight, "float32"))
    shape = tuple(weight.shape)
    if len(shape) == 0:
        magnitude = ops.reshape(magnitude, (1,))
    axis = axis % max(len(shape), 1)
    moved = ops.moveaxis(magnitude, axis, -1)
    moved_shape = tuple(moved.shape)
    groups = ops.reshape(moved, moved_shape[:-1] + (moved_shape[-1] // m, m))
    # rank of element i in its group = how many others beat it: a larger magnitude, or an equal one earlier.
    mine, others = ops.expand_dims(groups, -1), ops.expand_dims(groups, -2)  # [..., i, 1] and [..., 1, j]
    index = ops.arange(m)
    earlier = ops.less(ops.expand_dims(index, 0), ops.expand_dims(index, 1))  # [i, j]: j < i
    beats = ops.logical_or(ops.greater(others, mine), ops.logical_and(ops.equal(others, mine), earlier))
    rank = ops.sum(ops.cast(beats, "int32"), axis=-1)
    kept = ops.less(rank, n)
    pruned_max = ops.max(ops.where(kept, 0.0, groups))
    kept = ops.moveaxis(ops.reshape(kept, moved_shape), -1, axis)
    return ops.cast(ops.reshape(kept, shape), dtype), pruned_max


def sparsity_of(n_m):
    """The sparsity an N:M pattern gives: 1 - N/M."""
    return 1.0 - n_m[0] / n_m[1]


def size(shape):
    return math.prod(tuple(shape))
