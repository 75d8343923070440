#!/usr/bin/env bash
# The GPU benchmark of issue 22 in one bounded command: kgan.GAN.fit on JAX (XLA) against
# the official PyTorch code of StyleGAN2-ADA and R3GAN, on the same GPU, in the same call.
#
#   bash benchmarks/gpu/run.sh             # on a lent GPU machine: about 8.5 minutes
#   bash benchmarks/gpu/run.sh --dry-run   # anywhere, on the CPU: tiny sizes, ~2 minutes
#                                          # (the official code too where PyTorch is)
#   bash benchmarks/gpu/run.sh --out DIR   # results there (default: $OUT if set, else
#                                          # benchmarks/results/gpu_<date>)
#
# Steps, each bounded (seconds, override with the variables named):
#   1. installs the carried wheels (.whl/: keras, namex, optree) into /tmp/site when Keras
#      is missing (the GPU machines have JAX and PyTorch but no Keras, no TensorFlow, no
#      package registry); kgan itself is imported from the repository (PYTHONPATH);
#   2. records the GPU (nvidia-smi) and library versions;
#   3. starts building the official repos' CUDA extensions (bias_act, upfirdn2d) with nvcc
#      in the background, so the build overlaps step 4 (BUILD_S, 300);
#   4. kgan.GAN.fit, mixed_bfloat16 then float32 (POLICIES), one process per part, each
#      under `timeout` and a soft budget (no new measurement in its last 60 s):
#      dcgan 64 px b64 + 128 px b256 with the hand-written reference step (KGAN_DCGAN_S,
#      100), the cifar10 preset = R3GAN 32 px b512 (KGAN_R3GAN_S, 100), the faces128
#      preset = StyleGAN2 128 px b32 (KGAN_STYLEGAN2_S, 160); after each row, a few more
#      steps under jax.profiler: the top XLA ops and kernel kinds go in the row, the
#      perfetto traces in profiles/ (benchmarks/xla_profile.py);
#   5. the official code: stylegan2-ada-pytorch --cfg auto 128 px b32 (OFFICIAL_STYLEGAN2_S,
#      80) and R3GAN's CIFAR-10 config (OFFICIAL_R3GAN_S, 60), from .gpu_carry/ (made by
#      benchmarks/gpu/prepare.sh), with their CUDA ops or, if the build failed, their
#      reference ops (recorded);
#   6. merges everything into gpu_benchmark.json (raw) and gpu_benchmark.md (tables),
#      beside run.log (all output).
# Every part writes its JSON as it goes, so a part cut short keeps what it measured, and
# the whole run stops starting parts once TOTAL_S (520) is near.
#
# On the device tool (64 MiB carried at most; .whl ~3 MB, .gpu_carry ~1 MB):
#   run(command="bash benchmarks/gpu/run.sh", carry=[".whl", ".gpu_carry"], timeout_s=600)

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
DRY=0
OUTDIR=${OUT:-}
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) [ $# -ge 2 ] || { echo "run.sh: --out needs a folder" >&2; exit 2; }; OUTDIR=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
[ -n "$OUTDIR" ] || OUTDIR="$ROOT/benchmarks/results/gpu_$STAMP"
mkdir -p "$OUTDIR" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d /tmp/kgan_gpu_bench.XXXXXX)
LOG="$OUTDIR/run.log"
START=$(date +%s)
TOTAL_S=${TOTAL_S:-520}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
exec > >(tee "$LOG") 2>&1

say() { echo "[run.sh $(( $(date +%s) - START ))s] $*"; }
# Seconds a part may take: its own budget, less what the whole run has left (10 s kept
# for the report); 0 when nothing is left.
budget() {
  local left=$(( TOTAL_S - ($(date +%s) - START) - 10 ))
  [ "$left" -lt "$1" ] && echo $(( left > 0 ? left : 0 )) || echo "$1"
}
part() {  # part NAME SECONDS command...: runs it under timeout unless no time is left
  local name=$1 seconds=$2; shift 2
  if [ "$seconds" -lt 15 ]; then say "$name: skipped, the run's time is spent"; return; fi
  say "$name: up to ${seconds}s: $*"
  timeout -k 10 "$seconds" "$@"
  local rc=$?
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && say "$name: stopped at its ${seconds}s limit"
  [ $rc -ne 0 ] && say "$name: exit status $rc"
  return 0
}

# 1. Keras and its pure-Python needs from the carried wheels, where Keras is missing.
# (Keras's default backend is TensorFlow, which is not there: ask with JAX's.)
if ! KERAS_BACKEND=jax $PY -c "import keras" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    say "installing $(ls .whl/*.whl | wc -l) carried wheels into /tmp/site"
    if $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl; then
      export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    else
      say "wheel install failed"
    fi
  else
    say "Keras is missing and no wheels were carried (.whl/): see benchmarks/gpu/prepare.sh"
  fi
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}

