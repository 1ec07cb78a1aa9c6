"""The report table shared by `tfopt demo`, `tfopt compress` and `tfopt tune`: one row per model, the columns of
`measure_model` plus the training figures, each cell formatted one way (markdown here, rich tables in the CLI)."""

# (row key, column title), in the order the tables show them.
REPORT_COLUMNS = (
    ("stage", "Stage"),
    ("accuracy", "Test acc."),
    ("params", "Params"),
    ("nonzero_params", "Non-zero"),
    ("flops", "MACs"),
    ("size_bytes", "Size"),
    ("gzip_bytes", "Gzip"),
    ("latency_ms", "Latency (ms)"),
    ("train_seconds", "Train (s)"),
    ("epochs_to_baseline", "Epochs to base"),
)


def format_cell(key, value):
    """The text of one cell: "-" for a missing value, accuracy in percent, sizes in KiB, counts with separators."""
    if value is None:
        return "-"
    if key == "accuracy":
        return f"{100 * value:.2f}%"
    if key in ("size_bytes", "gzip_bytes"):
        return f"{value / 1024:.1f} KiB"
    if key in ("params", "nonzero_params", "flops"):
        return f"{value:,}"
    if key == "latency_ms":
        return f"{value:.3f}"
    if key == "train_seconds":
        return f"{value:.1f}"
    return str(value)


def markdown_table(rows, columns=REPORT_COLUMNS):
    """`rows` (dicts keyed by the column keys) as a markdown table of `columns`."""
    lines = [
        "| " + " | ".join(title for _, title in columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(format_cell(key, row.get(key)) for key, _ in columns) + " |")
    return "\n".join(lines)
