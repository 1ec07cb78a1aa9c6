"""sharding_report: bytes per variable and device, totals, the compiled train step's memory (JAX's memory analysis)
and the table. The sharded cases run in a JAX process with 8 virtual CPU devices; the plain ones here, any
backend."""

import keras
import numpy as np
import pytest

from tests.strategies.jax_runner import run_scenario
from tfopt.strategies.sharding_report import sharding_report

# A 512 -> 2048 -> 512 MLP with Adam, one global batch of 64: the report of each kind.
KINDS = ("single", "hybrid", "fsdp", "zero1", "data_parallel")
PARAMETERS = (512 * 2048 + 2048 + 2048 * 512 + 512) * 4


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return run_scenario("report", tmp_path_factory.mktemp("report"))


def test_the_hybrid_step_needs_at_most_035_of_one_device(result):
    single = result["single"]["report"]["step_bytes_per_device"]
    hybrid = result["hybrid"]["report"]["step_bytes_per_device"]
    assert single > 3 * PARAMETERS  # weights, Adam's two slots and the gradients at least
    assert hybrid <= 0.35 * single


def test_fsdp_and_zero1_steps_need_less_than_plain_data_parallel(result):
    step = {k: result[k]["report"]["step_bytes_per_device"] for k in KINDS}
    assert step["fsdp"] < step["zero1"] < step["data_parallel"] <= step["single"]


@pytest.mark.parametrize("kind", KINDS)
def test_totals_are_the_sums_of_the_rows(result, kind):
    report = result[kind]["report"]
    assert report["parameter_bytes"] == PARAMETERS
    for key, rows in (("parameter", "variables"), ("optimizer", "optimizer_variables")):
        assert report[f"{key}_bytes"] == sum(e["total_bytes"] for e in report[rows])
        assert report[f"{key}_bytes_per_device"] == sum(e["bytes_per_device"] for e in report[rows])
    assert report["optimizer_bytes"] == 2 * PARAMETERS + 8  # m, v and two float32 scalars


def test_bytes_per_device_are_exact(result):
    hybrid = {e["path"].split("/", 1)[1]: e for e in result["hybrid"]["report"]["variables"]}
    kernels = [e for p, e in hybrid.items() if p.endswith("kernel")]
    assert [e["bytes_per_device"] for e in kernels] == [512 * 2048 * 4 // 4, 2048 * 512 * 4 // 4]
    assert result["hybrid"]["report"]["parameter_bytes_per_device"] == (PARAMETERS - 2048 * 4 - 512 * 4) // 4 + \
        2048 * 4 // 4 + 512 * 4  # the second bias replicated
    fsdp = result["fsdp"]["report"]
    assert fsdp["parameter_bytes_per_device"] == (2 * 512 * 2048 + 2048) * 4 // 8 + 512 * 4  # 512 < 1024: whole
    zero1 = result["zero1"]["report"]
    assert zero1["parameter_bytes_per_device"] == PARAMETERS
    assert zero1["optimizer_bytes_per_device"] == 2 * PARAMETERS // 8 + 8
    assert result["single"]["report"]["mesh"] == {}
    assert result["hybrid"]["report"]["mesh"] == {"batch": 2, "model": 4}


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_per_device_are_what_each_device_holds(result, kind):
    report = result[kind]["report"]
    held, slots = result[kind]["device_bytes"], result[kind]["slot_device_bytes"]
    assert len(held) == (1 if kind == "single" else 8)
    assert set(held.values()) == {report["parameter_bytes_per_device"]}  # every device holds the same share
    assert set(slots.values()) == {report["optimizer_bytes_per_device"]}


@pytest.mark.parametrize("kind", KINDS)
def test_the_report_trains_nothing(result, kind):
    assert result[kind]["weights_unchanged"]


def test_the_table_says_replicated_and_the_totals(result):
    table = result["hybrid"]["table"]
    lines = table.splitlines()
    assert lines[0].split() == ["variable", "shape", "mesh", "axes", "bytes/device", "total", "bytes"]
    assert any(line.split()[1:3] == ["(512,)", "replicated"] for line in lines[2:])
    assert any(line.split()[1:4] == ["(512,", "2048)", "(None,"] and "1,048,576" in line for line in lines[2:])
    assert "mesh: batch 2 x model 4" in table
    assert f"parameters: {result['hybrid']['report']['parameter_bytes_per_device']:,} bytes per device of " \
           f"{PARAMETERS:,} (0.250 of the total)" in table
    assert lines[-1] == (f"train step (arguments + temporaries, one device): "
                         f"{result['hybrid']['report']['step_bytes_per_device']:,} bytes")


@pytest.mark.backend_agnostic
def test_a_plain_model_is_whole_on_one_device():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    report = sharding_report(model)
    assert report["parameter_bytes"] == report["parameter_bytes_per_device"] == (4 * 3 + 3) * 4
    assert report["optimizer_bytes"] == 0 and report["step_bytes_per_device"] is None
    assert [e["axes"] for e in report["variables"]] == [[None, None], [None]]
    assert "replicated" in str(report) and "mesh: one device" in str(report)


@pytest.mark.backend_agnostic
def test_bad_arguments_name_themselves():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(TypeError, match=r"^Argument `model` must be a built keras.Model. Received: model=1 of "
                                        r"type int$"):
        sharding_report(1)
    with pytest.raises(TypeError, match=r"^Argument `batch` must be None or a tuple \(x, y\) of arrays. Received: "
                                        r"batch of type list$"):
        sharding_report(model, [np.zeros((2, 4))])
    with pytest.raises(TypeError, match=r"^Argument `layout_map` must be a map from auto_layout_map, or None"):
        sharding_report(model, layout_map={})
    expected = (r"^Argument `model` must be compiled" if keras.backend.backend() == "jax"
                else r"^Argument `batch` needs the JAX backend")
    with pytest.raises(ValueError, match=expected):
        sharding_report(model, (np.zeros((2, 4)), np.zeros((2, 3))))
