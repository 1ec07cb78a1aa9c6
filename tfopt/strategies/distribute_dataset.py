"""TensorFlow-only: `distribute_dataset`, a batched `tf.data.Dataset` split over a strategy's replicas and workers."""

import tensorflow as tf

from tfopt import _checks

POLICIES = ("auto", "data", "file", "off")


def distribute_dataset(dataset, strategy=None, shard_policy="auto"):
    """Distributes a dataset batched with the GLOBAL batch size over `strategy`, with the right auto-shard policy.

    On several workers, tf.data must give each worker a different part of the data. TensorFlow's default policy
    (AUTO) tries to shard by input file, falls back to sharding by element with a warning when the dataset does not
    read files, and gives some workers no data when there are fewer files than workers. Here "auto" means:

    - one worker: no sharding ("off"); the strategy splits each global batch over the local replicas;
    - several workers: "data": every worker reads the whole input and keeps its share of every global batch, which
      is right for any source (in-memory arrays, generators, few large files). Pass "file" when the input is at
      least as many files as workers and reading all of them on every worker is too costly.

    Keras `fit` accepts the returned distributed dataset (give the batch size to `Dataset.batch`, not to `fit`).
    A static batch size (`batch(..., drop_remainder=True)`) must be divisible by the replicas.

    Args:
        dataset: a `tf.data.Dataset` batched with the global batch size.
        strategy: a `tf.distribute.Strategy`; None uses the current one. Defaults to None.
        shard_policy: "auto", "data", "file" or "off". Defaults to "auto".

    Returns:
        A `tf.distribute.DistributedDataset`.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"Argument `dataset` must be a tf.data.Dataset batched with the global batch size. "
                        f"Received: dataset={dataset!r} of type {type(dataset).__name__}")
    _checks.choice("shard_policy", shard_policy, POLICIES)
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"Argument `strategy` must be a tf.distribute.Strategy or None. Received: "
                        f"strategy={strategy!r} of type {type(strategy).__name__}")
    replicas = int(strategy.num_replicas_in_sync)
    batch = _static_batch_size(dataset)
    if batch is not None and batch % replicas:
        raise ValueError(f"Argument `dataset` must be batched with a global batch size divisible by the {replicas} "
                         f"replicas. Received: a dataset with batch size {batch}")
    if shard_policy == "auto":
        multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
            strategy.extended._in_multi_worker_mode()
        )
        shard_policy = "data" if multi_worker else "off"
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = {
        "data": tf.data.experimental.AutoShardPolicy.DATA,
        "file": tf.data.experimental.AutoShardPolicy.FILE,
        "off": tf.data.experimental.AutoShardPolicy.OFF,
    }[shard_policy]
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def _static_batch_size(dataset):
    sizes = {spec.shape[0] for spec in tf.nest.flatten(dataset.element_spec) if spec.shape.rank}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None
