import importlib
import json
import re

import keras
import numpy as np
import pytest

from tests.acceleration.helpers import tiny_data, tiny_model
from tfopt.acceleration import Candidate, FitProfile, profile_fit

# The package exports the function under the module's name; the helpers live in the module.
profile_module = importlib.import_module("tfopt.acceleration.profile_fit")

pytestmark = pytest.mark.backend_agnostic

# Faster per step (fewer calls of the compiled function) and does not learn: the loss check must catch it.
BROKEN = Candidate("broken_fast", steps_per_execution=8, learning_rate_scale=0.0)


@pytest.fixture(scope="module")
def profile():
    x, y = tiny_data()
    return profile_fit(
        tiny_model, x, y, candidates=["steps_per_execution_8", "tfopt_pipeline", BROKEN], steps=8, rounds=3, seed=0
    )


def test_every_row_is_measured(profile):
    assert [r["name"] for r in profile.rows][:4] == [
        "defaults",
        "steps_per_execution_8",
        "tfopt_pipeline",
        "broken_fast",
    ]
    assert profile.row("defaults")["pruned_after"] is None
    for row in profile.rows[:4]:
        timed = len(row["epoch_seconds"])  # 3 rounds, 3 more when it looked faster within noise, 2 if pruned
        assert timed in ({3, 6} if row["pruned_after"] is None else {2}) and all(s > 0 for s in row["epoch_seconds"])
        assert row["steps"] == 8 and row["batch_size"] == 32
        assert row["step_ms"] == pytest.approx(1e3 * np.median(row["epoch_seconds"]) / 8)
        assert row["examples_per_s"] == pytest.approx(256 / np.median(row["epoch_seconds"]))
        assert row["compile_s"] >= 0 and row["step_iqr_ms"] >= 0
        assert row["epochs_trained"] == 1 + timed == len(row["losses"])  # compiling epoch, no warm-up, timed rounds
        assert row["loss"] == row["losses"][-1]
    defaults = profile.row("defaults")
    assert defaults["speedup"] == 1.0 and not defaults["significant"]
    for row in profile.rows:
        assert row["speedup"] == pytest.approx(defaults["step_ms"] / row["step_ms"], rel=1e-9) or row["phase"] == 2


def test_same_weights_and_batches_give_the_same_loss(profile):
    # steps_per_execution changes how steps are dispatched, not what they compute. The input probes also train the
    # defaults' model (one batch repeated) and must put every variable back: equal losses show they did.
    spe8, defaults = profile.row("steps_per_execution_8"), profile.row("defaults")
    np.testing.assert_allclose(spe8["losses"], defaults["losses"][: len(spe8["losses"])], rtol=1e-5)
    assert spe8["loss_ok"]


def test_a_candidate_that_trains_worse_is_flagged_and_never_recommended(profile):
    broken, defaults = profile.row("broken_fast"), profile.row("defaults")
    assert broken["loss"] > 1.25 * defaults["loss"]
    assert not broken["loss_ok"] and not broken["recommended"]
    assert profile.best_name != "broken_fast"
    assert any(note.startswith("broken_fast trains worse") for note in profile.notes)


def test_best_is_a_significant_safe_row_or_the_defaults(profile):
    best = profile.row(profile.best_name)
    assert best["recommended"] and sum(r["recommended"] for r in profile.rows) == 1
    if profile.best_name != "defaults":
        assert best["significant"] and best["loss_ok"] and best["speedup"] > 1.0
        assert profile.notes[0].startswith(f"Recommended: {profile.best_name}")
    else:
        assert profile.notes[0].startswith(("Too noisy to tell", "Keras's defaults are the fastest"))
    assert profile.best["compile"] == {
        "jit_compile": best["config"]["jit_compile"],
        "steps_per_execution": best["config"]["steps_per_execution"],
    }


