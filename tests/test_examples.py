"""Every script in examples/ runs to the end and prints what it promises."""

import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))
# Small budgets so each example runs in seconds; every example takes --epochs.
ARGS = {"quickstart.py": ["--epochs", "3"], "multi_worker.py": ["--epochs", "1", "--local-workers", "2"]}
EXPECTED = {"quickstart.py": "test accuracy", "multi_worker.py": "test accuracy"}


def test_every_example_is_covered():
    assert sorted(os.path.basename(p) for p in EXAMPLES) == sorted(ARGS)


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_runs(path):
    name = os.path.basename(path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, path, *ARGS[name]], capture_output=True, text=True, timeout=600, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert EXPECTED[name] in result.stdout
