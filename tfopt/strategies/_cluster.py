"""TensorFlow-only helpers of the strategy factory: reading TF_CONFIG, and a watchdog so a cluster that never forms
ends the worker with a message instead of a silent hang."""

import json
import os
import subprocess
import sys

JOBS = ("chief", "worker", "ps", "evaluator")


def _error(key, expected, received):
    return ValueError(f"TF_CONFIG key `{key}` must be {expected}. Received: {key}={received!r}")


def read_tf_config(text=None):
    """The cluster in TF_CONFIG (the environment variable when `text` is None), checked.

    Returns None when TF_CONFIG is unset or empty, else a dict with `cluster` (job -> list of "host:port"),
    `task_type`, `task_index` and `num_workers` (chief and workers: the tasks that train).
    """
    text = os.environ.get("TF_CONFIG", "") if text is None else text
    if not text.strip():
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG must be a JSON object with keys `cluster` and `task`; it is not valid JSON "
                         f"({e}). Received: TF_CONFIG={text!r}") from None
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object with keys `cluster` and `task`. "
                         f"Received: TF_CONFIG={text!r}")
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise _error("cluster", 'an object of jobs, e.g. {"worker": ["host1:port", "host2:port"]}', cluster)
    for job, addresses in cluster.items():
        if job not in JOBS:
            allowed = ", ".join(repr(j) for j in JOBS)
            raise ValueError(f"TF_CONFIG key `cluster` must name jobs among {allowed}. Received: job {job!r}")
        if (
            not isinstance(addresses, list)
            or not addresses
            or not all(isinstance(a, str) and a.rpartition(":")[2].isdigit() and a.rpartition(":")[0]
                       for a in addresses)
        ):
            raise _error(f"cluster.{job}", 'a non-empty list of "host:port" addresses', addresses)
    task = config.get("task")
    if not isinstance(task, dict):
        raise _error("task", 'an object {"type": ..., "index": ...} naming this process', task)
    task_type = task.get("type")
    if task_type not in cluster:
        allowed = ", ".join(repr(j) for j in cluster)
        raise _error("task.type", f"a job of the cluster ({allowed})", task_type)
    index = task.get("index")
    size = len(cluster[task_type])
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < size:
        raise _error("task.index", f"an integer in [0, {size - 1}] (cluster.{task_type} has {size})", index)
    num_workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    return {"cluster": cluster, "task_type": task_type, "task_index": index, "num_workers": num_workers}


def peers(config):
    """(job, index, address) of every other training task of the cluster."""
    out = []
    for job in ("chief", "worker"):
        for i, address in enumerate(config["cluster"].get(job, [])):
            if (job, i) != (config["task_type"], config["task_index"]):
                out.append((job, i, address))
    return out


# The watchdog runs in its own small process: while TensorFlow waits for the cluster it holds the GIL in C++, so no
# Python thread of the worker could run. It ends itself when the worker closes its stdin (the cluster formed) or
# dies; after `timeout` seconds it probes the peers, says which never answered, and stops the worker.
_WATCHDOG = r"""
import os, select, signal, socket, sys
pid, timeout, me = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
peers = sys.argv[4:]
ready, _, _ = select.select([sys.stdin], [], [], timeout)
if ready:
    sys.exit(0)
def answers(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=1.0).close()
        return True
    except OSError:
        return False
silent = [p for p in peers if not answers(p.rpartition("=")[2])]
listed = ", ".join(p.replace("=", " at ") for p in silent) or "none (they answer, but did not join)"
sys.stderr.write(
    f"tfopt.strategies.get_strategy: the cluster in TF_CONFIG did not form within {timeout:g} s; this is {me}. "
    f"Not answering: {listed}. Start every task listed in TF_CONFIG (same cluster on each, its own task), check "
    f"the addresses and firewalls, or pass a larger connect_timeout. Stopping this worker.\n"
)
sys.stderr.flush()
os.kill(pid, signal.SIGKILL)
"""


class Watchdog:
    """Stops this process with a message naming the silent peers if the block it guards lasts over `timeout` s."""

    def __init__(self, config, timeout):
        self.config, self.timeout, self.process = config, timeout, None

    def __enter__(self):
        if self.timeout is None:
            return self
        me = f"{self.config['task_type']} {self.config['task_index']}"
        listed = [f"{job} {i}={address}" for job, i, address in peers(self.config)]
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(self.timeout), me, *listed],
            stdin=subprocess.PIPE,
        )
        return self

    def __exit__(self, *exc):
        if self.process is not None:
            self.process.stdin.close()
            self.process.wait()
        return False