def test_input_is_diagnosed(profile):
    diagnosis = profile.input
    assert 0.0 <= diagnosis["waiting_fraction"] <= 1.0
    assert diagnosis["step_ms"] > 0 and diagnosis["end_to_end_ms"] > 0
    assert re.match(r"(input-bound|partly input-bound|compute-bound): \d+% of each step waits", diagnosis["verdict"])


def test_profile_reports_json_markdown_and_png(profile, tmp_path):
    saved = json.loads(profile.to_json())
    assert saved["best"] == profile.best and len(saved["rows"]) == len(profile.rows)
    assert saved["meta"]["rounds"] == 3 and saved["meta"]["steps"] == 8 and saved["meta"]["profile_seconds"] > 0
    assert saved["meta"]["warmup"] == 0
    table = profile.table()
    assert table.startswith("| Configuration | Changes | Step (ms) |")
    assert "| broken_fast | steps_per_execution=8, lr x0 |" in table and "trains worse (flagged)" in table
    profile.plot(str(tmp_path / "speedups.png"))
    assert (tmp_path / "speedups.png").read_bytes()[:4] == b"\x89PNG"


def test_auto_keeps_what_the_hardware_runs_and_says_why_not_the_rest():
    x, y = tiny_data(64)
    result = profile_fit(tiny_model, x, y, steps=2, rounds=3, warmup=0, input_diagnosis=False, combine=False)
    names = [r["name"] for r in result.rows]
    assert names[0] == "defaults" and "steps_per_execution_32" in names and "tfopt_pipeline" in names
    assert "mixed_float16" not in names and "float16" in result.left_out["mixed_float16"]
    assert "batch_x2_linear" in result.left_out
    assert "mixed_bfloat16" not in names and "mixed_bfloat16_jit" not in names
    assert "at best on par with float32" in result.left_out["mixed_bfloat16_jit"]
    if keras.backend.backend() == "tensorflow":
        assert "jit_compile" in names


def test_larger_batch_scales_the_learning_rate_and_keeps_the_examples():
    x, y = tiny_data(256)
    result = profile_fit(
        tiny_model,
        x,
        y,
        candidates=["batch_x2_linear", "batch_x4_sqrt"],
        steps=8,
        rounds=3,
        warmup=0,
        input_diagnosis=False,
    )
    linear, sqrt = result.row("batch_x2_linear"), result.row("batch_x4_sqrt")
    assert (linear["steps"], linear["batch_size"], linear["learning_rate_factor"]) == (4, 64, 2.0)
    assert (sqrt["steps"], sqrt["batch_size"], sqrt["learning_rate_factor"]) == (2, 128, 2.0)
    assert "linear lr rule" in linear["description"] and "square-root lr rule" in sqrt["description"]


def test_every_candidate_starts_from_the_first_models_weights(tmp_path):
    calls = []

    def unseeded():
        # Different weights on every call, whatever the seed: the profiler must copy the first model's.
        model = tiny_model()
        model.set_weights([w + len(calls) for w in model.get_weights()])
        calls.append(model)
        return model

    builder = profile_module._Builder(unseeded, None, seed=0)
    first = builder.build(Candidate.BUILT_IN["defaults"])
    second = builder.build(Candidate.BUILT_IN["steps_per_execution_8"])
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert second.steps_per_execution == 8


def test_a_loaded_model_is_rebuilt_under_the_candidates_precision(tmp_path):
    path = str(tmp_path / "m.keras")
    tiny_model().save(path)
    builder = profile_module._Builder(lambda: keras.models.load_model(path), None, seed=0)
    reference = builder.build(Candidate.BUILT_IN["defaults"])
    model = builder.build(Candidate.BUILT_IN["mixed_bfloat16"])
    assert {layer.dtype_policy.name for layer in model.layers} == {"mixed_bfloat16"}
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert keras.config.dtype_policy().name == "float32"


class _FixedRun:
    """Stands in for a candidate's run in the pruning loop: each call returns the next of its given epoch seconds."""

    def __init__(self, name, seconds, examples=256):
        self.candidate, self.feed = Candidate(name), type("Feed", (), {"examples": examples})()
        self.seconds, self.calls = list(seconds), 0

    def __call__(self):
        self.calls += 1
        return self.seconds[self.calls - 1]


