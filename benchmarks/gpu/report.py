"""Merges the parts `run.sh` wrote into one JSON and one Markdown table.

    python benchmarks/gpu/report.py WORKDIR OUTDIR

WORKDIR holds machine.json, kgan_<part>.json (network_throughput_jax.py) and
official_<name>.json (the official-code scripts); OUTDIR gets gpu_benchmark.json (all of
them, raw) and gpu_benchmark.md (the tables, also printed). Missing or half-written parts
are reported as such, so a run cut short still says what it measured.
"""

from __future__ import annotations

import glob
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import xla_profile  # noqa: E402

# (official part, kgan preset) pairs compared at the same network, batch and GPU.
PAIRS = (("stylegan2", "preset:faces128", "StyleGAN2 128 px, batch 32 (--cfg auto / faces128)"),
         ("r3gan", "preset:cifar10", "R3GAN CIFAR-10 32 px, batch 512 (CIFAR10 / cifar10)"))


def _load(path: str) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        return {"status": "unreadable", "why": f"{type(error).__name__}: {error}"}


def _cell(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(rows: list[dict], columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return lines


def merge(workdir: str) -> dict:
    merged = {"benchmark": "gpu_benchmark (benchmarks/gpu/run.sh)",
              "machine": _load(os.path.join(workdir, "machine.json")), "kgan": {},
              "official": {}}
    for path in sorted(glob.glob(os.path.join(workdir, "kgan_*.json"))):
        merged["kgan"][os.path.basename(path)[5:-5]] = _load(path)
    for path in sorted(glob.glob(os.path.join(workdir, "official_*.json"))):
        merged["official"][os.path.basename(path)[9:-5]] = _load(path)
    return merged


def markdown(merged: dict) -> str:
    machine = merged["machine"]
    lines = [f"# GPU benchmark: {machine.get('gpu') or 'no GPU'}"
             f"{' (dry run, tiny sizes)' if machine.get('dry_run') else ''}", "",
             f"nvidia-smi: {machine.get('nvidia_smi') or '-'}; JAX {machine.get('jax') or '-'}, "
             f"Keras {machine.get('keras') or '-'}, PyTorch {machine.get('torch') or '-'}; "
             f"started {machine.get('started') or '-'}.", ""]
    rows, notes = [], []
    for part, data in merged["kgan"].items():
        rows += data.get("rows", [])
        for skip in data.get("skipped", []):
            notes.append(f"kgan {skip['network']} {skip['policy']}: skipped, {skip['why']}")
        if not data.get("rows") and not data.get("skipped"):
            why = data.get("why", "cut short or failed: see run.log")
            notes.append(f"kgan part {part}: no rows ({why})")
    lines += ["## kgan.GAN.fit on JAX (XLA)", ""]
    lines += _table(rows, ["network", "resolution", "batch_size", "policy", "kgan_images_per_s",
                           "kgan_ms_per_step", "kgan_mfu", "kgan_mfu_convention",
                           "kgan_step_mfu", "step_gflops_per_image", "kgan_warmup_s",
                           "images_per_s", "kgan_ratio"])
    lines += ["", "kgan_mfu: 4G+9D model FLOPs (default recipe) or xla_step (a preset's whole "
              "step, lazy regularisation amortised); images_per_s / kgan_ratio: the "
              "hand-written reference step (dcgan, resnet).", ""]
    profiled = [r for r in rows if r.get("profile")]
    if profiled:
        lines += ["## Where kgan's step spends its time (jax.profiler)", ""]
        lines += [f"- {r['network']} {r.get('resolution')} px b{r.get('batch_size')} "
                  f"{r['policy']}: {xla_profile.headline(r['profile'])}" for r in profiled]
        lines += [""]
    lines += ["## Against the official PyTorch code, same GPU, same call", ""]
    compare = []
    for part, preset, title in PAIRS:
        official = merged["official"].get(part, {})
        ours = [r for r in rows if r.get("network") == preset]
        row = {"configuration": title,
               "official_images_per_s": official.get("images_per_s"),
               "official_s_per_kimg": official.get("s_per_kimg"),
               "official_ops": ",".join(f"{k}={v}" for k, v in
                                        (official.get("custom_ops") or {}).items()) or None,
               "official_status": official.get("status", "not run")}
        for r in ours:
            row[f"kgan_{r['policy']}_images_per_s"] = r.get("kgan_images_per_s")
        config = official.get("config") or {}
        same = [r for r in ours if (r.get("resolution"), r.get("batch_size"))
                == (config.get("resolution"), config.get("batch"))]
        best = max((r.get("kgan_images_per_s") or 0 for r in same), default=0)
        if best and official.get("images_per_s"):
            row["kgan_best_vs_official"] = round(best / official["images_per_s"], 3)
        elif ours and config and not same:
            notes.append(f"{part}: no ratio, the sizes differ (official "
                         f"{config.get('resolution')} px batch {config.get('batch')}, kgan "
                         f"{ours[0].get('resolution')} px batch {ours[0].get('batch_size')})")
        compare.append(row)
        if official.get("why"):
            notes.append(f"official {part}: {official['status']}: {official['why']}")
        if official.get("published"):
            pub = official["published"]
            notes.append(f"official {part}: published {pub['s_per_kimg']} s/kimg on one "
                         f"{pub['gpu']} ({pub['source']})")
    columns = ["configuration", "official_images_per_s", "official_s_per_kimg", "official_ops",
               "kgan_float32_images_per_s", "kgan_mixed_bfloat16_images_per_s",
               "kgan_best_vs_official", "official_status"]
    lines += _table(compare, columns)
    if notes:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    workdir, outdir = (argv or sys.argv[1:])[:2]
    merged = merge(workdir)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "gpu_benchmark.json"), "w") as handle:
        json.dump(merged, handle, indent=2)
        handle.write("\n")
    text = markdown(merged)
    with open(os.path.join(outdir, "gpu_benchmark.md"), "w") as handle:
        handle.write(text)
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
