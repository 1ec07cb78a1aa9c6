"""Side-by-side ratio benchmarks: time two callables in one process and report the RATIO.

Absolute seconds on a shared machine mean little; a ratio of two things measured in the same process, in
interleaved rounds (A, B, B, A, ...), after warm-up, cancels most of the machine's drift. Each benchmark script
builds rows with `compare`, then `write_results` saves them as JSON and as a markdown table under
benchmarks/results/; `run_all.py` runs every script and collects the tables into README.md.
"""

import json
import os
import platform
import statistics
import time

from tfopt._timing import time_interleaved

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def compare(name, candidate, reference, *, candidate_name, reference_name, repeats=20, warmup=3):
    """Times `candidate()` and `reference()` interleaved and returns a result row.

    The ratio is the median over rounds of candidate/reference seconds within the same round, so drift that
    touches one round touches both sides of its ratio; `ratio_iqr` is the interquartile range of those per-round
    ratios. Below 1.0 the candidate is faster.
    """
    cand, ref = time_interleaved([candidate, reference], repeats=repeats, warmup=warmup)
    ratios = [c / r for c, r in zip(cand.samples, ref.samples)]
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else (min(ratios), None, max(ratios))
    return {
        "benchmark": name,
        "candidate": candidate_name,
        "reference": reference_name,
        "candidate_ms": cand.median * 1e3,
        "reference_ms": ref.median * 1e3,
        "ratio": statistics.median(ratios),
        "ratio_iqr": q3 - q1,
        "repeats": repeats,
    }


COLUMNS = (
    ("benchmark", "Benchmark"),
    ("candidate", "Candidate"),
    ("reference", "Reference"),
    ("candidate_ms", "Candidate (ms)"),
    ("reference_ms", "Reference (ms)"),
    ("ratio", "Ratio"),
    ("ratio_iqr", "Ratio IQR"),
)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(rows, columns=COLUMNS):
    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(key, "")) for key, _ in columns) + " |")
    return "\n".join(lines)


def machine():
    import keras

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "date": time.strftime("%Y-%m-%d"),
    }


def write_results(name, rows, *, title, notes="", columns=COLUMNS, out_dir=RESULTS_DIR, meta=None):
    """Writes `<name>.json` and `<name>.md` under `out_dir`; returns the markdown.

    `meta` describes where the rows were measured; by default this process's machine (`machine()`).
    """
    os.makedirs(out_dir, exist_ok=True)
    meta = meta or machine()
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump({"benchmark": name, "title": title, "machine": meta, "rows": rows}, f, indent=2)
    described = ", ".join(f"{k} {v}" for k, v in meta.items())
    notes = f"{notes} " if notes else ""
    text = f"### {title}\n\n{markdown_table(rows, columns)}\n\n{notes}Measured on: {described}.\n"
    with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
        f.write(text)
    return text
