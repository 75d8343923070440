"""The GPU benchmark of issue 22 (benchmarks/gpu/run.sh) on the CPU: its dry run times
kgan.GAN.fit on JAX for the cifar10 (R3GAN) and faces128 (StyleGAN2) presets at tiny sizes
in one process, with only the GPU image's packages (no TensorFlow, no TFDS); the
official-code scripts compile, answer without PyTorch, record a failure in their JSON,
and the report compares what the parts wrote (at equal sizes only).
The DCGAN and ResNet quick runs, beside the hand-written step, are in test_benchmarks.py.
"""

import argparse
import importlib.metadata
import json
import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benchmarks" / "gpu"
sys.path.insert(0, str(GPU))

import official  # noqa: E402
import report  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import xla_profile  # noqa: E402

# What kgan's JAX side may import there: the GPU image's distributions and the wheels
# prepare.sh carries.
CARRIED = ("keras", "namex", "optree")


def _gpu_image_site(tmp_path: Path) -> Path:
    """A folder of links to the installed distributions that the GPU image has too
    (image_packages.txt) or that run.sh carries: with `python -S` and this folder alone
    on PYTHONPATH, anything else (TensorFlow, TFDS, ...) is simply not installed."""
    lines = (GPU / "image_packages.txt").read_text().splitlines()
    allowed = {canonicalize_name(x) for x in lines if x and not x.startswith("#")} | set(CARRIED)
    site = tmp_path / "gpu_image_site"
    site.mkdir()
    for dist in importlib.metadata.distributions():
        if canonicalize_name(dist.metadata["Name"] or "") not in allowed:
            continue
        for top in {Path(str(f)).parts[0] for f in dist.files or ()}:
            source = Path(dist.locate_file(top))
            if top not in ("..", "__pycache__") and source.exists() and \
                    not (site / top).exists():
                (site / top).symlink_to(source)
    return site


