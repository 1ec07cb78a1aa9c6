"""TensorFlow-only: `describe_strategy`, what a `tf.distribute` strategy runs on, as a dict and a summary line."""

import tensorflow as tf

# (class, kind, public name): TensorFlow's own class names differ (MultiWorkerMirroredStrategy is a
# CollectiveAllReduceStrategy), so the summary uses the names users write.
KINDS = (
    (tf.distribute.TPUStrategy, "tpu", "TPUStrategy"),
    (tf.distribute.MultiWorkerMirroredStrategy, "multi_worker_mirrored", "MultiWorkerMirroredStrategy"),
    (tf.distribute.MirroredStrategy, "mirrored", "MirroredStrategy"),
    (tf.distribute.OneDeviceStrategy, "one_device", "OneDeviceStrategy"),
)


class StrategyDescription(dict):
    """A dict of the strategy's facts whose `str` is the one-line summary the CLI prints."""

    def __str__(self):
        workers = f" on {self['num_workers']} workers" if self["num_workers"] > 1 else ""
        task = f"; this is {self['task_type']} {self['task_index']}" if self["task_type"] is not None else ""
        devices = ", ".join(self["devices"])
        replicas = f"{self['replicas']} replica{'s' if self['replicas'] != 1 else ''}"
        return f"strategy: {self['kind']} ({self['class']}), {replicas}{workers}{task}; devices: {devices}"


def describe_strategy(strategy=None):
    """Describes a `tf.distribute` strategy: its kind, replicas, devices, and this worker's place in the cluster.

    Use it to log at start-up what a script will train on (`tfopt demo --strategy` prints it), and in tests to
    assert that the expected strategy was built. `print(describe_strategy(s))` prints the summary line.

    Args:
        strategy: a `tf.distribute.Strategy`; None describes the current one (`tf.distribute.get_strategy()`,
            the default strategy outside any scope). Defaults to None.

    Returns:
        A `StrategyDescription` (a dict) with keys `kind` ("tpu", "multi_worker_mirrored", "mirrored",
        "one_device" or "default"), `class` (the class name users write), `replicas` (replicas in sync),
        `num_workers`, `devices` (this worker's devices; for the default strategy, the device ops are placed on),
        `task_type` and `task_index` (None outside a cluster).

    Example:

    >>> import tensorflow as tf
    >>> print(describe_strategy(tf.distribute.OneDeviceStrategy("/cpu:0")))
    strategy: one_device (OneDeviceStrategy), 1 replica; devices: /job:localhost/replica:0/task:0/device:CPU:0
    """
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"Argument `strategy` must be a tf.distribute.Strategy or None. Received: "
                        f"strategy={strategy!r} of type {type(strategy).__name__}")
    kind, name = next(((k, n) for cls, k, n in KINDS if isinstance(strategy, cls)), ("default", "default strategy"))
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None) if resolver is not None else None
    task_index = getattr(resolver, "task_id", None) if task_type is not None else None
    num_workers = 1
    if kind == "multi_worker_mirrored":
        num_workers = strategy.extended._num_workers
    elif kind == "tpu":
        num_workers = strategy.extended.num_hosts
    return StrategyDescription(
        kind=kind,
        **{"class": name},
        replicas=int(strategy.num_replicas_in_sync),
        num_workers=int(num_workers),
        devices=_devices(strategy, kind),
        task_type=task_type,
        task_index=task_index,
    )


def _devices(strategy, kind):
    if kind == "default":
        # The default strategy places ops as TensorFlow does without one: on the first GPU, else the CPU.
        return [(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[0].name]
    return [str(d) for d in strategy.extended.worker_devices]
