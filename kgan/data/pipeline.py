"""Image ops and the batching tail shared by every source.

Each op is a pure function of one image tensor, so it runs the same eagerly and inside
`tf.data.Dataset.map` (tests check both). Sources decode to uint8 (or float in [0, 1])
HWC, then `preprocess_image` makes the float32 [-1, 1] image the GAN trains on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

if TYPE_CHECKING:
    from kgan.data.options import DataOptions

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
    options: DataOptions,
    *,
    num_examples: int | None,
) -> tf.data.Dataset:
    """Seeded shuffle, parallel preprocess, optional cache, batch, prefetch.

    Without a cache the shuffle runs before decoding, on cheap elements (file names,
    encoded bytes, array rows), so the buffer never holds decoded images. With a cache,
    preprocessing runs once into the cache and the shuffle runs after it, so each epoch
    still gets a new order. Orders are a function of `options.seed` (a new order per
    epoch, reproducibly), and parallel maps stay deterministic: same seed, same batches.
    """
    if options.drop_remainder and num_examples is not None and num_examples < options.batch_size:
        raise ValueError(
            f"Only {num_examples} examples for a global batch of {options.batch_size} with "
            "drop_remainder: no batch would be produced. Lower batch_size "
            "(kgan-train: --batch-size) to at most the number of examples, or add data."
        )
    buffer = options.shuffle_buffer
    if num_examples:
        buffer = min(buffer, num_examples)

    def shuffled(ds: tf.data.Dataset) -> tf.data.Dataset:
        if not options.shuffle:
            return ds
        return ds.shuffle(buffer, seed=options.seed,
                          reshuffle_each_iteration=options.reshuffle)

    if not options.cache:
        dataset = shuffled(dataset)
    dataset = dataset.map(preprocess, num_parallel_calls=AUTOTUNE, deterministic=True)
    if options.cache:
        dataset = shuffled(dataset.cache("" if options.cache is True else options.cache))
    if options.mirror:  # after the cache, so that each epoch draws its own flips
        dataset = mirrored(dataset, options)
    dataset = dataset.batch(options.batch_size, drop_remainder=options.drop_remainder,
                            num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def mirrored(dataset: tf.data.Dataset, options: DataOptions) -> tf.data.Dataset:
    """Each image ([H, W, C], alone or first of a tuple) flipped left-right with
    probability 1/2: one bit per element of a random stream seeded apart from the
    shuffle's (a function of `options.seed`, redrawn per iteration when `reshuffle`)."""
    seed = int(np.random.SeedSequence([options.seed, 1]).generate_state(1)[0] & 0x7FFFFFFF)
    bits = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=options.reshuffle)

    def flip(element, bit):
        image, rest = (element[0], element[1:]) if isinstance(element, tuple) else (element, ())
        image = tf.where(bit % 2 == 1, tf.reverse(image, axis=[1]), image)
        return (image, *rest) if rest else image

    return tf.data.Dataset.zip((dataset, bits)).map(flip, num_parallel_calls=AUTOTUNE,
                                                   deterministic=True)


# libjpeg's DCT scaling factors, by `jpeg_scale` index.
JPEG_RATIOS = (1, 2, 4, 8)


def jpeg_scale(side: int, resolution: int) -> int:
    """The index into `JPEG_RATIOS` of the largest DCT scaling that leaves a JPEG whose
    shorter side is `side` at least twice `resolution` (0: full size; also non-JPEGs,
    whose `side` is 0), so the antialiased resize still has pixels to average."""
    index = 0
    while index + 1 < len(JPEG_RATIOS) and side // JPEG_RATIOS[index + 1] >= 2 * resolution:
        index += 1
    return index


def decode_file(path: tf.Tensor, scale: tf.Tensor | int = 0) -> tf.Tensor:
    """Reads and decodes one image file to uint8 [H, W, C], C in 1..4 (first GIF frame);
    a JPEG with `scale` > 0 at 1 / JPEG_RATIOS[scale] of its size (`jpeg_scale`)."""
    contents = tf.io.read_file(path)

    def full() -> tf.Tensor:
        image = tf.io.decode_image(contents, channels=0, expand_animations=False)
        return tf.ensure_shape(image, [None, None, None])

    def scaled(ratio: int):
        return lambda: tf.ensure_shape(tf.io.decode_jpeg(contents, ratio=ratio),
                                       [None, None, None])

    if isinstance(scale, int) and scale == 0:
        return full()
    return tf.switch_case(scale, [full, *(scaled(r) for r in JPEG_RATIOS[1:])])


def orient(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """Applies an EXIF orientation (1-8) the way image viewers (and Pillow's
    `ImageOps.exif_transpose`) do, so a phone's portrait photo stands upright."""
    transposed = lambda: tf.transpose(image, [1, 0, 2])  # noqa: E731
    branches = [
        lambda: image,  # 1: as stored
        lambda: tf.reverse(image, [1]),  # 2: mirrored left-right
        lambda: tf.image.rot90(image, 2),  # 3: rotated 180
        lambda: tf.reverse(image, [0]),  # 4: mirrored top-bottom
        transposed,  # 5: mirrored along the main diagonal
        lambda: tf.image.rot90(image, 3),  # 6: stored 90 degrees counter-clockwise
        lambda: tf.image.rot90(transposed(), 2),  # 7: mirrored along the anti-diagonal
        lambda: tf.image.rot90(image, 1),  # 8: stored 90 degrees clockwise
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
    return tf.ensure_shape(tf.switch_case(index, branches), [None, None, None])


def decodable_files(paths: list[str]) -> set[int]:
    """Decodes all files in parallel inside tf.data; returns the indices that worked.

    `ignore_errors` drops failing elements without naming them, so each element carries
    its own index and the missing ones are the bad files.
    """
    if not paths:
        return set()
    dataset = tf.data.Dataset.from_tensor_slices((tf.range(len(paths)), paths))
    dataset = dataset.map(
        lambda i, p: (i, tf.shape(decode_file(p))[0]),
        num_parallel_calls=AUTOTUNE,
        deterministic=False,
    ).ignore_errors()
    return {int(i) for i, _ in dataset.as_numpy_iterator()}


def decode_error(path: str) -> str:
    """TensorFlow's own message for a file that failed in `decodable_files`."""
    try:
        decode_file(tf.constant(path))
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()
        return _without_op_names(message[0]) if message else type(error).__name__
    return "failed to decode inside tf.data"


def _without_op_names(message: str) -> str:
    """TensorFlow's reason without its "{{function_node ...}}" and "[Op:...]" wrapping."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:\w+\](\s*name:.*)?$", "", message).strip()


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
