import pytest

from tfopt.compression.report_table import REPORT_COLUMNS, markdown_table


@pytest.mark.backend_agnostic
def test_markdown_table_formats_each_column_and_marks_missing_values():
    rows = [
        {"stage": "baseline", "accuracy": 0.98, "params": 1000, "nonzero_params": 1000, "flops": 25000,
         "size_bytes": 4096, "gzip_bytes": 3072, "latency_ms": 0.5, "train_seconds": 2.0, "epochs_to_baseline": 3},
        {"stage": "smaller", "accuracy": 0.97, "params": 1000, "nonzero_params": 200, "size_bytes": 4096,
         "gzip_bytes": 1024, "latency_ms": None, "train_seconds": 1.0, "epochs_to_baseline": None},
    ]
    table = markdown_table(rows)
    assert "| baseline | 98.00% | 1,000 | 1,000 | 25,000 | 4.0 KiB | 3.0 KiB | 0.500 | 2.0 | 3 |" in table
    assert "| smaller | 97.00% | 1,000 | 200 | - | 4.0 KiB | 1.0 KiB | - | 1.0 | - |" in table


@pytest.mark.backend_agnostic
def test_markdown_table_takes_a_subset_of_columns():
    columns = [c for c in REPORT_COLUMNS if c[0] in ("stage", "accuracy")]
    table = markdown_table([{"stage": "a", "accuracy": 0.5}], columns)
    assert table == "| Stage | Test acc. |\n|---|---|\n| a | 50.00% |"
