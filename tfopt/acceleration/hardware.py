"""What the fit profiler needs to know about the machine: the Keras backend, the accelerator, and what it can run."""

import os
from dataclasses import asdict, dataclass

import keras


@dataclass(frozen=True)
class Hardware:
    """The device Keras trains on.

    Attributes:
        backend: the Keras backend ("tensorflow", "jax", ...).
        device: "cpu", "gpu" or "tpu" (the first accelerator the backend sees, else "cpu").
        compute_capability: `(major, minor)` of the first NVIDIA GPU, or None.
        cpu_count: logical CPU cores.
    """

    backend: str
    device: str
    compute_capability: tuple | None
    cpu_count: int

    @property
    def float16_fast(self):
        """Tensor cores (compute capability >= 7.0) run float16 matrix math several times faster than float32."""
        return self.device == "gpu" and (self.compute_capability is None or self.compute_capability >= (7, 0))

    @property
    def bfloat16_fast(self):
        """bfloat16 math is native on TPUs and on NVIDIA GPUs from compute capability 8.0 (Ampere)."""
        if self.device == "tpu":
            return True
        return self.device == "gpu" and self.compute_capability is not None and self.compute_capability >= (8, 0)

    @property
    def default_jit(self):
        """What Keras's `jit_compile="auto"` resolves to: XLA off on a CPU-only TensorFlow, on elsewhere."""
        if self.backend == "tensorflow":
            return self.device != "cpu"
        return self.backend == "jax"

    def describe(self):
        capability = ""
        if self.compute_capability:
            capability = " (compute capability {}.{})".format(*self.compute_capability)
        return (
            f"{self.device.upper()}{capability}, {self.cpu_count} CPU cores, "
            f"Keras {keras.__version__} on {self.backend}"
        )

    def to_dict(self):
        return asdict(self)


def detect_hardware():
    """Returns the `Hardware` the current Keras backend trains on."""
    backend = keras.backend.backend()
    device, capability = "cpu", None
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            device = "gpu"
            details = tf.config.experimental.get_device_details(gpus[0])
            capability = details.get("compute_capability")
        elif tf.config.list_physical_devices("TPU"):
            device = "tpu"
    elif backend == "jax":
        import jax

        platform = jax.devices()[0].platform
        device = {"gpu": "gpu", "cuda": "gpu", "rocm": "gpu", "tpu": "tpu"}.get(platform, "cpu")
        if device == "gpu":
            version = getattr(jax.devices()[0], "compute_capability", None)
            if isinstance(version, str) and "." in version:
                capability = tuple(int(part) for part in version.split(".")[:2])
    return Hardware(
        backend=backend,
        device=device,
        compute_capability=tuple(capability) if capability else None,
        cpu_count=os.cpu_count() or 1,
    )
