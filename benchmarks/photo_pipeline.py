"""Phone photos through an image folder's pipeline: full decode vs libjpeg's DCT scaling.

A folder of 12-megapixel JPEGs (4000 x 3000, as phones write them) is what users bring
for faces. `kgan.data` decodes a JPEG far above the training resolution at 1/2-1/8
scale (never below twice the resolution); this times one pass of the same scan's
pipeline both ways, in one process, and reports images/s and the ratio. The photos
are made here (smooth gradients with detail, quality 92), nothing is downloaded.

Run:
    python benchmarks/photo_pipeline.py --photos 48 --resolution 64 --json out.json

Expect the DCT-scaled pass to be several times faster on 2 CPU cores; the mean pixel
difference between the two is printed too (a few grey levels at most).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time

import numpy as np
from PIL import Image

from kgan.data import folder
from kgan.data.options import DataOptions


def write_photos(root: str, count: int, size=(4000, 3000)) -> None:
    width, height = size
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    for index in range(count):
        phase = index / count * 6.28
        image = np.stack([columns / width * 255, rows / height * 255,
                          127 + 100 * np.sin(columns / 50.0 + phase) * np.cos(rows / 70.0)], -1)
        Image.fromarray(image.astype(np.uint8)).save(
            os.path.join(root, f"IMG_{index:04d}.JPG"), quality=92)


def one_pass(report: folder.FolderReport, options: DataOptions) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    batches = [batch for batch in folder._dataset(report, options).as_numpy_iterator()]
    return time.perf_counter() - start, np.concatenate(batches)


def measure(photos: int, resolution: int, repeats: int, size=(4000, 3000)) -> dict:
    """Times one pass of the folder pipeline both ways (alternating, so both see the
    same machine); returns the result row."""
    with tempfile.TemporaryDirectory() as root:
        write_photos(root, photos, size)
        scan_start = time.perf_counter()
        report = folder.scan_image_folder(root)
        scan_seconds = time.perf_counter() - scan_start
        options = DataOptions(resolution=resolution, channels=3, batch_size=16,
                              shuffle=False, drop_remainder=False)
        ways = {"full decode": dataclasses.replace(report, jpeg_sides=(0,) * len(report.files)),
                "DCT scaled": report}
        seconds = {name: [] for name in ways}
        images = {}
        for _ in range(repeats):
            for name, variant in ways.items():
                took, images[name] = one_pass(variant, options)
                seconds[name].append(took)
    rates = {name: photos / min(times) for name, times in seconds.items()}
    return {
        "photos": photos, "size": list(size), "resolution": resolution,
        "scan_seconds": round(scan_seconds, 2), "cpu_count": os.cpu_count(),
        "images_per_second": {k: round(v, 1) for k, v in rates.items()},
        "speedup": round(rates["DCT scaled"] / rates["full decode"], 2),
        "mean_abs_difference_grey_levels": round(float(
            np.abs(images["DCT scaled"] - images["full decode"]).mean() * 127.5), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=48)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="4 small photos, 16 px")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.quick:
        result = measure(4, 16, 1, size=(640, 480))
    else:
        result = measure(args.photos, args.resolution, args.repeats)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)


if __name__ == "__main__":
    main()
