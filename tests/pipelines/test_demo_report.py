"""The demo's report writer: report.json holds the settings and every row as given, report.md the table and the
baseline bar, and the picture is written beside them."""

import json

import keras
import pytest

from tfopt.pipelines.demo_report import write_demo_report

ROWS = [
    {"stage": "baseline", "accuracy": 0.9722, "params": 11_000, "nonzero_params": 11_000, "flops": 90_000,
     "size_bytes": 60_000, "gzip_bytes": 50_000, "latency_ms": 0.81, "train_seconds": 12.3, "epochs_to_baseline": 20},
    {"stage": "pruned", "accuracy": 0.9667, "params": 11_000, "nonzero_params": 2_200, "flops": 90_000,
     "size_bytes": 60_000, "gzip_bytes": 20_000, "latency_ms": 0.80, "train_seconds": 4.5, "epochs_to_baseline": None},
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    write_demo_report(ROWS, str(out), epochs=20, seed=3, baseline_val_accuracy=0.975)
    return out


def test_json_holds_the_settings_and_every_row_unchanged(report):
    data = json.loads((report / "report.json").read_text())
    assert data["stages"] == ROWS
    assert data["meta"]["epochs"] == 20 and data["meta"]["seed"] == 3
    assert data["meta"]["baseline_val_accuracy"] == 0.975
    assert data["meta"]["backend"] == keras.backend.backend() and data["meta"]["keras"] == keras.__version__


def test_markdown_has_one_line_per_stage_and_the_baseline_bar(report):
    text = (report / "report.md").read_text()
    assert text.startswith("# tfopt demo report\n")
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(ROWS)  # the header and one row per stage
    assert "| baseline | 97.22% | 11,000 |" in table[1] and "| pruned | 96.67% |" in table[2]
    assert "(0.9750)" in text


def test_the_picture_is_a_png(report):
    assert (report / "accuracy_vs_size.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
