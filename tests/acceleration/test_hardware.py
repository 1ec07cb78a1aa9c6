import keras
import pytest

from tfopt.acceleration import Hardware, detect_hardware

pytestmark = pytest.mark.backend_agnostic


def test_detects_the_backend_and_device():
    hardware = detect_hardware()
    assert hardware.backend == keras.backend.backend()
    assert hardware.device in ("cpu", "gpu", "tpu") and hardware.cpu_count >= 1
    assert hardware.to_dict()["backend"] == hardware.backend
    assert hardware.describe().startswith(hardware.device.upper())


def test_what_each_device_runs_fast():
    cpu = Hardware("tensorflow", "cpu", None, 2)
    assert not cpu.float16_fast and not cpu.bfloat16_fast and not cpu.default_jit
    assert Hardware("jax", "cpu", None, 2).default_jit
    t4 = Hardware("tensorflow", "gpu", (7, 5), 8)
    assert t4.float16_fast and not t4.bfloat16_fast and t4.default_jit
    a100 = Hardware("tensorflow", "gpu", (8, 0), 8)
    assert a100.bfloat16_fast and "compute capability 8.0" in a100.describe()
