"""Image ops and the batching tail shared by every source.

Each op is a pure function of one image tensor, so it runs the same eagerly and inside
`tf.data.Dataset.map` (tests check both). Sources decode to uint8 (or float in [0, 1])
HWC, then `preprocess_image` makes the float32 [-1, 1] image the GAN trains on.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE


def center_crop_square(image: tf.Tensor) -> tf.Tensor:
    """Crops the largest centred square, so resizing never distorts the aspect ratio.

    Odd margins drop the extra row/column at the bottom/right, like PIL's `ImageOps.fit`.
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    side = tf.minimum(height, width)
    top = (height - side) // 2
    left = (width - side) // 2
    return image[top : top + side, left : left + side, :]


def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Converts a float [0, 1] image with 1-4 channels to `channels` (1 or 3).

    Alpha is composited over white, the background most image viewers show, so a
    transparent sprite does not turn into black noise. RGB -> gray uses ITU-R 601 luma.
    """
    source = image.shape[-1]
    if source is None:
        raise ValueError("to_channels needs a static channel count; decode with channels set.")
    if source in (2, 4):
        colour, alpha = image[..., :-1], image[..., -1:]
        image = colour * alpha + (1.0 - alpha)
        source -= 1
    if source == channels:
        return image
    if source == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(image)
    if source == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(image)
    raise ValueError(f"Cannot convert a {source}-channel image to {channels} channels.")


def preprocess_image(
    image: tf.Tensor, resolution: int, channels: int, crop: bool = True
) -> tf.Tensor:
    """Maps a decoded HWC image (uint8 [0, 255] or float [0, 1]) to float32 [-1, 1].

    Policy: centre square crop (if `crop`), channel conversion, then a bilinear
    antialiased resize to `resolution` x `resolution` (antialiasing matters when
    shrinking large photos; upsampling small digits stays smooth).

    Args:
        image: [H, W, C] tensor, C in 1..4 and static.
        resolution: output side in pixels.
        channels: 1 or 3.
        crop: centre-crop to a square first; False squashes non-square inputs.

    Returns:
        float32 [resolution, resolution, channels] in [-1, 1].
    """
    if image.dtype.is_integer:
        image = tf.cast(image, tf.float32) / 255.0
    image = tf.cast(image, tf.float32)
    if crop:
        image = center_crop_square(image)
    image = to_channels(image, channels)
    image = tf.image.resize(image, [resolution, resolution], antialias=True)
    image = tf.clip_by_value(image, 0.0, 1.0)  # resize can overshoot slightly
    image.set_shape([resolution, resolution, channels])
    return image * 2.0 - 1.0


def finish(
    dataset: tf.data.Dataset,
    preprocess: Callable[..., tf.Tensor | tuple],
    *,
    batch_size: int,
    num_examples: int | None,
    shuffle: bool,
    seed: int,
    cache: bool | str,
    shuffle_buffer: int,
) -> tf.data.Dataset:
    """Seeded shuffle, parallel preprocess, optional cache, batch, prefetch.

    Without a cache the shuffle runs before decoding, on cheap elements (file names,
    encoded bytes, array rows), so the buffer never holds decoded images. With a cache,
    preprocessing runs once into the cache and the shuffle runs after it, so each epoch
    still gets a new order. Orders are a function of `seed` (a new order per epoch,
    reproducibly), and parallel maps stay deterministic: same seed, same batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if num_examples is not None and num_examples < batch_size:
        raise ValueError(
            f"Only {num_examples} examples for a global batch of {batch_size} with "
            "drop_remainder: no batch would be produced. Lower batch_size or add data."
        )
    buffer = min(shuffle_buffer, num_examples) if num_examples else shuffle_buffer

    def shuffled(ds: tf.data.Dataset) -> tf.data.Dataset:
        return ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True) if shuffle else ds

    if not cache:
        dataset = shuffled(dataset)
    dataset = dataset.map(preprocess, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        dataset = shuffled(dataset.cache("" if cache is True else str(cache)))
    dataset = dataset.batch(batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def check_geometry(resolution: int, channels: int) -> None:
    """Rejects impossible output sizes before any data is touched."""
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}.")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}.")


def to_rgba(image: tf.Tensor) -> tf.Tensor:
    """Expands a float image with a dynamic 1-4 channel count to static RGBA.

    Image folders mix grayscale, gray+alpha, RGB and RGBA files, and
    `tf.io.decode_image(channels=0)` leaves the channel count unknown at trace time;
    a fixed RGBA layout lets the rest of the pipeline be static.
    """

    def gray() -> tf.Tensor:
        return tf.concat([tf.tile(image[..., :1], [1, 1, 3]), tf.ones_like(image[..., :1])], -1)

    def gray_alpha() -> tf.Tensor:
        return tf.concat([tf.tile(image[..., :1], [1, 1, 3]), image[..., 1:2]], -1)

    def rgb() -> tf.Tensor:
        return tf.concat([image[..., :3], tf.ones_like(image[..., :1])], -1)

    def rgba() -> tf.Tensor:
        return image[..., :4]

    index = tf.clip_by_value(tf.shape(image)[-1] - 1, 0, 3)
    result = tf.switch_case(index, [gray, gray_alpha, rgb, rgba])
    return tf.ensure_shape(result, [None, None, 4])
