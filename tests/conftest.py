"""Test configuration: the Keras backend comes from KERAS_BACKEND (TensorFlow when unset).

Tests marked `backend_agnostic` run on every backend; under any backend other than TensorFlow the others are
deselected (not skipped), so `KERAS_BACKEND=jax pytest` runs exactly the backend-agnostic suite.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BACKEND = os.environ["KERAS_BACKEND"]


def pytest_report_header(config):
    return f"KERAS_BACKEND={BACKEND}"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "multiprocess: starts several Python processes (multi-worker training); `-m multiprocess` runs them"
    )


def pytest_collection_modifyitems(config, items):
    if BACKEND == "tensorflow":
        return
    keep = [item for item in items if item.get_closest_marker("backend_agnostic")]
    drop = [item for item in items if not item.get_closest_marker("backend_agnostic")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