def test_a_clearly_slower_candidate_stops_after_two_rounds():
    defaults = _FixedRun("defaults", [1.0, 1.1, 0.9, 1.0, 1.0])
    slow = _FixedRun("slow", [1.5, 1.6, 1.5, 1.5, 1.5])  # every epoch slower than the defaults' slowest, 1.4x+
    close = _FixedRun("close", [1.2, 1.2, 1.2, 1.2, 1.2])  # never overlaps, but only 1.14x slower: kept
    overlapping = _FixedRun("overlapping", [2.0, 1.05, 2.0, 2.0, 2.0])  # slow median, one epoch within range
    bigger_batch = _FixedRun("bigger_batch", [2.4] * 5, examples=512)  # slower per epoch, faster per example
    counter = profile_module._Progress(None)
    runs = [defaults, slow, close, overlapping, bigger_batch]
    counter.expect(5 * 5)
    timings, pruned = profile_module._time_with_pruning(runs, [], rounds=5, warmup=0, counter=counter)
    assert pruned == [None, 2, None, None, None]
    assert [r.calls for r in runs] == [5, 2, 5, 5, 5]
    assert timings[1].samples == (1.5, 1.6) and timings[0].samples == (1.0, 1.1, 0.9, 1.0, 1.0)
    assert counter.done == counter.total == 22


def test_rows_faster_within_noise_are_the_ones_timed_longer():
    def row(speedup, significant=False, loss_ok=True, pruned_after=None):
        return {"speedup": speedup, "significant": significant, "loss_ok": loss_ok, "pruned_after": pruned_after}

    rows = [row(1.0), row(1.3), row(1.05), row(1.5, significant=True), row(1.4, loss_ok=False), row(1.2), row(1.6)]
    assert profile_module._undecided(rows) == [6, 1]  # the two most promising open decisions, fastest first
    assert profile_module._undecided(rows[:3]) == [1] and profile_module._undecided([row(1.0), row(1.05)]) == []


def test_pruned_rows_compare_their_loss_after_as_many_epochs():
    reference = {"_per_example": (1.0, 0.1), "loss": 0.5, "losses": [2.0, 1.0, 0.8, 0.6, 0.5]}
    pruned = {"_per_example": (2.0, 0.1), "loss": 0.95, "losses": [2.0, 1.1, 0.95], "epochs_trained": 3}
    worse = {"_per_example": (2.0, 0.1), "loss": 1.2, "losses": [2.0, 1.5, 1.2], "epochs_trained": 3}
    for row in (pruned, worse):
        profile_module._compare(row, reference, 0.25)
    assert pruned["loss_ok"] and not worse["loss_ok"]  # against 0.8, the defaults' third epoch, not 0.5


def test_a_recommended_cache_of_a_given_dataset_says_when_it_is_exact():
    tfopt_row = {"config": Candidate.BUILT_IN["tfopt_pipeline"].to_dict()}
    defaults_row = {"config": Candidate.BUILT_IN["defaults"].to_dict()}
    notes = profile_module._input_notes(True, tfopt_row)
    assert notes == [profile_module.DATASET_CACHE_NOTE] and "the map is deterministic" in notes[0]
    assert profile_module._input_notes(False, tfopt_row) == [] == profile_module._input_notes(True, defaults_row)


