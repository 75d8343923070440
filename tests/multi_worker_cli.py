"""Runs several `train.py` workers of one MultiWorkerMirroredStrategy cluster on loopback.

Used by tests/test_multi_worker_cli.py inside `unshare -n` (a private network namespace:
TensorFlow's gRPC server listens on every interface, and the namespace keeps it off the
machine's real ones). Usage:

    unshare -n python multi_worker_cli.py SPEC.json

SPEC: {"cwd": folder, "workers": 2, "args": [train.py flags], "timeout": seconds,
"signals": {"<index>": ["SIGKILL", step]} (that worker sends itself the signal right
after that train step), "weights": folder (each worker saves its final weights and step
as worker<index>.npz there), "env": {extra environment variables}}.
Prints one JSON line: per worker {"index", "returncode", "stdout", "stderr"}.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# train.py's main with a callback that can signal this worker after a step and saves the
# worker's final weights (the other workers keep none: only the chief writes files).
WORKER = """
import os, signal, sys
import keras, numpy as np
from kgan.training import runner
from kgan.cli.train import main

name, _, at = os.environ.get("SELF_SIGNAL", "SIGKILL:0").partition(":")
signum, at_step, weights = getattr(signal, name), int(at), os.environ.get("WEIGHTS")

class Hook(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.step_counter.numpy()) == at_step:
            os.kill(os.getpid(), signum)

    def on_train_end(self, logs=None):
        if weights:
            np.savez(weights, *self.model.get_weights(),
                     step=int(self.model.step_counter.numpy()))

run = runner.run
runner.run = lambda config, restart=False: run(config, restart, callbacks=[Hook()])
sys.exit(main(sys.argv[1:]))
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_cluster(spec: dict) -> list[dict]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    count = spec.get("workers", 2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(count)]}
    processes = []
    for index in range(count):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        signal_at = spec.get("signals", {}).get(str(index), ["SIGKILL", 0])
        env = dict(os.environ, **spec.get("env", {}), TF_CONFIG=json.dumps(tf_config),
                   TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO,
                   SELF_SIGNAL=f"{signal_at[0]}:{signal_at[1]}")
        if spec.get("weights"):
            env["WEIGHTS"] = os.path.join(spec["weights"], f"worker{index}.npz")
        processes.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, *spec["args"]], cwd=spec["cwd"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for index, process in enumerate(processes):
        try:
            stdout, stderr = process.communicate(timeout=spec.get("timeout", 300))
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
            stderr += "\n(timed out)"
        results.append({"index": index, "returncode": process.returncode,
                        "stdout": stdout, "stderr": stderr})
    return results


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(json.dumps(run_cluster(json.load(handle))))
