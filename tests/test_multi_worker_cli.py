"""train.py on a two-worker cluster over loopback: TensorFlow's MultiWorkerMirroredStrategy,
and JAX's multi-process runtime (one SPMD program over both processes' devices).

Each cluster runs in a private network namespace (`unshare -n`): TensorFlow's gRPC server
and JAX's coordinator listen on every interface, and the namespace keeps them off the
machine's real ones. The workers share the run directory, as on machines with a shared
file system. Every test starts whole clusters (two processes each), so they are marked slow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.slow

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi_worker_cli.py")
STEPS = 5
FLAGS = ["--resolution", "8", "--base-filters", "4", "--latent-dim", "8", "--batch-size",
         "16", "--steps-per-epoch", str(STEPS), "--epochs", "2", "--checkpoint-every", "3",
         "--log-every-n-steps", "2", "--num-samples", "4", "--run-dir", "run",
         "--export-dir", "exp"]


def _namespaces_missing() -> str | None:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return "needs unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"],
                           capture_output=True, text=True)
    if probe.returncode:
        return f"cannot make a network namespace here: {probe.stderr.strip()}"
    return None


@pytest.fixture(autouse=True)
def _namespaces():
    reason = _namespaces_missing()
    if reason:
        pytest.skip(reason)


# JAX: each process has one CPU device, so the cluster's mesh has two.
JAX = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
       "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}


def cluster(tmp_path, signals=None, weights=False, env=None, args=FLAGS, workers=2
            ) -> list[dict]:
    """Runs the workers to their end; returns their exit codes and output."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    spec = {"cwd": str(tmp_path), "workers": workers, "args": args, "timeout": 400,
            "signals": signals or {}, "env": {"TMPDIR": str(scratch), **(env or {})},
            "weights": str(tmp_path) if weights else None}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(["unshare", "-n", sys.executable, DRIVER, str(tmp_path / "spec.json")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def last_line(worker: dict) -> str:
    assert "Traceback" not in worker["stderr"], worker["stderr"][-3000:]
    return worker["stderr"].strip().splitlines()[-1]


def killed_and_resumed(tmp_path, **options) -> set[str]:
    """Kills both workers after step 7, starts them again to the end, and checks that
    they resumed at step 6 and that the chief alone exported and wrote the result;
    returns the scratch folders the killed workers left behind."""
    killed = cluster(tmp_path, signals={"0": ["SIGKILL", 7], "1": ["SIGKILL", 7]}, **options)
    assert [w["returncode"] for w in killed] == [-9, -9], [w["stderr"][-2000:] for w in killed]
    left = set(os.listdir(tmp_path / "scratch"))
    resumed = cluster(tmp_path, weights=True, **options)
    assert [w["returncode"] for w in resumed] == [0, 0], [w["stderr"][-2000:] for w in resumed]
    chief, other = (w["stdout"] for w in resumed)
    assert "kgan: resuming at epoch 2, batch 1 (step 6)" in chief
    assert "kgan: worker 1 of 2: resuming at epoch 2, batch 1 (step 6)" in other
    assert "2 replica(s)" in chief
    if options:  # JAX: each process said where it joined
        assert re.search(r"kgan: joining JAX's cluster as process 1 of 2 \(coordinator "
                         r"127\.0\.0\.1:\d+\)", other), other
    assert "Worker 1 trained 2 epochs (10 steps); the chief (worker 0) writes run." in other
    # One export, one final model, one result, written by the chief only.
    assert os.listdir(tmp_path / "exp" / "digits") == ["1"]
    assert "export:      exp/digits/1" in chief and "export:" not in other
    assert json.loads((tmp_path / "run" / "result.json").read_text())["steps"] == 2 * STEPS
    return left


def test_killed_cluster_resumes_and_the_chief_exports_once(tmp_path):
    killed_and_resumed(tmp_path)
    # The other worker's saves went to a scratch folder, removed after each save.
    assert not [n for n in os.listdir(tmp_path / "scratch") if n.startswith("kgan-worker-")]
    reader = tf.train.load_checkpoint(str(tmp_path / "run" / "backup"))
    assert reader.get_tensor("step_counter/.ATTRIBUTES/VARIABLE_VALUE") == 2 * STEPS
    # All-reduced updates keep every worker's copy of each variable identical.
    first, second = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert int(first["step"]) == int(second["step"]) == 2 * STEPS
    arrays = [k for k in first.files if k.startswith("arr_")]
    assert len(arrays) > 10
    for key in arrays:
        np.testing.assert_array_equal(first[key], second[key])


def test_a_dead_worker_stops_the_chief_with_one_line(tmp_path):
    workers = cluster(tmp_path, signals={"1": ["SIGKILL", 7]})
    assert [w["returncode"] for w in workers] == [1, -9]
    line = last_line(workers[0])
    assert re.match(r"kgan-train: error: lost worker 1 \(127\.0\.0\.1:\d+\) \(.*\); the last "
                    r"checkpoint is run/backup/ckpt-6: start every worker again", line), line
    assert "heartbeat" in line or "unavailable" in line.lower(), line


def test_sigterm_on_one_worker_stops_both_at_the_same_step(tmp_path):
    workers = cluster(tmp_path, signals={"1": ["SIGTERM", 3]})
    assert [w["returncode"] for w in workers] == [143, 143]
    saved = "at step 4; saved run/backup/ckpt-4. Run the same command again to resume."
    assert last_line(workers[0]) == f"kgan-train: stopped by SIGTERM (on another worker) {saved}"
    assert last_line(workers[1]) == f"kgan-train: stopped by SIGTERM {saved}"
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "backup")).endswith("ckpt-4")