def test_a_dataset_with_a_python_map_is_profiled_and_its_cache_trains_alike():
    import tensorflow as tf

    x, y = tiny_data()

    def standardise(row):
        return ((row - row.mean()) / (row.std() + 1e-6)).astype("float32")

    ds = tf.data.Dataset.from_tensor_slices((x, y)).map(
        lambda a, b: (tf.ensure_shape(tf.numpy_function(standardise, [a], tf.float32), [8]), b)
    )
    result = profile_fit(tiny_model, ds.batch(32), candidates=["tfopt_pipeline"], steps=8, rounds=3)
    cached, defaults = result.row("tfopt_pipeline"), result.row("defaults")
    np.testing.assert_allclose(cached["losses"], defaults["losses"][: len(cached["losses"])], rtol=1e-5)
    assert result.meta["input"] == "tf.data.Dataset" and 0.0 <= result.input["waiting_fraction"] <= 1.0
    assert (profile_module.DATASET_CACHE_NOTE in result.notes) == (result.best_name == "tfopt_pipeline")


def test_input_is_diagnosed_without_a_tfopt_pipeline_row():
    x, y = tiny_data(64)
    result = profile_fit(tiny_model, x, y, candidates=["steps_per_execution_8"], steps=2, rounds=3)
    diagnosis = result.input
    assert diagnosis["improved_ms"] > 0 and diagnosis["step_ms"] > 0
    assert diagnosis["end_to_end_ms"] == pytest.approx(result.row("defaults")["step_ms"])
    assert set(diagnosis["examples_per_second"]) == {"input", "step", "end_to_end", "improved"}


def test_significance_needs_more_than_both_spreads():
    def row(median, iqr, loss=1.0):
        return {"_per_example": (median, iqr), "loss": loss}

    reference = row(1.0, 0.1)
    clear, noisy, worse = row(0.5, 0.1), row(0.8, 0.3), row(0.5, 0.1, loss=1.3)
    for r in (reference, clear, noisy, worse):
        profile_module._compare(r, reference, 0.25)
    assert clear["speedup"] == 2.0 and clear["significant"] and clear["loss_ok"]
    assert noisy["speedup"] == 1.25 and not noisy["significant"]
    assert worse["significant"] and not worse["loss_ok"]


def test_combination_merges_the_winning_knobs():
    def row(candidate, speedup):
        return {"config": candidate.to_dict(), "speedup": speedup}

    built = Candidate.BUILT_IN
    combined = profile_module._combination(
        list(built.values()),
        [
            row(built["jit_compile"], 1.2),
            row(built["steps_per_execution_32"], 1.5),
            row(built["tfopt_pipeline"], 1.1),
            row(built["batch_x2_linear"], 1.9),
        ],
    )
    assert combined.name == "combined"
    assert combined.changes() == {"jit_compile": True, "steps_per_execution": 32, "input_pipeline": "tfopt"}
    assert profile_module._combination(list(built.values()), [row(built["jit_compile"], 1.2)]) is None


def test_noisy_profile_says_so_plainly():
    rows = [
        {
            "name": "defaults",
            "loss": 1.0,
            "loss_ok": True,
            "speedup": 1.0,
            "significant": False,
            "step_ms": 10.0,
            "step_iqr_ms": 3.0,
            "epochs_trained": 5,
        },
        {
            "name": "jit_compile",
            "loss": 1.0,
            "loss_ok": True,
            "speedup": 1.1,
            "significant": False,
            "step_ms": 9.1,
            "step_iqr_ms": 4.0,
            "epochs_trained": 5,
        },
    ]
    notes = profile_module._recommendation_notes(rows, rows[0])
    assert notes[0].startswith("Too noisy to tell: 1 configuration(s) look faster (up to 1.10x, jit_compile)")
    assert "IQR 30%-44% of the step time" in notes[0]


def test_fit_profile_best_gives_compile_and_fit_keywords():
    config = Candidate("x", jit_compile=True, steps_per_execution=8, batch_multiplier=2, lr_scaling="sqrt").to_dict()
    profile = FitProfile(
        rows=[{"name": "x", "config": config, "learning_rate_factor": 2**0.5}], best_name="x", meta={"batch_size": 16}
    )
    assert profile.best == {
        "candidate": "x",
        "compile": {"jit_compile": True, "steps_per_execution": 8},
        "fit": {"batch_size": 32},
        "dtype_policy": "float32",
        "input_pipeline": "given",
        "learning_rate_factor": 2**0.5,
    }
    with pytest.raises(KeyError, match="no row named 'y'"):
        profile.row("y")


