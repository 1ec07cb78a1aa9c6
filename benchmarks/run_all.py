"""`make bench`: runs every benchmark script, then collects their tables into benchmarks/RESULTS.md and README.md.

A benchmark is any `benchmarks/*.py` (besides this file and the harness) with a `main()` that writes its results
through `harness.write_results`. The README's table sits between the BENCHMARKS markers and is only ever written
here, from the JSON/markdown the scripts produced.
"""

import glob
import importlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.harness import RESULTS_DIR  # noqa: E402

START, END = "<!-- BENCHMARKS:START -->", "<!-- BENCHMARKS:END -->"
README = os.path.join(ROOT, "README.md")


def scripts():
    for path in sorted(glob.glob(os.path.join(ROOT, "benchmarks", "*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if name not in ("harness", "run_all", "__init__"):
            yield name


def collect(names, results_dir=RESULTS_DIR):
    """The markdown tables of the named benchmarks (a script may write several, `<name>*.md`)."""
    tables = []
    for name in names:
        for path in sorted(glob.glob(os.path.join(results_dir, f"{name}*.md"))):
            with open(path) as f:
                tables.append(f.read().strip())
    return "\n\n".join(tables)


def update_readme(tables, readme=README):
    with open(readme) as f:
        text = f.read()
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"README.md needs the markers {START} and {END} around the benchmark table")
    with open(readme, "w") as f:
        f.write(f"{head}{START}\n{tables}\n{END}{tail}")


def main(names=None):
    """Runs the named benchmark scripts (all when none are named), then rewrites RESULTS.md and the README table.

    `--collect-only` runs nothing and only rewrites them from the results already written.
    """
    names = list(names or [])
    if names != ["--collect-only"]:
        for name in names or list(scripts()):
            print(f"== benchmarks/{name}.py", flush=True)
            print(importlib.import_module(f"benchmarks.{name}").main(), flush=True)
    # The tables of every existing script, also those not re-run now; results of removed scripts drop out.
    tables = collect(scripts())
    with open(os.path.join(ROOT, "benchmarks", "RESULTS.md"), "w") as f:
        f.write("# tfopt benchmarks\n\nWritten by `make bench` (benchmarks/run_all.py); do not edit by hand.\n\n")
        f.write(tables + "\n")
    update_readme(tables)


if __name__ == "__main__":
    main(sys.argv[1:])