# 2. What it runs on.
SMI=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap,clocks.max.sm \
      --format=csv,noheader 2>/dev/null | head -1)
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)
DRY=$DRY SMI="$SMI" STAMP="$STAMP" $PY - > "$WORK/machine.json" <<'PY'
import importlib.metadata as md, json, os, platform
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
smi = os.environ["SMI"]
print(json.dumps({"gpu": smi.split(",")[0].strip() if smi else None, "nvidia_smi": smi or None,
                  "dry_run": os.environ["DRY"] == "1", "started": os.environ["STAMP"],
                  "python": platform.python_version(), "cpu_cores": os.cpu_count(),
                  **{n: version(n) for n in ("jax", "jaxlib", "keras", "torch", "numpy")}},
                 indent=2))
PY
say "machine: $(tr -d '\n' < "$WORK/machine.json")"
HAVE_TORCH=0
$PY -c "import torch" 2>/dev/null && HAVE_TORCH=1

# 3. The official repos' CUDA extensions, built in the background meanwhile.
BUILDS=()
if [ $DRY -eq 0 ] && [ $HAVE_TORCH -eq 1 ]; then
  export MAX_JOBS=${MAX_JOBS:-4}
  [ -n "$ARCH" ] && export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$ARCH}
  for name in stylegan2 r3gan; do
    script=benchmarks/gpu/${name}_official.py
    [ $name = stylegan2 ] && script=benchmarks/gpu/stylegan2_ada_official.py
    TORCH_EXTENSIONS_DIR=/tmp/torch_ext_$name timeout -k 5 "${BUILD_S:-300}" \
      $PY "$script" --build-only --out "$WORK/build_$name.json" > "$WORK/build_$name.log" 2>&1 &
    BUILDS+=($!)
  done
  say "building the official CUDA extensions in the background (arch ${ARCH:-?})"
fi

# 4. kgan.GAN.fit on JAX.
KGAN="$PY benchmarks/network_throughput_jax.py"
if [ $DRY -eq 1 ]; then
  export JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
  part kgan $(budget "${KGAN_S:-600}") $KGAN --quick \
    --configs "${KGAN_CONFIGS:-dcgan:8:4,preset:cifar10,preset:faces128}" \
    --policies "${POLICIES:-float32,mixed_bfloat16}" --profile "$WORK/profiles" \
    ${KGAN_ARGS:-} --out "$WORK/kgan_quick.json"
else
  POL=${POLICIES:-mixed_bfloat16,float32}  # the targets' policy first: a squeezed budget drops float32
  for spec in "dcgan:dcgan:64:64,dcgan:128:256:${KGAN_DCGAN_S:-100}" \
              "r3gan:preset:cifar10:${KGAN_R3GAN_S:-100}" \
              "stylegan2:preset:faces128:${KGAN_STYLEGAN2_S:-160}"; do
    name=${spec%%:*}; rest=${spec#*:}; configs=${rest%:*}; seconds=$(budget "${rest##*:}")
    part "kgan $name" "$seconds" $KGAN --configs "$configs" --policies "$POL" \
      --steps "${KGAN_STEPS:-32}" --warmup 2 --repeats "${KGAN_REPEATS:-3}" \
      --budget-s $(( seconds > 90 ? seconds - 60 : seconds / 3 )) \
      --profile "$OUTDIR/profiles" ${KGAN_ARGS:-} --out "$WORK/kgan_$name.json"
  done
fi

# 5. The official PyTorch code.
for pid in "${BUILDS[@]}"; do wait "$pid"; done
[ ${#BUILDS[@]} -gt 0 ] && say "builds: $(cat "$WORK"/build_*.json 2>/dev/null | tr -d '\n ' | head -c 600)"
# A dry run on a CPU with PyTorch runs them too: the reference ops, tiny sizes, FP32.
SMOKE_STYLEGAN2="--device cpu --impl ref --resolution 32 --batch 4 --fp16-res 0 \
  --channel-max 128 --augment-p 0.8 --warmup 0 --steps 16 --repeats 1"
SMOKE_R3GAN="--device cpu --impl ref --batch 8 --warmup 0 --steps 1 --repeats 1"
for name in stylegan2 r3gan; do
  script=benchmarks/gpu/${name}_official.py
  [ $name = stylegan2 ] && script=benchmarks/gpu/stylegan2_ada_official.py
  [ $name = stylegan2 ] && seconds=${OFFICIAL_STYLEGAN2_S:-80} || seconds=${OFFICIAL_R3GAN_S:-60}
  seconds=$(budget "$seconds")
  args="--impl ${OFFICIAL_IMPL:-auto} --budget-s $(( seconds * 2 / 3 ))"
  if [ $DRY -eq 1 ]; then
    [ $name = stylegan2 ] && args=$SMOKE_STYLEGAN2 || args=$SMOKE_R3GAN
  fi
  TORCH_EXTENSIONS_DIR=/tmp/torch_ext_$name part "official $name" "$seconds" \
    $PY "$script" $args --out "$WORK/official_$name.json"
done

# 6. One JSON, one table.
$PY benchmarks/gpu/report.py "$WORK" "$OUTDIR"
say "done: $OUTDIR/gpu_benchmark.json, gpu_benchmark.md, run.log"
