"""TensorFlow-only: `configure_devices`, the GPU (and CPU) set-up every training script repeats."""

import tensorflow as tf

from tfopt import _checks


def configure_devices(memory_growth=True, visible_gpus=None, logical_cpus=None):
    """Sets which GPUs TensorFlow uses and how it takes their memory; optionally splits the CPU into logical devices.

    By default TensorFlow takes all memory of every visible GPU at start; memory growth makes it take memory as
    needed, so several processes (or a notebook and a script) share a GPU. `visible_gpus` hides the others, like
    CUDA_VISIBLE_DEVICES but from Python. `logical_cpus` splits the CPU into several devices, so a
    MirroredStrategy (and its tests) can run on a machine without GPUs.

    TensorFlow fixes all of this when it initialises its devices (the first op, model, dataset or strategy). Call
    it first thing; called again later with the same settings it does nothing, and with other settings it raises a
    RuntimeError that says so instead of TensorFlow's bare one.

    Args:
        memory_growth: allocate GPU memory as needed (True) or all at start (False). Defaults to True.
        visible_gpus: indices into `tf.config.list_physical_devices("GPU")` to keep visible; None keeps them all.
            Defaults to None.
        logical_cpus: split the CPU into this many logical devices, an integer >= 1; None leaves it as it is.
            Defaults to None.

    Returns:
        A dict: `gpus` (names of the visible GPUs), `memory_growth`, `cpus` (names of the logical CPU devices).
    """
    _checks.boolean("memory_growth", memory_growth)
    gpus = tf.config.list_physical_devices("GPU")
    if visible_gpus is not None:
        if not isinstance(visible_gpus, list | tuple) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(gpus) for i in visible_gpus
        ):
            allowed = f"GPU indices in [0, {len(gpus) - 1}]" if gpus else "no GPU indices (this machine has no GPU)"
            raise ValueError(f"Argument `visible_gpus` must be a list of {allowed}. Received: "
                             f"visible_gpus={visible_gpus!r}")
        wanted = [gpus[i] for i in visible_gpus]
    else:
        wanted = gpus
    _checks.integer("logical_cpus", logical_cpus, 1, optional=True)
    try:
        if visible_gpus is not None:
            tf.config.set_visible_devices(wanted, "GPU")
        for gpu in wanted:
            tf.config.experimental.set_memory_growth(gpu, memory_growth)
        if logical_cpus is not None:
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    except RuntimeError:
        _check_unchanged(wanted, memory_growth, logical_cpus)
    return {
        "gpus": [d.name for d in tf.config.get_visible_devices("GPU")],
        "memory_growth": memory_growth,
        "cpus": [d.name for d in tf.config.list_logical_devices("CPU")],
    }


def _check_unchanged(wanted, memory_growth, logical_cpus):
    """After initialisation: fine if the request is what is already in place, else a clear error."""
    visible = tf.config.get_visible_devices("GPU")
    growth = {gpu.name: tf.config.experimental.get_memory_growth(gpu) for gpu in visible}
    cpus = len(tf.config.list_logical_devices("CPU"))
    differences = []
    if [g.name for g in visible] != [g.name for g in wanted]:
        differences.append(f"visible GPUs {[g.name for g in visible]}, asked {[g.name for g in wanted]}")
    if any(value != memory_growth for value in growth.values()):
        differences.append(f"memory growth {sorted(set(growth.values()))}, asked {memory_growth}")
    if logical_cpus is not None and cpus != logical_cpus:
        differences.append(f"{cpus} logical CPU device(s), asked {logical_cpus}")
    if differences:
        raise RuntimeError(
            "configure_devices() was called after TensorFlow initialised its devices, which fixes them: "
            + "; ".join(differences)
            + ". Call it at the very start of the script, before any model, dataset, strategy or tensor is created."
        )
