"""TensorFlow-only: `get_strategy`, the `tf.distribute` strategy for the machine (or cluster) the script runs on."""

import os
import warnings

import tensorflow as tf

from tfopt import _checks
from tfopt.strategies import _cluster
from tfopt.strategies.patch_keras_multi_worker import patch_keras_multi_worker

NAMES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
COMMUNICATIONS = {
    "mirrored": ("auto", "nccl", "hierarchical_copy", "reduce_to_one"),
    "multi_worker_mirrored": ("auto", "ring", "nccl"),
}


def get_strategy(name="auto", devices=None, tpu=None, communication="auto", *, connect_timeout=600.0):
    """Returns the `tf.distribute` strategy for where the script runs: one script from laptop to cluster or TPU.

    Build the model and compile it inside `strategy.scope()`, then call `fit` as usual; batch sizes given to
    `fit` are global (split over the replicas). "auto" decides, in this order:

    1. `TPUStrategy` when a TPU resolves: `tpu` is given, `TPU_NAME` is set, or this host has TPU devices.
    2. `MultiWorkerMirroredStrategy` when TF_CONFIG describes a cluster with more than one training task
       (chief and workers); each process runs the same script with its own `task`.
    3. `MirroredStrategy` when more than one GPU is visible (or `devices` names several devices).
    4. `OneDeviceStrategy` on the GPU, else the CPU (or on the one device `devices` names).

    The names "one_device", "mirrored", "multi_worker_mirrored" and "tpu" force a choice. A returned
    MultiWorkerMirroredStrategy comes with `patch_keras_multi_worker()` applied, without which Keras 3 `fit`
    fails under it.

    A multi-worker cluster forms when every task of TF_CONFIG has started; TensorFlow waits for them without
    limit. Here the wait is bounded by `connect_timeout`: past it, the worker prints which tasks never answered
    and stops (it cannot be interrupted more gently: TensorFlow blocks in C++ while it waits).

    Args:
        name: one of "auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu". Defaults to "auto".
        devices: device names, e.g. ["/gpu:0", "/gpu:1"] for "mirrored" (all GPUs, or the CPU, when None) or
            "/gpu:1" for "one_device"; each must exist. Not used by "multi_worker_mirrored" and "tpu".
            Defaults to None.
        tpu: the TPU to resolve (a name, "local", or a "grpc://" address); None reads `TPU_NAME` or uses this
            host's TPU. Defaults to None.
        communication: the all-reduce: "auto"; for "mirrored" also "nccl", "hierarchical_copy",
            "reduce_to_one"; for "multi_worker_mirrored" also "ring", "nccl". Defaults to "auto".
        connect_timeout: seconds a multi-worker task waits for the whole cluster, > 0, or None for no limit.
            Defaults to 600.

    Returns:
        A `tf.distribute.Strategy`.

    Example:

    >>> strategy = get_strategy("one_device", devices="/cpu:0")
    >>> strategy.num_replicas_in_sync
    1

    References:
        - TensorFlow, "Distributed training with TensorFlow", https://www.tensorflow.org/guide/distributed_training
    """
    if name not in NAMES:
        allowed = ", ".join(repr(n) for n in NAMES)
        raise ValueError(f"Argument `name` must be one of {allowed}. Received: name={name!r}")
    _checks.number("connect_timeout", connect_timeout, low=0, low_open=True, optional=True)
    given = devices
    devices = _device_list(devices)
    if name == "one_device" and devices is not None and len(devices) != 1:
        raise ValueError(f"Argument `devices` must name one device for name='one_device'. Received: devices={given!r}")
    config = _cluster.read_tf_config()
    if name == "auto":
        tpu_found = _tpu_resolver(tpu, required=False) is not None
        num_workers = config["num_workers"] if config else 1
        # Counting logical GPUs initialises TensorFlow, after which a MultiWorkerMirroredStrategy can no longer be
        # built ("Collective ops must be configured at program startup"): count only when no cluster is set.
        num_gpus = 0 if tpu_found or num_workers > 1 else len(tf.config.list_logical_devices("GPU"))
        name = auto_choice(tpu=tpu_found, num_workers=num_workers, num_gpus=num_gpus, num_devices=len(devices or []))
    if communication not in COMMUNICATIONS.get(name, ("auto",)):
        allowed = ", ".join(repr(c) for c in COMMUNICATIONS.get(name, ("auto",)))
        raise ValueError(f"Argument `communication` must be one of {allowed} for name={name!r}. "
                         f"Received: communication={communication!r}")
    if name == "tpu":
        return _tpu_strategy(_tpu_resolver(tpu, required=True))
    if name == "multi_worker_mirrored":
        return _multi_worker_strategy(config, communication, connect_timeout)
    if name == "mirrored":
        return _mirrored_strategy(devices, communication)
    return _one_device_strategy(devices)


