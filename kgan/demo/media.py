"""Images to files: PNG, grids, latent interpolation and GIF/MP4 encoding (NumPy, Pillow, imageio).

Shared by the demo page and `kgan-generate`, so a downloaded PNG, a grid and an
animation are the same bytes whichever of the two made them. Nothing here imports
TensorFlow; imageio loads only when an animation is written.
"""

from __future__ import annotations

import io
import os

import numpy as np

from kgan.images import tile_grid

#: Frames of one interpolation: the export's batch limit (one request per animation).
MAX_FRAMES = 64


def png_bytes(image: np.ndarray) -> bytes:
    """Encodes one uint8 image [H, W, C] (C = 1, 3 or 4) as PNG."""
    from PIL import Image

    image = np.asarray(image, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, "PNG")
    return buffer.getvalue()


def grid(images: np.ndarray, columns: int | None = None, padding: int = 1) -> np.ndarray:
    """Tiles uint8 images [N, H, W, C] into one image (square by default, black padding)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"expected uint8 images [N, H, W, C], got {images.dtype} "
                         f"{list(images.shape)}")
    return tile_grid(images, columns, padding)


def upscale(images: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement of [..., H, W, C] by an integer factor (pixels stay sharp)."""
    if factor < 1:
        raise ValueError(f"scale must be a whole number >= 1, got {factor}")
    if factor == 1:
        return images
    return np.repeat(np.repeat(images, factor, axis=-3), factor, axis=-2)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latents a and b [D] at fractions t [F] -> [F, D].

    Gaussian latents concentrate near a sphere; a straight line between two of them
    passes through the low-norm middle the generator never saw in training, so the
    middle frames fade. Walking the great circle keeps the norm (White 2016, "Sampling
    Generative Networks"). Nearly parallel vectors fall back to the straight line.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.asarray(t, np.float64)[:, None]
    cosine = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cosine, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return ((1 - t) * a + t * b).astype(np.float32)
    mixed = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    return mixed.astype(np.float32)


def interpolation_latents(z_a: np.ndarray, z_b: np.ndarray, frames: int) -> np.ndarray:
    """`frames` latents from z_a to z_b inclusive, along the great circle."""
    if not 2 <= frames <= MAX_FRAMES:
        raise ValueError(f"frames must be a whole number from 2 to {MAX_FRAMES}, got {frames}")
    return slerp(z_a, z_b, np.linspace(0.0, 1.0, frames))


def bounce(frames: np.ndarray) -> np.ndarray:
    """Appends the way back (without repeating the ends), so a looping animation has no jump."""
    return np.concatenate([frames, frames[-2:0:-1]]) if len(frames) > 2 else frames


def _video_frames(frames: np.ndarray, rgb: bool) -> np.ndarray:
    frames = np.asarray(frames, np.uint8)
    if frames.ndim != 4:
        raise ValueError(f"expected frames [F, H, W, C], got {list(frames.shape)}")
    if frames.shape[-1] == 1:
        return np.repeat(frames, 3, axis=-1) if rgb else frames[..., 0]
    return frames


def gif_bytes(frames: np.ndarray, fps: float = 12.0) -> bytes:
    """Encodes uint8 frames [F, H, W, C] as a looping GIF.

    GIF stores frame times in hundredths of a second, and Pillow (imageio's GIF writer)
    merges consecutive identical frames into one longer frame: a still stretch of an
    interpolation plays for the same time but counts fewer frames.
    """
    try:
        import imageio.v3 as iio
    except ImportError:
        raise ImportError("GIF output needs imageio: pip install imageio (the demo extra, "
                          "pip install -e \".[demo]\", has it)") from None
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return iio.imwrite("<bytes>", _video_frames(frames, rgb=False), extension=".gif",
                       duration=1000.0 / fps, loop=0)


def write_gif(path: str | os.PathLike, frames: np.ndarray, fps: float = 12.0) -> str:
    """Writes `gif_bytes(frames, fps)` to `path`; returns the path."""
    data = gif_bytes(frames, fps)
    with open(path, "wb") as handle:
        handle.write(data)
    return os.fspath(path)


def write_mp4(path: str | os.PathLike, frames: np.ndarray, fps: float = 12.0) -> str:
    """Writes uint8 frames [F, H, W, C] as an H.264 MP4 (needs imageio-ffmpeg).

    Frames keep their exact size (no resizing to 16-pixel blocks), so width and height
    must be even, as H.264's 4:2:0 colour subsampling requires; `upscale` by 2 if not.
    """
    try:
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio's video writer runs)
    except ImportError:
        raise ImportError("MP4 output needs imageio-ffmpeg: pip install imageio-ffmpeg "
                          "(or write a GIF instead)") from None
    import imageio.v3 as iio

    frames = _video_frames(frames, rgb=True)
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"MP4 frames need an even width and height, got {width}x{height}; "
                         "pass --scale 2")
    iio.imwrite(path, frames, extension=".mp4", plugin="FFMPEG", fps=fps, codec="libx264",
                macro_block_size=1, quality=8)
    return os.fspath(path)
