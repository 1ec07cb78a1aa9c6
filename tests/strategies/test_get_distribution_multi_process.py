"""get_distribution across 2 real processes on loopback (JAX backend, 4 virtual CPU devices each, joined by
keras.distribution.initialize with JAX's gloo CPU collectives) into one (2, 4) hybrid mesh: both processes end with
identical weights, equal to one process over 8 devices on the same global batches.

Marked `multiprocess` (`pytest -m multiprocess` runs them alone); not backend_agnostic: the processes run JAX
whatever this process's backend, so `make test` runs them once, in its TensorFlow pass. Every process has a
timeout and is killed on any failure."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.strategies import processes as worker_processes

pytestmark = pytest.mark.multiprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, "jax_worker.py")
TIMEOUT = 240


def start(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    for name in ("KERAS_BACKEND", "XLA_FLAGS", "JAX_PLATFORMS"):
        env.pop(name, None)  # the worker sets them before JAX starts
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(group, timeout=TIMEOUT):
    return worker_processes.finish(group, timeout)


def load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax_processes")
    port = worker_processes.free_ports(1)[0]
    processes = [start("process", out, i, port) for i in range(2)]
    results = finish(processes)
    results += finish([start("single", out)])  # after the pair: the 2 cores are not shared three ways
    for code, err in results:
        assert code == 0, err[-4000:]
    return [load(out / f"process-{i}.json") for i in range(2)], load(out / "single.json")


def test_the_two_processes_form_one_mesh_of_eight_devices(runs):
    (first, second), _ = runs
    assert [first["process_id"], second["process_id"]] == [0, 1]
    assert first["process_count"] == second["process_count"] == 2
    assert first["devices"] == second["devices"] == 8
    assert first["mesh"] == second["mesh"] == {"batch": 2, "model": 4}
    assert len(first["local_devices"]) == len(second["local_devices"]) == 4  # each holds its row of the mesh
    assert not set(first["local_devices"]) & set(second["local_devices"])


def test_the_weights_are_split_over_the_model_axis(runs):
    (first, second), single = runs
    expected = [[None, "model"], ["model"], ["model", None], [None], [None, "model"], ["model"]]
    assert first["axes"] == second["axes"] == single["axes"] == expected


def test_both_processes_end_with_identical_weights(runs):
    (first, second), _ = runs
    for a, b in zip(first["weights"], second["weights"]):
        np.testing.assert_array_equal(a, b)
    assert first["losses"] == second["losses"]


def test_two_processes_match_one_process_on_eight_devices(runs):
    (first, _), single = runs
    np.testing.assert_allclose(first["losses"], single["losses"], rtol=1e-5)
    assert len(first["weights"]) == len(single["weights"]) == 6
    for a, b in zip(first["weights"], single["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
