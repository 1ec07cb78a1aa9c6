"""The benchmark harness: ratios from interleaved rounds, and results written as JSON and markdown."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import harness, run_all  # noqa: E402
from tfopt import _timing  # noqa: E402

pytestmark = pytest.mark.backend_agnostic


def test_ratio_is_the_median_of_per_round_ratios(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(_timing.time, "perf_counter", lambda: now[0])
    costs = iter([1, 1] + [3, 1, 1, 2, 3, 1, 1, 2, 2, 1])  # warm-up, then rounds: (3,1), (2,1) by order

    def step():
        now[0] += next(costs)

    row = harness.compare("x", step, step, candidate_name="a", reference_name="b", repeats=5, warmup=1)
    # Round order alternates a,b / b,a, so the rounds pair up as (a, b) = (3,1), (2,1), (3,1), (2,1), (2,1).
    assert row["ratio"] == 2.0
    assert row["candidate_ms"] == 2000.0 and row["reference_ms"] == 1000.0
    assert row["ratio_iqr"] == pytest.approx(1.0)


def test_results_are_written_as_json_and_markdown(tmp_path):
    rows = [{"benchmark": "b", "candidate": "c", "reference": "r", "candidate_ms": 1.5, "reference_ms": 3.0,
             "ratio": 0.5, "ratio_iqr": 0.01}]
    text = harness.write_results("demo_bench", rows, title="A title", out_dir=str(tmp_path))
    saved = json.loads((tmp_path / "demo_bench.json").read_text())
    assert saved["rows"] == rows and saved["title"] == "A title" and saved["machine"]["cpus"] >= 1
    assert (tmp_path / "demo_bench.md").read_text() == text
    assert "| b | c | r | 1.500 | 3.000 | 0.500 | 0.010 |" in text


def test_readme_table_is_replaced_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run_all.START}\nold\n{run_all.END}\noutro\n")
    run_all.update_readme("new table", readme=str(readme))
    assert readme.read_text() == f"intro\n{run_all.START}\nnew table\n{run_all.END}\noutro\n"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="needs the markers"):
        run_all.update_readme("t", readme=str(readme))


def test_every_benchmark_script_is_found():
    assert "data_pipeline" in list(run_all.scripts())


def test_collect_takes_only_the_named_benchmarks(tmp_path):
    for name in ("alpha", "alpha_part2", "removed"):
        (tmp_path / f"{name}.md").write_text(f"table {name}\n")
    assert run_all.collect(["alpha"], results_dir=str(tmp_path)) == "table alpha\n\ntable alpha_part2"
