"""Multi-worker training with tfopt: one script from a laptop to a cluster.

The same script runs everywhere; `tfopt.strategies.get_strategy()` picks the strategy from the environment (TPU,
then a TF_CONFIG cluster, then several GPUs, then one device), and fixes Keras 3's `fit` under
MultiWorkerMirroredStrategy. `BackupAndRestore` lets a restarted cluster resume from the last finished epoch.

On one machine (one device, or all its GPUs):

    python examples/multi_worker.py --epochs 5

Two worker processes on this machine (loopback ports), to try multi-worker training without a cluster:

    python examples/multi_worker.py --epochs 5 --local-workers 2

On several machines (here two, host1 and host2, port 12345 open between them), start the same command on each
host with its own TF_CONFIG: the same `cluster`, its own `task.index`:

    # on host1
    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}' \
        python examples/multi_worker.py --epochs 5 --backup-dir /shared/backup
    # on host2
    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 1}}' \
        python examples/multi_worker.py --epochs 5 --backup-dir /shared/backup

Worker 0 is the chief: it prints the results and saves the model. If a worker dies, restart all of them with the
same command; training resumes from the last finished epoch. The batch size is global: each of the N replicas
computes on `--batch-size / N` examples per step, and the learning rate follows the linear scaling rule.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def launch_local_workers(count, argv):
    """Starts `count` copies of this script as the workers of a loopback cluster; returns the chief's exit code."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    cluster = {"worker": [f"localhost:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    processes = []
    for index in range(count):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        output = None if index == 0 else subprocess.DEVNULL
        processes.append(subprocess.Popen([sys.executable, __file__, *argv], env=env, stdout=output))
    try:
        codes = [p.wait(timeout=600) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
    return max(codes, key=abs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size (default: 64)")
    parser.add_argument("--backup-dir", default=None, help="BackupAndRestore folder (default: a temporary one)")
    parser.add_argument("--local-workers", type=int, default=0, help="start this many loopback workers")
    args = parser.parse_args()
    if args.local_workers:
        argv = [a for a in sys.argv[1:]]
        i = argv.index("--local-workers")
        del argv[i:i + 2]
        return launch_local_workers(args.local_workers, argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from tfopt.data import load_digits, make_dataset
    from tfopt.models.demo_cnn import build_demo_cnn
    from tfopt.strategies import describe_strategy, get_strategy, linear_scaling_rule, per_replica_batch_size

    strategy = get_strategy()
    description = describe_strategy(strategy)
    chief = description["task_index"] in (None, 0)
    if chief:
        print(description)
        print(f"per-replica batch: {per_replica_batch_size(args.batch_size, strategy)}")

    data = load_digits()
    train = make_dataset(*data.train, batch_size=args.batch_size, seed=0)
    steps = len(data.y_train) // args.batch_size
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = build_demo_cnn(data.input_shape, data.num_classes)
        learning_rate = linear_scaling_rule(1e-3, args.batch_size, base_batch_size=32, warmup_steps=steps)
        model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    backup_dir = args.backup_dir or os.path.join(tempfile.gettempdir(), f"tfopt-multi-worker-{os.getuid()}")
    # Each worker keeps its own backup (their weights are identical); a shared folder needs distinct names.
    backup = keras.callbacks.BackupAndRestore(os.path.join(backup_dir, f"task-{description['task_index'] or 0}"))
    model.fit(train, epochs=args.epochs, callbacks=[backup], verbose=2 if chief else 0)
    loss, accuracy = model.evaluate(*data.test, batch_size=256, verbose=0)
    if chief:
        print(f"test accuracy: {accuracy:.4f} (loss {loss:.4f}) on {description['replicas']} replica(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
