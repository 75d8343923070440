"""Where a jitted step spends its device time: `jax.profiler` around a callable, summed per
XLA op and per kind of kernel, so that one GPU call both times kgan and names its top
costs (issue 22: "profile it, name the top three costs").

    summary = profile(lambda: fit.run(16), steps=16, folder="profiles/faces128_bf16")

`folder` keeps the trace as `perfetto_trace.json.gz` (opens in ui.perfetto.dev); the
summary lists, per step, the costliest XLA ops (`hlo_op`, with the kernel that ran it) and
the time by kind: convolution and matrix kernels (cuDNN, cuBLAS, CUTLASS), XLA's own
fusions (elementwise and reductions), copies and transposes, collectives, other. Device
events are the GPU's kernels where the trace has a GPU; on a CPU (the smoke run) they are
XLA:CPU's thunks, which name ops the same way. Shares are of the summed op time, which
exceeds wall time where streams overlap.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import re
import shutil
import tempfile
from collections import defaultdict

# kernel name -> kind, first match wins
KINDS = (
    # "conv" but not "convert" (mixed precision's many dtype-conversion fusions)
    ("conv/matmul", re.compile(r"xmma|gemm|conv(?!ert)|cudnn|cutlass|wgrad|dgrad|fprop|"
                               r"cublas|ampere_|sm\d+_|dot", re.I)),
    ("collective", re.compile(r"nccl|all[-_]?reduce|all[-_]?gather|collective", re.I)),
    ("copy/transpose", re.compile(r"copy|transpose|memcpy|memset|bitcast", re.I)),
    ("reduction", re.compile(r"reduce|reduction", re.I)),
    ("fusion", re.compile(r"fusion|loop_|input_|elementwise", re.I)),
)

# control flow whose thunk holds its body's ops (XLA:CPU); no kernel of its own on a GPU
CONTAINERS = re.compile(r"(while|conditional|call)(\.\d+)?$")


def kind(name: str) -> str:
    return next((label for label, pattern in KINDS if pattern.search(name)), "other")


def summarise(events: list[dict], steps: int, top: int = 10) -> dict:
    """Per-step device milliseconds by XLA op and by kind from Chrome-trace events
    (`traceEvents` of a perfetto JSON): complete events ("X") carrying an `hlo_op`, on the
    GPU's processes where any exist."""
    names = {e["pid"]: e.get("args", {}).get("name", "") for e in events
             if e.get("ph") == "M" and e.get("name") == "process_name"}
    gpu = {pid for pid, name in names.items() if "GPU" in name or "/device:" in name}
    ops: dict[str, float] = defaultdict(float)
    kernel: dict[str, tuple[float, str]] = {}
    kinds: dict[str, float] = defaultdict(float)
    modules: dict[str, float] = defaultdict(float)
    for e in events:
        args = e.get("args") or {}
        if e.get("ph") != "X" or "hlo_op" not in args or (gpu and e.get("pid") not in gpu):
            continue
        if CONTAINERS.match(args["hlo_op"]):  # XLA:CPU times a loop's body inside it
            continue
        us = float(e.get("dur", 0.0))
        op = args["hlo_op"]
        ops[op] += us
        if us > kernel.get(op, (-1.0, ""))[0]:
            kernel[op] = (us, e.get("name", ""))
        kinds[kind(f"{e.get('name', '')} {op}")] += us
        modules[args.get("hlo_module", "?")] += us
    total = sum(ops.values())
    per_step = lambda us: round(us / 1e3 / steps, 4)  # noqa: E731
    share = lambda us: round(us / total, 4) if total else None  # noqa: E731
    ranked = sorted(ops.items(), key=lambda item: -item[1])[:top]
    return {
        "device": "gpu" if gpu else "host", "steps": steps,
        "op_ms_per_step": per_step(total), "distinct_ops": len(ops),
        "top_ops": [{"hlo_op": op, "kernel": kernel[op][1][:120], "kind":
                     kind(f"{kernel[op][1]} {op}"), "ms_per_step": per_step(us),
                     "share": share(us)} for op, us in ranked],
        "by_kind": {k: {"ms_per_step": per_step(us), "share": share(us)}
                    for k, us in sorted(kinds.items(), key=lambda item: -item[1])},
        "by_module": {m: per_step(us) for m, us in
                      sorted(modules.items(), key=lambda item: -item[1])[:5]},
    }


def headline(summary: dict, count: int = 3) -> str:
    """One line: the op time per step, then the `count` costliest kinds and ops."""
    if "error" in summary:
        return f"no profile ({summary['error']})"
    kinds = ", ".join(f"{k} {v['share']:.0%}" for k, v in
                      list(summary["by_kind"].items())[:count])
    ops = ", ".join(f"{o['hlo_op']} ({o['kind']}) {o['share']:.0%}" for o in
                    summary["top_ops"][:count])
    return f"{summary['op_ms_per_step']} ms of ops per step; kinds: {kinds}; top ops: {ops}"


def profile(run, steps: int, folder: str | None = None, top: int = 10) -> dict:
    """Calls `run()` (which runs `steps` steps and waits for them) under `jax.profiler`
    and returns `summarise`'s dict; keeps the perfetto trace in `folder` if given."""
    import jax

    scratch = tempfile.mkdtemp(prefix="kgan_profile_")
    try:
        with jax.profiler.trace(scratch, create_perfetto_trace=True):
            run()
        found = glob.glob(os.path.join(scratch, "**", "perfetto_trace.json.gz"),
                          recursive=True)
        if not found:
            return {"error": "jax.profiler wrote no perfetto_trace.json.gz"}
        with gzip.open(found[0]) as handle:
            trace = json.load(handle)
        summary = summarise(trace["traceEvents"] if isinstance(trace, dict) else trace,
                            steps, top)
        if folder:
            os.makedirs(folder, exist_ok=True)
            shutil.copy(found[0], os.path.join(folder, "perfetto_trace.json.gz"))
            summary["trace"] = os.path.join(folder, "perfetto_trace.json.gz")
        return summary
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
