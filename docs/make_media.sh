#!/usr/bin/env bash
# Regenerates the README's demo media from a trained export, in one command:
#   docs/demo_page.png       kgan-demo's page in headless Chromium (a 16-image grid)
#   docs/interpolation.gif   a latent interpolation between two seeds (kgan-generate)
#
# Usage: docs/make_media.sh [EXPORT_DIR/<model>]
# Without an argument it first trains the default digits demo (`python train.py`, about
# 1.5 minutes on 2 idle CPU cores; run again, it reuses it). Needs the dev extra and
# chromium + chromium-driver (apt-get install chromium chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2
export_dir="${1:-}"
if [ -z "$export_dir" ]; then
    python train.py --run-dir /tmp/demo_run --export-dir /tmp/demo_exports
    export_dir=/tmp/demo_exports/digits
fi
kgan-generate "$export_dir" --interpolate 3 13 --frames 32 --fps 16 --bounce --scale 8 \
    --gif docs/interpolation.gif
python benchmarks/demo_latency.py --export "$export_dir" --loads 0 \
    --screenshot docs/demo_page.png --screenshot-query "?seed=20&n=16"
