#!/usr/bin/env bash
# Prepares what benchmarks/gpu/run.sh carries to a GPU machine (both folders are
# git-ignored through .git/info/exclude; together ~4 MB of the device tool's 64 MiB):
#   .whl/        keras (pyproject's version), namex, optree: what kgan's JAX path needs
#                beyond the GPU image (JAX, numpy, h5py, ml-dtypes, rich, absl-py, ...);
#   .gpu_carry/  the official sources: NVlabs/stylegan2-ada-pytorch and brownvc/R3GAN.
#
#   bash benchmarks/gpu/prepare.sh STYLEGAN2_ADA_GIT_DIR R3GAN_GIT_DIR
#
# Each *_GIT_DIR is a clone or a bare mirror of that repository (a session's `fetch` tool
# gives /work/.mirror/NVlabs+stylegan2-ada-pytorch/repo and /work/.mirror/brownvc+R3GAN/repo).
set -eu
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
[ $# -eq 2 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
for path in /.whl/ /.gpu_carry/; do
  grep -qxF "$path" .git/info/exclude 2>/dev/null || echo "$path" >> .git/info/exclude
done
KERAS=$(python3 -c "import importlib.metadata as m; print(m.version('keras'))")
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d .whl "keras==$KERAS" namex==0.1.0 optree==0.20.0
export_tree() {  # export_tree GIT_DIR DEST PATHS...
  local git_dir=$1 dest=$2; shift 2
  rm -rf "$dest" && mkdir -p "$dest"
  git --git-dir="$git_dir" archive HEAD "$@" | tar -x -C "$dest"
  git --git-dir="$git_dir" rev-parse HEAD > "$dest/COMMIT"
}
export_tree "$1" .gpu_carry/stylegan2-ada-pytorch dnnlib torch_utils training train.py \
  legacy.py README.md LICENSE.txt
export_tree "$2" .gpu_carry/R3GAN R3GAN dnnlib torch_utils training train.py legacy.py README.md
du -sh .whl .gpu_carry
