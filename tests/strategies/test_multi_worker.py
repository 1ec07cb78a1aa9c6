"""Real distributed training (TensorFlow only): MultiWorkerMirroredStrategy with two worker processes on loopback
ports (gRPC collectives), the fault test with BackupAndRestore, and the bounded wait for a cluster that never forms.

Marked `multiprocess`: `pytest -m multiprocess` runs them alone. Every process has a timeout and is killed on any
failure, so a broken cluster fails the test instead of hanging it.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.strategies import processes as worker_processes

pytestmark = pytest.mark.multiprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
WORKER = os.path.join(HERE, "worker.py")
TIMEOUT = 150


def free_ports(n):
    return ",".join(str(p) for p in worker_processes.free_ports(n))


def start(*args):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    env.pop("TF_CONFIG", None)
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(group, timeout=TIMEOUT):
    return worker_processes.finish(group, timeout)


def run_cluster(out, epochs, *extra):
    ports = free_ports(2)
    processes = [start("multi_worker", out, i, ports, epochs, *extra) for i in range(2)]
    return processes, finish(processes)


def load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_workers")
    reference = start("reference", out, 3)
    _, results = run_cluster(out, 3)
    for code, err in results + finish([reference]):
        assert code == 0, err[-4000:]
    return [load(out / f"worker-{i}.json") for i in range(2)], load(out / "reference.json")


def test_two_worker_processes_form_one_strategy(two_workers):
    workers, _ = two_workers
    for index, worker in enumerate(workers):
        description = worker["description"]
        assert description["kind"] == "multi_worker_mirrored"
        assert description["replicas"] == 2 and description["num_workers"] == 2
        assert description["task_type"] == "worker" and description["task_index"] == index


def test_both_workers_end_with_identical_weights(two_workers):
    (first, second), _ = two_workers
    for a, b in zip(first["weights"], second["weights"]):
        np.testing.assert_array_equal(a, b)
    assert first["losses"] == second["losses"]


def test_two_workers_match_one_process_with_the_same_global_batch(two_workers):
    (first, _), reference = two_workers
    np.testing.assert_allclose(first["losses"], reference["losses"], rtol=1e-5)
    assert first["losses"][-1] < first["losses"][0]
    for a, b in zip(first["weights"], reference["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def epoch_marks(out, kind, index):
    """(pid, epoch) of every `kind` ("begin" or "end") mark of worker `index`, in time order."""
    paths = sorted(glob.glob(os.path.join(out, f"{kind}-{index}-*")), key=os.path.getmtime)
    return [(int(p.rsplit("-", 1)[1]), int(p.rsplit("-", 2)[1])) for p in paths]


def test_killed_worker_resumes_with_backup_and_restore_losing_at_most_one_epoch(tmp_path):
    epochs, kill_after = 5, 2
    ports = free_ports(2)
    args = ("--backup", "--sleep", "1.0")
    processes = [start("multi_worker", tmp_path, i, ports, epochs, *args) for i in range(2)]
    try:
        deadline = time.monotonic() + TIMEOUT
        # Kill worker 1 (SIGKILL: a crash, no clean-up) once it has finished `kill_after` epochs, while it sleeps
        # at the start of the next one.
        while len(epoch_marks(tmp_path, "end", 1)) < kill_after:
            assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "training stalled"
            time.sleep(0.05)
        processes[1].send_signal(signal.SIGKILL)
        processes[1].wait()
        # Its peer cannot go on without it; the orchestrator (here, the test) restarts the whole cluster.
        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait()
    finally:
        finish(processes, timeout=1)
    done_before = {i: [e for _, e in epoch_marks(tmp_path, "end", i)] for i in range(2)}
    assert done_before[1] == list(range(kill_after))
    assert not os.path.exists(tmp_path / "worker-0.json")

    ports = free_ports(2)
    restarted = [start("multi_worker", tmp_path, i, ports, epochs, *args) for i in range(2)]
    for code, err in finish(restarted):
        assert code == 0, err[-4000:]
    first_pid = {i: epoch_marks(tmp_path, "begin", i)[0][0] for i in range(2)}
    for i in range(2):
        rerun = [e for pid, e in epoch_marks(tmp_path, "begin", i) if pid != first_pid[i]]
        # The restart starts at the epoch that was in progress: only that epoch is trained twice.
        assert rerun == list(range(kill_after, epochs)), rerun
    workers = [load(tmp_path / f"worker-{i}.json") for i in range(2)]
    for a, b in zip(workers[0]["weights"], workers[1]["weights"]):
        np.testing.assert_array_equal(a, b)


def test_a_cluster_that_never_forms_stops_the_worker_with_a_message(tmp_path):
    ports = free_ports(2)
    script = (
        "import json, os, sys\n"
        f"os.environ['TF_CONFIG'] = json.dumps({{'cluster': {{'worker': ['localhost:{ports.split(',')[0]}', "
        f"'localhost:{ports.split(',')[1]}']}}, 'task': {{'type': 'worker', 'index': 0}}}})\n"
        "from tfopt.strategies import get_strategy\n"
        "get_strategy(connect_timeout=3)\n"
        "print('formed')\n"
    )
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    start_time = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == -signal.SIGKILL
    assert "formed" not in result.stdout
    assert "the cluster in TF_CONFIG did not form within 3 s; this is worker 0" in result.stderr
    assert f"Not answering: worker 1 at localhost:{ports.split(',')[1]}" in result.stderr
    assert time.monotonic() - start_time < 60