def _not_a_model():
    return "model"


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"model_fn": _not_a_model},
            TypeError,
            "`model_fn` must return a keras.Model. Received: model_fn() returned str",
        ),
        ({"model_fn": 3}, TypeError, "`model_fn` must be a callable returning a fresh keras.Model"),
        ({"x": np.zeros((0, 8))}, ValueError, "`x` must contain at least one example"),
        ({"y": np.zeros(10)}, ValueError, "same number of examples. Received: len(x)=256, len(y)=10"),
        ({"y": None}, ValueError, "`y` is required when `x` is an array"),
        ({"x": [[1.0]]}, TypeError, "`x` must be a NumPy array (with `y`) or a `tf.data.Dataset`"),
        ({"steps": 0}, ValueError, "`steps` must be an integer >= 1. Received: steps=0"),
        ({"steps": 9}, ValueError, "`steps` must be at most the number of full batches in `x` (8 of batch_size=32)"),
        ({"batch_size": 0}, ValueError, "`batch_size` must be an integer >= 1. Received: batch_size=0"),
        ({"rounds": 2}, ValueError, "`rounds` must be an integer >= 3. Received: rounds=2"),
        ({"warmup": -1}, ValueError, "`warmup` must be an integer >= 0. Received: warmup=-1"),
        ({"loss_tolerance": -0.1}, ValueError, "`loss_tolerance` must be a finite number >= 0"),
        ({"candidates": ["jit"]}, ValueError, "`candidates` names an unknown candidate; known names are"),
        ({"candidates": "fast"}, ValueError, "`candidates` must be 'auto' or a non-empty list"),
        ({"candidates": [3]}, TypeError, "`candidates` must hold built-in names, dicts"),
        ({"candidates": [{"name": "x", "steps_per_execution": 0}]}, ValueError, "`steps_per_execution` must be an"),
        ({"candidates": ["tfopt_pipeline", "tfopt_pipeline"]}, ValueError, "`candidates` must have distinct names"),
        ({"compile_kwargs": ["adam"]}, TypeError, "`compile_kwargs` must be a dict or None"),
    ],
)
def test_rejects_bad_arguments(kwargs, error, message):
    x, y = tiny_data()
    arguments = {"model_fn": tiny_model, "x": x, "y": y, **kwargs}
    with pytest.raises(error, match=re.escape(message)):
        profile_fit(arguments.pop("model_fn"), arguments.pop("x"), arguments.pop("y"), **arguments)


def test_rejects_an_uncompiled_model_without_compile_kwargs():
    x, y = tiny_data()

    def uncompiled():
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])

    with pytest.raises(
        ValueError, match=r"`model_fn` must return a compiled model \(with a loss\), or `compile_kwargs`"
    ):
        profile_fit(uncompiled, x, y, steps=1, rounds=3)


def test_uncompiled_model_with_compile_kwargs_is_profiled():
    x, y = tiny_data(64)

    def uncompiled():
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])

    result = profile_fit(
        uncompiled,
        x,
        y,
        candidates=["steps_per_execution_8"],
        steps=2,
        rounds=3,
        warmup=0,
        input_diagnosis=False,
        compile_kwargs={"optimizer": "adam", "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
    )
    assert [r["name"] for r in result.rows] == ["defaults", "steps_per_execution_8"]
    assert result.rows[0]["loss"] > 0


def test_mixed_float16_asked_for_on_cpu_is_refused():
    from tfopt.acceleration import detect_hardware

    if detect_hardware().device != "cpu":
        pytest.fail("this test expects a CPU-only machine; on a GPU mixed_float16 is allowed")
    x, y = tiny_data()
    with pytest.raises(ValueError, match=r"`candidates` asks for mixed_float16 \(candidate 'mixed_float16'\), which"):
        profile_fit(tiny_model, x, y, candidates=["mixed_float16"])
