"""SAM and CachedDistiller under MirroredStrategy over 2 logical CPUs (TensorFlow only, in a fresh Python)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.models.test_sharpness_aware_minimization import W0, X, Y

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("mirrored") / "result.json"
    run = subprocess.run([sys.executable, os.path.join(HERE, "mirrored_worker.py"), str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text())


def sam_reference(steps=2, rho=0.5, lr=0.1):
    """Each replica perturbs with its own half-batch gradient; the optimizer averages the sharp gradients."""
    w = W0.astype("float64")
    halves = [(X[:4].astype("float64"), Y[:4].astype("float64")), (X[4:].astype("float64"), Y[4:].astype("float64"))]

    def grad(w, x, y):
        return 2.0 * x.T @ (x @ w - y) / y.size

    for _ in range(steps):
        sharp = []
        for x, y in halves:
            g = grad(w, x, y)
            sharp.append(grad(w + rho * g / np.linalg.norm(g), x, y))
        w = w - lr * np.mean(sharp, axis=0)
    return w


def test_sam_replicas_perturb_with_their_own_gradients(result):
    assert result["sam"]["replicas"] == 2
    np.testing.assert_allclose(result["sam"]["weights"], sam_reference(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result["sam"]["losses"][0], np.mean((X @ W0 - Y) ** 2), rtol=1e-5)


def test_cached_distiller_trains_the_same_on_two_replicas_as_on_one(result):
    # Keras 3.15's Distiller sums its distillation term over replicas; tfopt's losses average it.
    for a, b in zip(result["distiller_mirrored"], result["distiller_one_device"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