# ------------------------------------------------------------------ JAX
def test_jax_cluster_trains_as_one_process_with_both_devices(tmp_path):
    """Two JAX processes of one device each compute what one process computes on two
    devices (the same SPMD program), resume together after both are killed, and only
    the chief writes the run."""
    left = killed_and_resumed(tmp_path, env=JAX, args=[*FLAGS, "--backend", "jax"])
    assert json.loads((tmp_path / "run" / "result.json").read_text())["backend"] == "jax"
    # The other worker's sample grids, saves and final model went to scratch folders,
    # removed at its end.
    assert set(os.listdir(tmp_path / "scratch")) <= left
    assert (tmp_path / "run" / "samples" / "epoch_0002.png").is_file()
    first, second = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    # One process with two devices, never interrupted, on the same flags.
    single = tmp_path / "single"
    single.mkdir()
    alone = cluster(single, weights=True, workers=1, args=[*FLAGS, "--backend", "jax"],
                    env={**JAX, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert alone[0]["returncode"] == 0, alone[0]["stderr"][-2000:]
    assert "2 replica(s)" in alone[0]["stdout"]
    reference = np.load(single / "worker0.npz")
    assert int(first["step"]) == int(second["step"]) == int(reference["step"]) == 2 * STEPS
    arrays = [k for k in first.files if k.startswith("arr_")]
    assert len(arrays) > 10
    for key in arrays:
        np.testing.assert_array_equal(first[key], second[key])
        np.testing.assert_allclose(first[key], reference[key], rtol=1e-4, atol=1e-5)


def test_jax_sigterm_on_one_worker_stops_both_at_the_same_step(tmp_path):
    workers = cluster(tmp_path, signals={"1": ["SIGTERM", 3]}, env=JAX,
                      args=[*FLAGS, "--backend", "jax"])
    assert [w["returncode"] for w in workers] == [143, 143], [w["stderr"][-2000:] for w in workers]
    saved = "at step 4; saved run/backup/ckpt-4. Run the same command again to resume."
    assert last_line(workers[0]) == f"kgan-train: stopped by SIGTERM (on another worker) {saved}"
    assert last_line(workers[1]) == f"kgan-train: stopped by SIGTERM {saved}"
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "backup")).endswith("ckpt-4")


def test_jax_dead_worker_stops_the_chief_with_one_line(tmp_path):
    workers = cluster(tmp_path, signals={"1": ["SIGKILL", 7]}, env=JAX,
                      args=[*FLAGS, "--backend", "jax"])
    assert [w["returncode"] for w in workers] == [1, -9], workers[0]["stderr"][-2000:]
    line = last_line(workers[0])
    assert re.match(r"kgan-train: error: lost another process of this JAX cluster \(.*\); the "
                    r"last checkpoint is run/backup/ckpt-6: start every worker again", line), line
    # Left at once: not after JAX's heartbeat timeout, with its fatal-error dump.
    assert "Check failure stack trace" not in workers[0]["stderr"]
