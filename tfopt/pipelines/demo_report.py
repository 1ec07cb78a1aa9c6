"""The demo's report: report.json, report.md and the accuracy-vs-size picture, from the rows `tfopt demo` measured."""

import json
import os

import keras

from tfopt.compression.report_table import markdown_table
from tfopt.pipelines.accuracy_size_plot import plot_accuracy_vs_size


def write_demo_report(rows, out_dir, *, epochs, seed, baseline_val_accuracy):
    """Writes the demo's report into `out_dir`: report.json (the run's settings and every row), report.md (the
    table with how each column was measured) and accuracy_vs_size.png.

    Args:
        rows: the report rows, one dict per stage (the columns of `tfopt.compression.report_table`), baseline first.
        out_dir: an existing folder.
        epochs, seed: the run's settings, recorded in the report.
        baseline_val_accuracy: the baseline's final validation accuracy, the bar of "epochs to baseline".
    """
    meta = {
        "epochs": epochs,
        "seed": seed,
        "baseline_val_accuracy": baseline_val_accuracy,
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "data": "scikit-learn load_digits, stratified split (seed 0)",
    }
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"meta": meta, "stages": rows}, f, indent=2)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write("# tfopt demo report\n\n")
        f.write(", ".join(f"{k}: {v}" for k, v in meta.items()) + "\n\n")
        f.write(markdown_table(rows) + "\n\n")
        f.write(
            "Sizes are of the `.keras` archive without optimizer state (gzip level 9 beside it); latency is the "
            "median batch-1 `predict_on_batch` call after warm-up; epochs to baseline is the first epoch whose "
            f"validation accuracy reached the baseline's final one ({baseline_val_accuracy:.4f}).\n"
        )
    plot_accuracy_vs_size(rows, os.path.join(out_dir, "accuracy_vs_size.png"))