def _env(tmp_path: Path, **extra) -> dict:
    """JAX on the CPU, fast XLA compiles, and only the GPU image's packages: the lent GPU
    machines have JAX and PyTorch, no TensorFlow."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHON=f"{sys.executable} -S",
               PYTHONPATH=str(_gpu_image_site(tmp_path)),
               XLA_FLAGS="--xla_backend_optimization_level=0 "
                         "--xla_llvm_disable_expensive_passes=true", **extra)
    for name in ("OUT", "KERAS_BACKEND", "PYTEST_XDIST_WORKER"):
        env.pop(name, None)
    return env


def test_the_gpu_image_stand_in_lacks_tensorflow_and_has_keras(tmp_path):
    env = _env(tmp_path)
    probe = ("import importlib.util as u; print(*(u.find_spec(n) is not None for n in "
             "('tensorflow', 'tensorflow_datasets', 'keras', 'jax', 'optree')))")
    done = subprocess.run([sys.executable, "-S", "-c", probe], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["False", "False", "True", "True", "True"], done.stderr
    assert all(f"{name}==" in (GPU / "prepare.sh").read_text() for name in CARRIED)


def _dry_run(tmp_path: Path, **extra) -> dict:
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(GPU / "run.sh"), "--dry-run", "--out", str(out)],
                          env=_env(tmp_path, **extra), capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == [
        "gpu_benchmark.json", "gpu_benchmark.md", "run.log"]
    return json.loads((out / "gpu_benchmark.json").read_text()), out


PRESETS = ["preset:cifar10",  # R3GAN: ~10 s of compiles; StyleGAN2's ~30 s more: -m slow
           pytest.param("preset:cifar10,preset:faces128", marks=pytest.mark.slow)]


@pytest.fixture(scope="module", params=PRESETS)
def dry_run(tmp_path_factory, request):
    # One process, float32, one repeat, no step-FLOP lowerings.
    return _dry_run(tmp_path_factory.mktemp("gpu"), KGAN_CONFIGS=request.param,
                    POLICIES="float32", KGAN_ARGS="--no-step-flops --repeats 1")


def test_dry_run_times_the_presets_with_their_recipes_without_tensorflow(dry_run):
    merged, out = dry_run
    (kgan,) = merged["kgan"].values()
    assert "tensorflow" not in kgan["machine"] and kgan["machine"]["backend"] == "jax"
    rows = {row["network"]: row for row in kgan["rows"]}
    assert "preset:cifar10" in rows and set(rows) <= {"preset:cifar10", "preset:faces128"}
    cifar = rows["preset:cifar10"]
    assert cifar["family"] == "r3gan"
    assert cifar["recipe"]["loss"] == "relativistic" and cifar["recipe"]["conditional"]
    assert cifar["recipe"]["r1_gamma"] > 0 and cifar["recipe"]["r2_gamma"] > 0
    assert cifar["recipe"]["ema_kimg"] and cifar["recipe"]["augment"] != "none"
    if "preset:faces128" in rows:
        faces = rows["preset:faces128"]
        assert faces["family"] == "stylegan2"
        assert faces["recipe"]["reg_interval"] == 16 and faces["recipe"]["pl_interval"] == 4
        assert faces["recipe"]["style_mixing"] == 0.9 and faces["recipe"]["pl_weight"] == 2.0
    for row in rows.values():
        assert row["kgan_images_per_s"] > 0 and row["model_gflops_per_image"] > 0
        assert row["kgan_mfu"] is None and row["kgan_mfu_convention"] == "xla_step"  # a CPU
        assert "images_per_s" not in row  # no hand-written reference for a preset
        # jax.profiler's summary of kgan's own step: XLA:CPU's ops here, kernels on a GPU
        profile = row["profile"]
        assert profile["device"] == "host" and profile["op_ms_per_step"] > 0
        assert "jit_train_step" in profile["by_module"]
        assert profile["top_ops"][0]["share"] >= profile["top_ops"][-1]["share"] > 0
        assert sum(k["share"] for k in profile["by_kind"].values()) == pytest.approx(1, abs=0.01)
    # Without PyTorch (or a GPU) the official parts say why, and the report shows both
    # presets' kgan figures in the comparison table.
    for name in ("stylegan2", "r3gan"):
        assert merged["official"][name]["status"] == "skipped", merged["official"][name]
    table = (out / "gpu_benchmark.md").read_text()
    assert "| StyleGAN2 128 px, batch 32" in table and "(dry run, tiny sizes)" in table
    assert "## Where kgan's step spends its time (jax.profiler)" in table
    assert "- preset:cifar10 8 px b4 float32: " in table and "top ops: " in table


def test_profile_summary_ranks_a_gpu_trace_s_kernels():
    """A trace as XLA writes it on a GPU: kernels on the device's process, named by their
    HLO op; the host's events (Python, the runtime) are left out."""
    events = [
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "/host:CPU"}},
        {"ph": "M", "name": "process_name", "pid": 7, "args": {"name": "/device:GPU:0"}},
        {"ph": "X", "pid": 1, "name": "PjitFunction(train_step)", "dur": 9000.0},
        {"ph": "X", "pid": 1, "name": "thunk", "dur": 5000.0,
         "args": {"hlo_op": "fusion.1", "hlo_module": "jit_train_step"}},
    ]
    kernels = [("sm90_xmma_fprop_implicit_gemm_bf16", "custom-call.3", 600.0),
               ("sm90_xmma_wgrad_bf16", "custom-call.4", 300.0),
               ("loop_multiply_fusion", "fusion.12", 50.0),
               ("input_reduce_fusion", "fusion.9", 30.0),
               ("loop_transpose_fusion", "fusion.2", 20.0)]
    for step in range(2):
        events += [{"ph": "X", "pid": 7, "name": name, "dur": us, "ts": step, "args": {
            "hlo_op": op, "hlo_module": "jit_train_step"}} for name, op, us in kernels]
    summary = xla_profile.summarise(events, steps=2, top=3)
    assert summary["device"] == "gpu" and summary["distinct_ops"] == 5
    assert summary["op_ms_per_step"] == pytest.approx(1.0)  # 1,000 us of kernels per step
    assert [(o["hlo_op"], o["kind"], o["share"]) for o in summary["top_ops"]] == [
        ("custom-call.3", "conv/matmul", 0.6), ("custom-call.4", "conv/matmul", 0.3),
        ("fusion.12", "fusion", 0.05)]
    assert {k: v["share"] for k, v in summary["by_kind"].items()} == {
        "conv/matmul": 0.9, "fusion": 0.05, "reduction": 0.03, "copy/transpose": 0.02}
    assert xla_profile.kind("loop_convert_fusion convert.7") == "fusion"  # not a conv
    assert xla_profile.kind("triton_gemm_dot_fusion fusion.3") == "conv/matmul"
    line = xla_profile.headline(summary)
    assert line.startswith("1.0 ms of ops per step; kinds: conv/matmul 90%, fusion 5%")
    assert "top ops: custom-call.3 (conv/matmul) 60%" in line


