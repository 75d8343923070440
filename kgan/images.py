"""NumPy image helpers shared by the TensorBoard callbacks, the export tests, the client and
the demo."""

from __future__ import annotations

import io
import math

import numpy as np


def to_uint8_numpy(images: np.ndarray) -> np.ndarray:
    """Maps images in [-1, 1] to uint8 pixels, rounding and clipping; NaN is black (a
    data set's broken image in the real grid, a diverged generator's samples).

    The NumPy twin of `kgan.serving.signatures.to_uint8`, which the export runs in its graph.
    """
    pixels = np.round((np.asarray(images, np.float32) + 1.0) * 127.5)
    return np.clip(np.nan_to_num(pixels, nan=0.0), 0, 255).astype(np.uint8)


def tile_grid(pixels: np.ndarray, columns: int | None = None, padding: int = 0) -> np.ndarray:
    """Tiles uint8 images [N, H, W, C] row-major into one uint8 image [rows*..., cols*..., C].

    The grid is `rows * (H + padding) + padding` by `columns * (W + padding) + padding`
    pixels with `rows = ceil(N / columns)`; padding and empty cells are black.

    Args:
        pixels: uint8 images.
        columns: images per row; default the smallest square that fits.
        padding: black pixels between and around the images.
    """
    pixels = np.asarray(pixels, np.uint8)
    count, height, width, channels = pixels.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.zeros(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        np.uint8,
    )
    for index, image in enumerate(pixels):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def decode_pngs(pngs: list[bytes]) -> np.ndarray:
    """uint8 images [N, H, W, C] from PNG files' bytes (lossless: `generate_png`'s decode
    to `generate`'s pixels); grey images keep a channel axis."""
    from PIL import Image

    images = [np.asarray(Image.open(io.BytesIO(png))) for png in pngs]
    return np.stack([image[..., None] if image.ndim == 2 else image for image in images])
