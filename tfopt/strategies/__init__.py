"""TensorFlow-only: the distribution-strategy factory, device detection and mixed precision.

One exception: `get_distribution` is Keras's own distribution for the JAX backend; its module imports only keras.

Public objects:
    get_strategy: the tf.distribute strategy for this machine or cluster ("auto"), or the one named.
    describe_strategy: kind, replicas, devices and this worker's task, as a dict and a summary line.
    patch_keras_multi_worker: the fix that makes Keras 3 `fit` work under MultiWorkerMirroredStrategy.
    per_replica_batch_size: the batch each replica sees for a global batch (refuses uneven splits).
    linear_scaling_rule: the learning rate for a global batch with a gradual warm-up (Goyal et al. 2017).
    distribute_dataset: a dataset distributed over a strategy with the right auto-shard policy.
    auto_mixed_precision: mixed_bfloat16 on TPU, mixed_float16 on recent GPUs, float32 on CPU.
    configure_devices: GPU memory growth, visible GPUs and logical CPUs, with a clear error when too late.
    get_distribution: keras.distribution DataParallel / ModelParallel over a device mesh (JAX backend).
"""

from tfopt.strategies.auto_mixed_precision import auto_mixed_precision
from tfopt.strategies.configure_devices import configure_devices
from tfopt.strategies.describe_strategy import describe_strategy
from tfopt.strategies.distribute_dataset import distribute_dataset
from tfopt.strategies.get_distribution import get_distribution
from tfopt.strategies.get_strategy import get_strategy
from tfopt.strategies.linear_scaling_rule import linear_scaling_rule
from tfopt.strategies.patch_keras_multi_worker import patch_keras_multi_worker
from tfopt.strategies.per_replica_batch_size import per_replica_batch_size

__all__ = [
    "auto_mixed_precision",
    "configure_devices",
    "describe_strategy",
    "distribute_dataset",
    "get_distribution",
    "get_strategy",
    "linear_scaling_rule",
    "patch_keras_multi_worker",
    "per_replica_batch_size",
]
