"""Writes ada_reference.npz: stylegan2-ada-pytorch's AugmentPipe on fixed images, the
reference that tests/test_ada.py compares kgan.gan.ada with (PyTorch is no CI dependency).

    python tests/data/make_ada_reference.py PATH/TO/stylegan2-ada-pytorch

Every op runs with `debug_percentile=q` (the reference's own hook: each parameter is
its distribution's q-quantile-like value, every gate open) on 16x16 RGB and grey images
(32x32 for the image-space filter, which pads 21 pixels).
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
from training.augment import AugmentPipe  # noqa: E402

OPS = {
    "xflip": dict(xflip=1), "rotate90": dict(rotate90=1), "xint": dict(xint=1),
    "scale": dict(scale=1), "rotate": dict(rotate=1), "aniso": dict(aniso=1),
    "xfrac": dict(xfrac=1),
    "brightness": dict(brightness=1), "contrast": dict(contrast=1),
    "lumaflip": dict(lumaflip=1), "hue": dict(hue=1), "saturation": dict(saturation=1),
}
OPS["blit"] = {**OPS["xflip"], **OPS["rotate90"], **OPS["xint"]}
OPS["geom"] = {**OPS["scale"], **OPS["rotate"], **OPS["aniso"], **OPS["xfrac"]}
OPS["color"] = {k: 1 for k in ("brightness", "contrast", "lumaflip", "hue", "saturation")}
OPS["bgc"] = {k: 1 for case in OPS.values() for k in case}
# ADA's image-space filter pads 21 pixels by reflection: 32 px images
FILTER_OPS = {"filter": dict(imgfilter=1), "bgcf": {**OPS["bgc"], "imgfilter": 1}}
PERCENTILES = (0.1, 0.6, 0.93)


def main() -> None:
    rng = np.random.default_rng(0)
    # smooth content plus detail, in [-1, 1] as kgan's images
    y, x = np.mgrid[0:16, 0:16] / 15.0
    base = np.stack([np.sin(3 * x + 1), np.cos(2 * y), x * y * 2 - 1], axis=-1)
    rgb = np.clip(base * 0.7 + rng.normal(0, 0.2, base.shape), -1, 1).astype(np.float32)
    grey = rgb.mean(axis=-1, keepdims=True)
    y, x = np.mgrid[0:32, 0:32] / 31.0
    base = np.stack([np.sin(5 * x + 1), np.cos(4 * y), x * y * 2 - 1], axis=-1)
    rgb32 = np.clip(base * 0.7 + rng.normal(0, 0.2, base.shape), -1, 1).astype(np.float32)
    grey32 = rgb32.mean(axis=-1, keepdims=True)
    arrays = {"rgb": rgb, "grey": grey, "rgb32": rgb32, "grey32": grey32}
    cases = [(name, kwargs, ("rgb", "grey")) for name, kwargs in OPS.items()]
    cases += [(name, kwargs, ("rgb32", "grey32")) for name, kwargs in FILTER_OPS.items()]
    for name, kwargs, kinds in cases:
        pipe = AugmentPipe(**kwargs)
        for q in PERCENTILES:
            for kind, image in ((kind, arrays[kind]) for kind in kinds):
                batch = torch.from_numpy(image.transpose(2, 0, 1)[None].copy())
                out = pipe(batch, debug_percentile=q)[0].numpy().transpose(1, 2, 0)
                arrays[f"{name}/{q}/{kind}"] = out.astype(np.float32)
    path = Path(__file__).with_name("ada_reference.npz")
    np.savez_compressed(path, **arrays)
    print(f"{path}: {len(arrays)} arrays")


if __name__ == "__main__":
    main()