@pytest.mark.slow  # ~40 s of StyleGAN2 tracing and compiling
def test_step_flops_amortise_lazy_regularisation(tmp_path):
    # XLA's count of kgan's whole step: R1 every 16 D steps and path length every 4 G steps
    # add a sixteenth and a quarter of their extra FLOPs (tiny StyleGAN2, lowered only).
    script = """
import json, network_throughput_jax as b
args = b.parse_args(["--quick", "--configs", "preset:faces128"])
cfg = b.parse_configs(args.configs, quick=True)[0]
gan = b.preset_gan(cfg.train_config, "float32")
real, labels = b._images(cfg.resolution, cfg.batch_size, False)
b.KganFit(gan, "float32", real).run(1)
print(json.dumps(b.step_flops(gan, real)))
"""
    env = _env(tmp_path)
    env["PYTHONPATH"] += f":{ROOT / 'benchmarks'}:{ROOT}"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    flops = json.loads(done.stdout.strip().splitlines()[-1])
    assert flops["r1"] > flops["base"] and flops["pl"] > flops["base"]
    expected = (flops["base"] + (flops["r1"] - flops["base"]) / 16
                + (flops["pl"] - flops["base"]) / 4)
    assert flops["per_step"] == pytest.approx(expected)


@pytest.mark.parametrize("script", ["stylegan2_ada_official.py", "r3gan_official.py",
                                    "official.py", "report.py"])
def test_official_code_scripts_compile(script):
    py_compile.compile(str(GPU / script), doraise=True)


@pytest.mark.parametrize("script", ["stylegan2_ada_official.py", "r3gan_official.py"])
def test_official_code_scripts_say_why_they_cannot_run(tmp_path, script):
    # No PyTorch here (or PyTorch without CUDA): a JSON that says so, exit status 0.
    out = tmp_path / "official.json"
    done = subprocess.run([sys.executable, str(GPU / script), "--repo", str(tmp_path),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["status"] == "skipped" and result["why"]


def test_run_sh_refuses_unknown_arguments():
    done = subprocess.run(["bash", str(GPU / "run.sh"), "--bogus"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2 and "unknown argument '--bogus'" in done.stderr
    assert "--dry-run" in done.stderr  # the usage follows


def test_report_compares_kgan_with_the_official_code(tmp_path):
    (tmp_path / "machine.json").write_text(json.dumps({"gpu": "NVIDIA H100 80GB HBM3"}))
    rows = [{"network": "preset:faces128", "resolution": 128, "batch_size": 32, "policy": p,
             "kgan_images_per_s": v} for p, v in (("float32", 300.0), ("mixed_bfloat16", 500.0))]
    rows.append({"network": "preset:cifar10", "resolution": 32, "batch_size": 512,
                 "policy": "float32", "kgan_images_per_s": 9000.0})
    (tmp_path / "kgan_stylegan2.json").write_text(json.dumps({"rows": rows, "skipped": []}))
    (tmp_path / "official_stylegan2.json").write_text(json.dumps({
        "status": "ok", "images_per_s": 400.0, "s_per_kimg": 2.5,
        "config": {"resolution": 128, "batch": 32},
        "custom_ops": {"bias_act": "cuda", "upfirdn2d": "ref"}}))
    (tmp_path / "official_r3gan.json").write_text(json.dumps({  # a smoke-sized run
        "status": "ok", "images_per_s": 2.0, "config": {"resolution": 32, "batch": 8}}))
    (tmp_path / "kgan_r3gan.json").write_text("{truncated")  # a part killed mid-write
    assert report.main([str(tmp_path), str(tmp_path / "out")]) == 0
    merged = json.loads((tmp_path / "out" / "gpu_benchmark.json").read_text())
    assert merged["kgan"]["r3gan"]["status"] == "unreadable"
    table = (tmp_path / "out" / "gpu_benchmark.md").read_text()
    line = next(x for x in table.splitlines() if x.startswith("| StyleGAN2"))
    assert "| 400 | 2.5 | bias_act=cuda,upfirdn2d=ref | 300 | 500 | 1.25 | ok |" in line
    # Runs of different sizes are shown, never divided.
    line = next(x for x in table.splitlines() if x.startswith("| R3GAN"))
    assert "| 2 | - | - | 9000 | - | - | ok |" in line
    assert "r3gan: no ratio, the sizes differ (official 32 px batch 8, kgan 32 px batch 512)" \
        in table
    assert "NVIDIA H100" in table


def test_official_scripts_record_a_failure_in_their_json(tmp_path):
    """An exception inside a script (say, a PyTorch API the official code predates) lands
    in its JSON as status "failed" with the traceback, so the report names it."""
    out = tmp_path / "part.json"

    def main():
        official.Result("demo", argparse.Namespace(out=str(out)))
        raise ValueError("betas must be either both floats or both Tensors")

    with pytest.raises(ValueError):
        official.run(main)
    data = json.loads(out.read_text())
    assert data["status"] == "failed" and "both floats" in data["why"]
    assert report.markdown({"machine": {}, "kgan": {}, "official": {"r3gan": data}}).count(
        "official r3gan: failed: Traceback") == 1
