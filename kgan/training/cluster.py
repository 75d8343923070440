"""The cluster a run belongs to, from TF_CONFIG: one description for both backends, read
without TensorFlow (kgan-train decides who writes the run directory before it loads).

TF_CONFIG is `{"cluster": {"chief": [...], "worker": [...]}, "task": {"type", "index"}}`.
A process's rank is its place in the cluster, chief first: the chief (else worker 0) is
rank 0, the one that writes the run's files, saves checkpoints and, on JAX, hosts the
coordination service.
"""

from __future__ import annotations

import json
import os

__all__ = ["describe_task", "jax_cluster", "num_processes", "rank", "tf_config"]


def tf_config(environ=os.environ) -> dict:
    """TF_CONFIG as a dict with a "cluster" entry ({} when unset)."""
    try:
        config = json.loads(environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}.") from error
    if not isinstance(config, dict):
        raise ValueError(f"TF_CONFIG must be a JSON object, got {config!r}.")
    config.setdefault("cluster", {})
    return config


def _ordered(config: dict) -> list[str]:
    cluster = config.get("cluster") or {}
    return list(cluster.get("chief", [])) + list(cluster.get("worker", []))


def num_processes(config: dict) -> int:
    """The chief and workers of the cluster (0 without TF_CONFIG)."""
    return len(_ordered(config))


def rank(config: dict) -> int:
    """This process's place in the cluster, chief first (0 outside a cluster)."""
    cluster, task = config.get("cluster") or {}, config.get("task") or {}
    if num_processes(config) <= 1 or task.get("type") == "chief":
        return 0
    return int(task.get("index", 0)) + bool(cluster.get("chief"))


def jax_cluster(config: dict) -> dict | None:
    """`jax.distributed.initialize`'s arguments for a TF_CONFIG cluster (None without one):
    rank 0 hosts the coordination service at its address; the ranks follow `rank`."""
    ordered, task = _ordered(config), config.get("task") or {}
    if not ordered:
        return None
    if task.get("type") not in ("chief", "worker"):
        raise ValueError(f"TF_CONFIG's task must be a chief or a worker on JAX, got "
                         f"{task!r}: set \"task\": {{\"type\": \"worker\", \"index\": i}}")
    process = 0 if task["type"] == "chief" else rank(config)
    if not 0 <= process < len(ordered):
        raise ValueError(f"TF_CONFIG's task {task!r} is not in its cluster of "
                         f"{len(ordered)} processes")
    return {"coordinator_address": ordered[0], "num_processes": len(ordered),
            "process_id": process}


def describe_task(config: dict, job: str, index: int) -> str:
    """'worker 1 (10.0.0.2:2222)': a TF_CONFIG task by its role and address."""
    addresses = (config.get("cluster") or {}).get(job, [])
    address = f" ({addresses[index]})" if index < len(addresses) else ""
    return f"{job} {index}{address}"
