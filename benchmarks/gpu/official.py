"""What the two official-code timing scripts share: arguments, the JSON they write as they
go, PyTorch compatibility shims, the choice between the repos' CUDA extensions and their
reference ops, and the timed loop.

The scripts import PyTorch and the official sources only inside `main()`, so on a machine
without PyTorch (CI, a developer's CPU box) they still parse, compile and answer
`--help`, and a run writes a JSON that says why it was skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
import types
import warnings


def parser(description: str, repo: str, **defaults) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--repo", default=repo, help=f"the official source tree (default {repo})")
    p.add_argument("--out", help="write the JSON result here (rewritten as it goes)")
    p.add_argument("--impl", choices=("auto", "cuda", "ref"), default="auto",
                   help="custom ops: auto = build the repo's CUDA extensions with nvcc, "
                        "their reference ops if the build fails; cuda = fail instead; "
                        "ref = the reference ops without trying")
    p.add_argument("--build-only", action="store_true",
                   help="build (or load) the CUDA extensions and stop: run.sh starts this "
                        "in the background while the JAX part runs")
    p.add_argument("--warmup", type=int, default=defaults.get("warmup", 16),
                   help="untimed steps first (cuDNN autotuning)")
    p.add_argument("--steps", type=int, default=defaults.get("steps", 32),
                   help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=defaults.get("repeats", 3))
    p.add_argument("--budget-s", type=float, default=0.0,
                   help="start no new repeat after this many seconds (0: no limit)")
    p.add_argument("--device", default="cuda", help="torch device (cpu: a slow smoke run)")
    return p


class Result:
    """The result dict, written to --out whenever it changes (a killed run keeps it).
    The newest one made is `Result.current`, which `run` marks failed on an exception."""

    current: Result | None = None

    def __init__(self, benchmark: str, args):
        self.path = args.out
        self.start = time.perf_counter()
        self.data = {"benchmark": benchmark, "status": "started", "settings": {
            k: v for k, v in vars(args).items() if k != "out"},
            "python": platform.python_version()}
        Result.current = self
        self.write()

    def update(self, **values) -> None:
        self.data.update(values)
        self.data["elapsed_s"] = round(time.perf_counter() - self.start, 1)
        self.write()

    def write(self) -> None:
        if self.path:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            with open(self.path, "w") as handle:
                json.dump(self.data, handle, indent=2)
                handle.write("\n")

    def fail(self, status: str, why: str) -> int:
        self.update(status=status, why=why)
        print(f"{self.data['benchmark']}: {status}: {why}", flush=True)
        return 0 if status == "skipped" else 1


def run(main) -> int:
    """Runs a script's `main`, recording an exception in its JSON (status "failed", the
    traceback's end under "why") before it propagates, so that report.py's table names it
    instead of showing a half-written part."""
    try:
        return main()
    except Exception:
        if Result.current is not None:
            Result.current.update(status="failed", why=traceback.format_exc()[-3000:])
        raise


def import_torch(result: Result, repo: str):
    """PyTorch (None after recording why not) with the official tree on sys.path."""
    try:
        import torch
    except ImportError as error:
        result.fail("skipped", f"PyTorch is not installed here ({error})")
        return None
    if not os.path.isdir(repo):
        result.fail("skipped", f"no official source at {repo}: run benchmarks/gpu/prepare.sh "
                               "with the repository's mirror first")
        return None
    sys.path.insert(0, os.path.abspath(repo))
    shim_pkg_resources()
    result.update(torch=torch.__version__, cuda=torch.version.cuda,
                  gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None)
    return torch


def shim_pkg_resources() -> None:
    """R3GAN's torch_utils (StyleGAN3's) imports `pkg_resources.parse_version`; recent
    setuptools no longer ships pkg_resources. `packaging.version.parse` is the same."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        from packaging.version import parse

        sys.modules["pkg_resources"] = types.SimpleNamespace(parse_version=parse)


def choose_ops(result: Result, impl: str, bias_act, upfirdn2d, device: str) -> dict:
    """Builds (or loads) the repo's bias_act and upfirdn2d CUDA extensions, or makes their
    `_init` answer False so that every call takes the reference path (`impl='ref'`).
    Returns {op: "cuda" | "ref"} and records it with any build error."""
    used, errors = {}, {}
    for name, module in (("bias_act", bias_act), ("upfirdn2d", upfirdn2d)):
        if impl == "ref" or device != "cuda":
            module._init = lambda: False
            used[name] = "ref"
            continue
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ok = module._init()
            except Exception:  # noqa: BLE001 - recorded, then the reference ops
                ok = False
                errors[name] = traceback.format_exc()[-3000:]
        for warning in caught:
            if "Falling back" in str(warning.message) or "Failed" in str(warning.message):
                errors[name] = str(warning.message)[-3000:]
        used[name] = "cuda" if ok else "ref"
        result.update(**{f"{name}_setup_s": round(time.perf_counter() - start, 1)})
        if not ok:
            if impl == "cuda":
                raise RuntimeError(f"{name}: the CUDA extension did not build:\n{errors.get(name)}")
            module._init = lambda: False
    result.update(custom_ops=used, custom_op_errors=errors or None)
    print(f"custom ops: {used}" + (f" (build errors: {', '.join(errors)})" if errors else ""),
          flush=True)
    return used


def time_steps(result: Result, torch, step, args, batch_size: int, period: int = 1) -> None:
    """`args.warmup` untimed steps, then repeats of `args.steps` (rounded up to whole
    `period`s) timed between CUDA synchronisations; records images/s, s/kimg, ms/step."""
    steps = period * -(-args.steps // period)
    warmup = period * -(-args.warmup // period) if args.warmup else 0
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    index = 0
    start = time.perf_counter()
    for _ in range(warmup):
        step(index)
        index += 1
    sync()
    result.update(status="warm", warmup_steps=warmup,
                  warmup_s=round(time.perf_counter() - start, 1))
    seconds = []
    for _ in range(args.repeats):
        if args.budget_s and seconds and time.perf_counter() - result.start > args.budget_s:
            result.update(budget_note=f"stopped after {len(seconds)} repeats: budget spent")
            break
        begin = time.perf_counter()
        for _ in range(steps):
            step(index)
            index += 1
        sync()
        seconds.append(time.perf_counter() - begin)
        best = min(seconds)
        median = sorted(seconds)[len(seconds) // 2]
        images_per_s = batch_size * steps / median
        result.update(
            status="ok", steps=steps, batch_size=batch_size, seconds=seconds,
            ms_per_step=round(1e3 * median / steps, 3),
            best_ms_per_step=round(1e3 * best / steps, 3),
            images_per_s=round(images_per_s, 1), s_per_kimg=round(1e3 / images_per_s, 3),
            peak_gpu_mem_gb=(round(torch.cuda.max_memory_allocated() / 2**30, 2)
                             if args.device == "cuda" else None))
        print(f"  {steps} steps in {seconds[-1]:.2f} s: {result.data['images_per_s']} images/s, "
              f"{result.data['s_per_kimg']} s/kimg", flush=True)


def ema_update(torch, g_ema, g, beta: float) -> None:
    """Both repos' EMA step: parameters g_ema <- lerp(g, g_ema, beta), buffers copied."""
    with torch.no_grad():
        for p_ema, p in zip(g_ema.parameters(), g.parameters(), strict=True):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(g_ema.buffers(), g.buffers(), strict=True):
            b_ema.copy_(b)
