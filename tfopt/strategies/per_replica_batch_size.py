"""TensorFlow-only: `per_replica_batch_size`, the batch each replica sees for a global batch."""

import tensorflow as tf

from tfopt import _checks


def per_replica_batch_size(global_batch_size, strategy=None):
    """The batch each replica computes on when `fit` (or a distributed dataset) takes `global_batch_size`.

    Under a `tf.distribute` strategy the batch size given to `fit` or `Dataset.batch` is global: each of the `R`
    replicas gets `global_batch_size / R` examples per step, and the gradients are averaged over all of them. Keep
    the global batch a multiple of `R`, or replicas get unequal shares and per-replica layers (BatchNorm) see odd
    batches; this function refuses such a batch with the two nearest multiples.

        per_replica = global_batch_size / R,  R = strategy.num_replicas_in_sync

    Args:
        global_batch_size: the batch over all replicas, an integer >= 1.
        strategy: a `tf.distribute.Strategy`, or an integer number of replicas; None uses the current strategy
            (`tf.distribute.get_strategy()`). Defaults to None.

    Returns:
        The per-replica batch size, an int.

    Example:

    >>> per_replica_batch_size(256, 4)
    64
    """
    global_batch_size = _checks.integer("global_batch_size", global_batch_size, 1)
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.Strategy):
        replicas, where = int(strategy.num_replicas_in_sync), f" of {type(strategy).__name__}"
    else:
        replicas, where = _checks.integer("strategy", strategy, 1), ""
    if global_batch_size % replicas:
        lower = global_batch_size - global_batch_size % replicas
        upper = lower + replicas
        nearest = f"{lower} or {upper}" if lower else str(upper)
        raise ValueError(f"Argument `global_batch_size` must be divisible by the {replicas} replicas{where} "
                         f"(e.g. {nearest}). Received: global_batch_size={global_batch_size}")
    return global_batch_size // replicas
