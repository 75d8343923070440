"""Helpers shared by the benchmark scripts: machine description, timing, output.

Every benchmark returns a plain dict (JSON-ready), prints a table with `print_table`
and writes the dict with `write_json` when given `--out`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (the machine may be shared), None if unknown."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# Dense peak TFLOP/s (no sparsity) by device-name fragment, first match wins, from the
# NVIDIA data sheets; float32 uses the TF32 tensor-core peak (TensorFlow and XLA enable
# TF32 for float32 convolutions and matmuls by default).
GPU_PEAK_TFLOPS = {
    "H100 PCIe": {"mixed_bfloat16": 756.0, "mixed_float16": 756.0, "float32": 378.0},
    "H200": {"mixed_bfloat16": 989.0, "mixed_float16": 989.0, "float32": 494.7},
    "H100": {"mixed_bfloat16": 989.0, "mixed_float16": 989.0, "float32": 494.7},
    "A100": {"mixed_bfloat16": 312.0, "mixed_float16": 312.0, "float32": 156.0},
}


def device_peak_tflops(device: str | None, policy: str) -> tuple[str, float | None]:
    """(device name, dense peak TFLOP/s for the policy, or None for a CPU or unknown GPU)."""
    if not device or device.lower() == "cpu":
        return cpu_model(), None
    for key, peaks in GPU_PEAK_TFLOPS.items():
        if key in device:
            return device, peaks[policy]
    return device, None


def gpu_names() -> list[str]:
    """Names of the GPUs the loaded backend sees (TensorFlow or JAX)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    import tensorflow as tf

    return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]


def machine() -> dict:
    """What the figures were measured on: CPU, cores, GPUs, library versions, load."""
    import keras

    versions = {"keras": keras.__version__, "backend": keras.backend.backend()}
    for name in ("tensorflow", "jax"):
        if name in sys.modules:
            versions[name] = sys.modules[name].__version__
    return {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "gpus": gpu_names(),
        **versions,
        "python": platform.python_version(),
        "load_average_at_start": load_average(),
    }


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of `fn`."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentiles_ms(seconds: Sequence[float]) -> dict:
    """p50 / p99 / mean of latencies given in seconds, in milliseconds."""
    ms = np.asarray(seconds, np.float64) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "calls": int(ms.size),
    }


def mean_sem(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    values = np.asarray(values, np.float64)
    sem = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else 0.0
    return float(values.mean()), float(sem)


def print_table(rows: Sequence[dict], columns: Sequence[str], title: str = "") -> str:
    """Prints rows as a Markdown table (missing cells as '-') and returns the text."""
    def cell(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = [f"\n{title}"] if title else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c)) for c in columns) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def write_json(result: dict, path: str | None) -> None:
    """Writes `result` as indented JSON to `path` (folders created); no-op for None."""
    if not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
