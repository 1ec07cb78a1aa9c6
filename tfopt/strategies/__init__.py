"""TensorFlow-only: the distribution-strategy factory, device detection and mixed precision.

Exceptions: `get_distribution`, `auto_layout_map`, `check_layout_map` and `sharding_report` are for Keras's own
distribution (JAX backend); their modules import only keras (and JAX inside `sharding_report`'s step analysis).

Public objects:
    get_strategy: the tf.distribute strategy for this machine or cluster ("auto"), or the one named.
    describe_strategy: kind, replicas, devices and this worker's task, as a dict and a summary line.
    patch_keras_multi_worker: the fix that makes Keras 3 `fit` work under MultiWorkerMirroredStrategy.
    per_replica_batch_size: the batch each replica sees for a global batch (refuses uneven splits).
    linear_scaling_rule: the learning rate for a global batch with a gradual warm-up (Goyal et al. 2017).
    distribute_dataset: a dataset distributed over a strategy with the right auto-shard policy.
    auto_mixed_precision: mixed_bfloat16 on TPU, mixed_float16 on recent GPUs, float32 on CPU.
    configure_devices: GPU memory growth, visible GPUs and logical CPUs, with a clear error when too late.
    get_distribution: keras.distribution data, model, hybrid and fully sharded parallelism, ZeRO-1 (JAX backend).
    auto_layout_map: a Megatron-style tensor-parallel LayoutMap for any Sequential or functional model.
    check_layout_map: refuses a LayoutMap with keys that match nothing, overlapping keys or indivisible splits.
    sharding_report: per variable and device, what landed where and how many bytes; the train step's memory.
"""

from tfopt.strategies.auto_layout_map import auto_layout_map
from tfopt.strategies.auto_mixed_precision import auto_mixed_precision
from tfopt.strategies.check_layout_map import check_layout_map
from tfopt.strategies.configure_devices import configure_devices
from tfopt.strategies.describe_strategy import describe_strategy
from tfopt.strategies.distribute_dataset import distribute_dataset
from tfopt.strategies.get_distribution import get_distribution
from tfopt.strategies.get_strategy import get_strategy
from tfopt.strategies.linear_scaling_rule import linear_scaling_rule
from tfopt.strategies.patch_keras_multi_worker import patch_keras_multi_worker
from tfopt.strategies.per_replica_batch_size import per_replica_batch_size
from tfopt.strategies.sharding_report import sharding_report

__all__ = [
    "auto_layout_map",
    "auto_mixed_precision",
    "check_layout_map",
    "configure_devices",
    "describe_strategy",
    "distribute_dataset",
    "get_distribution",
    "get_strategy",
    "linear_scaling_rule",
    "patch_keras_multi_worker",
    "per_replica_batch_size",
    "sharding_report",
]
