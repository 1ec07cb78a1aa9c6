"""Worker processes for the several-process tests: free loopback ports, and waiting for a group of processes with
one deadline, killing every one still running on a timeout or a failure (SIGKILL: TensorFlow catches SIGTERM)."""

import socket
import subprocess
import time


def free_ports(n):
    """`n` distinct loopback ports free right now (all held open together while they are picked)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def finish(processes, timeout):
    """`[(returncode, stderr)]` of `processes` once all ended, within `timeout` seconds in all; a process still
    running at the deadline is killed and its stderr starts with "timed out after ..."."""
    deadline = time.monotonic() + timeout
    outputs = []
    try:
        for p in processes:
            try:
                _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                err = f"timed out after {timeout} s\n{err}"
            outputs.append((p.returncode, err))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outputs
