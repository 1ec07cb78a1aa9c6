import math
import re

import pytest

from tfopt.acceleration import Candidate, Hardware
from tfopt.acceleration.candidate import auto_candidates

pytestmark = pytest.mark.backend_agnostic


def test_defaults_change_nothing():
    defaults = Candidate("defaults")
    assert defaults.changes() == {} and defaults.describe() == "Keras defaults"
    assert defaults.compile_kwargs() == {"jit_compile": "auto", "steps_per_execution": 1}


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_learning_rate_rules(k):
    assert Candidate("l", batch_multiplier=k, lr_scaling="linear").learning_rate_factor == k
    assert Candidate("s", batch_multiplier=k, lr_scaling="sqrt").learning_rate_factor == pytest.approx(math.sqrt(k))
    assert Candidate("n", batch_multiplier=k).learning_rate_factor == 1.0
    assert Candidate("x", batch_multiplier=k, lr_scaling="sqrt", learning_rate_scale=0.5).learning_rate_factor == (
        pytest.approx(0.5 * math.sqrt(k))
    )


def test_resolve_names_dicts_and_objects():
    assert Candidate.resolve("jit_compile") == Candidate("jit_compile", jit_compile=True)
    assert Candidate.resolve({"name": "c", "steps_per_execution": 4}).steps_per_execution == 4
    c = Candidate("c", input_pipeline="tfopt")
    assert Candidate.resolve(c) is c
    assert c.describe() == "tfopt input pipeline"


def _cpu(backend="tensorflow"):
    return Hardware(backend=backend, device="cpu", compute_capability=None, cpu_count=2)


def test_auto_on_a_tensorflow_cpu():
    chosen, left_out = auto_candidates(_cpu())
    names = [c.name for c in chosen]
    assert names == [
        "defaults",
        "jit_compile",
        "steps_per_execution_8",
        "steps_per_execution_32",
        "tfopt_pipeline",
    ]
    assert set(left_out) == {
        "no_jit_compile",
        "mixed_float16",
        "mixed_bfloat16",
        "mixed_bfloat16_jit",
        "batch_x2_linear",
        "batch_x2_sqrt",
        "batch_x4_linear",
        "batch_x4_sqrt",
    }


def test_auto_on_an_ampere_gpu_keeps_both_mixed_precisions_and_tries_xla_off():
    gpu = Hardware(backend="tensorflow", device="gpu", compute_capability=(8, 0), cpu_count=16)
    names = [c.name for c in auto_candidates(gpu)[0]]
    assert {"no_jit_compile", "mixed_float16", "mixed_bfloat16"} <= set(names) and "jit_compile" not in names


def test_auto_on_a_volta_gpu_leaves_out_bfloat16_xla_and_jax_never_runs_eagerly():
    volta = Hardware(backend="tensorflow", device="gpu", compute_capability=(7, 0), cpu_count=8)
    names = [c.name for c in auto_candidates(volta)[0]]
    assert "mixed_float16" in names and "mixed_bfloat16" not in names and "mixed_bfloat16_jit" not in names
    chosen, left_out = auto_candidates(_cpu("jax"))
    assert "no_jit_compile" in left_out and "eagerly" in left_out["no_jit_compile"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"name": ""}, TypeError, "`name` must be a non-empty string. Received: name=''"),
        (
            {"jit_compile": "yes"},
            ValueError,
            "`jit_compile` must be one of 'auto', True, False. Received: jit_compile='yes'",
        ),
        ({"jit_compile": 1}, ValueError, "`jit_compile` must be one of 'auto', True, False. Received: jit_compile=1"),
        (
            {"steps_per_execution": 0},
            ValueError,
            "`steps_per_execution` must be an integer >= 1. Received: steps_per_execution=0",
        ),
        (
            {"batch_multiplier": 1.5},
            TypeError,
            "`batch_multiplier` must be an integer >= 1. Received: batch_multiplier=1.5 of type float",
        ),
        (
            {"dtype_policy": "float16"},
            ValueError,
            "`dtype_policy` must be one of ('float32', 'mixed_float16', 'mixed_bfloat16'). "
            "Received: dtype_policy='float16'",
        ),
        (
            {"input_pipeline": "fast"},
            ValueError,
            "`input_pipeline` must be one of ('given', 'tfopt'). Received: input_pipeline='fast'",
        ),
        (
            {"lr_scaling": "log"},
            ValueError,
            "`lr_scaling` must be one of (None, 'linear', 'sqrt'). Received: lr_scaling='log'",
        ),
        (
            {"learning_rate_scale": -1},
            ValueError,
            "`learning_rate_scale` must be a finite number >= 0. Received: learning_rate_scale=-1",
        ),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Candidate(**{"name": "c", **kwargs})