def auto_choice(*, tpu, num_workers, num_gpus, num_devices=0):
    """The strategy name "auto" picks, from what was detected (the decision alone, for tests and logs)."""
    if tpu:
        return "tpu"
    if num_workers > 1:
        return "multi_worker_mirrored"
    if num_devices > 1 or (num_devices == 0 and num_gpus > 1):
        return "mirrored"
    return "one_device"


def _device_list(devices):
    if devices is None:
        return None
    listed = [devices] if isinstance(devices, str) else devices
    if not isinstance(listed, list | tuple) or not listed or not all(isinstance(d, str) for d in listed):
        raise TypeError(f"Argument `devices` must be a device name or a non-empty list of them, e.g. "
                        f"['/gpu:0', '/gpu:1']. Received: devices={devices!r}")
    known = {_canonical(d.name): d.name for d in tf.config.list_logical_devices()}
    missing = [d for d in listed if _canonical(d) not in known]
    if missing:
        available = ", ".join(sorted(known.values()))
        raise ValueError(f"Argument `devices` must name devices of this machine ({available}). Received: "
                         f"devices={devices!r}; not found: {', '.join(missing)}")
    return [known[_canonical(d)] for d in listed]


def _canonical(device):
    try:
        spec = tf.DeviceSpec.from_string(device)
    except ValueError:
        return device
    return ((spec.device_type or "").upper(), spec.device_index or 0)


def _tpu_resolver(tpu, required):
    target = tpu or os.environ.get("TPU_NAME")
    if not target and tf.config.list_physical_devices("TPU"):
        target = "local"
    if not target:
        if required:
            raise ValueError("Argument `tpu` must name a TPU for name='tpu' (a TPU name, 'local' or "
                             "'grpc://<address>'), or TPU_NAME must be set, or this host must have TPU devices; none "
                             f"is the case. Received: tpu={tpu!r}")
        return None
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=target)
    except Exception as e:  # the resolver raises ValueError, URLError or cloud-client errors alike
        if required:
            raise ValueError(f"Argument `tpu`: the TPU {target!r} did not resolve: {e}") from e
        warnings.warn(f"get_strategy('auto'): the TPU {target!r} did not resolve ({e}); not using a TPU.",
                      stacklevel=3)
        return None


def _tpu_strategy(resolver):
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def _multi_worker_strategy(config, communication, connect_timeout):
    implementation = {
        "auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
        "ring": tf.distribute.experimental.CommunicationImplementation.RING,
        "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL,
    }[communication]
    options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
    patch_keras_multi_worker()
    if config is None or config["num_workers"] < 2:
        # One task: a valid MultiWorkerMirroredStrategy over this host's devices, nothing to wait for.
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    with _cluster.Watchdog(config, connect_timeout):
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def _mirrored_strategy(devices, communication):
    cross_device_ops = {
        "auto": None,
        "nccl": tf.distribute.NcclAllReduce,
        "hierarchical_copy": tf.distribute.HierarchicalCopyAllReduce,
        "reduce_to_one": tf.distribute.ReductionToOneDevice,
    }[communication]
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device_ops and cross_device_ops())


def _one_device_strategy(devices):
    if devices:
        return tf.distribute.OneDeviceStrategy(devices[0])
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
