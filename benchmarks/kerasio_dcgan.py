"""The keras-io DCGAN's networks as a kgan network family, `kerasio_dcgan`, for baselines.

keras-io's `examples/generative/dcgan_overriding_train_step.py` (fchollet; the Keras 3
version trains on CelebA at 64 px x 3) builds:

- G: Dense(8*8*128) -> Reshape(8, 8, 128) -> 3 x [Conv2DTranspose(128 / 256 / 512,
  4, stride 2, same) -> LeakyReLU(0.2)] -> Conv2D(3, 5, same, sigmoid): 64 px;
- D: 3 x [Conv2D(64 / 128 / 128, 4, stride 2, same) -> LeakyReLU(0.2)] -> Flatten ->
  Dropout(0.2) -> Dense(1, sigmoid);

trained with BinaryCrossentropy, Adam(1e-4) for both, batch 32, latent 128, on images
in [0, 1]. This module builds the same layers for any resolution and channels:

- G starts from `resolution / 2^len(g_widths)` px, so it ends at `resolution`. The
  default `g_widths=[128, 256]` keeps the example's Dense to 8x8x128 and its first two
  stages, and drops the 512-wide stage that only took it from 32 to 64 px; at 32 px
  that G costs ~1.2 GFLOP per image, 4x less than `g_widths=[128, 256, 512]` (Dense to
  4x4, every stage kept, ~4.6 GFLOP), which `--network-args` also builds.
- G ends in tanh and D in a logit: kgan's data are in [-1, 1] and its losses take
  logits. That is the example's model up to an affine map: tanh(a) = 2 sigmoid(2a) - 1,
  so the last conv's weights and bias doubled give keras-io's sigmoid G for data
  (x + 1) / 2 in [0, 1], D's first conv absorbs the same map, and sigmoid + BCE is BCE
  from logits (computed more stably). Same function classes; the initial weights (and
  so the trajectory) differ by those factors.
- Unconditional only, like the example.

Importing this module registers the family (once); `fashion_quality.py` imports it.

Example:
    >>> import kerasio_dcgan, kgan
    >>> g, d = kgan.networks.get("kerasio_dcgan")(32, 1, latent_dim=128)
    >>> g.output_shape, d.output_shape
    ((None, 32, 32, 1), (None, 1))
"""

from __future__ import annotations

from kgan import networks

NAME = "kerasio_dcgan"
OPTIONS = dict(g_widths=[128, 256], d_widths=[64, 128, 128], dropout=0.2)
# The options of a smoke run (fashion_quality.py --quick): the same layers, 4 filters.
QUICK_OPTIONS = dict(g_widths=[4, 4], d_widths=[4, 4, 4])


def build(resolution: int, channels: int, latent_dim: int, num_classes: int | None = None,
          g_widths=OPTIONS["g_widths"], d_widths=OPTIONS["d_widths"],
          dropout: float = OPTIONS["dropout"]):
    """`(generator, discriminator)` of keras-io's DCGAN at `resolution` px x `channels`,
    with kgan's interfaces: G maps z [N, latent_dim] to float32 images in [-1, 1], D maps
    images to float32 logits [N, 1]."""
    import keras
    from keras import layers

    if num_classes:
        raise ValueError("the keras-io DCGAN is unconditional: drop --conditional")
    start = resolution // 2 ** len(g_widths)
    if not g_widths or start < 1 or start * 2 ** len(g_widths) != resolution:
        raise ValueError(f"{len(g_widths)} stride-2 stages (g_widths={list(g_widths)}) do not "
                         f"reach {resolution} px from a whole start size")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")

    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(start * start * 128)(z)
    x = layers.Reshape((start, start, 128))(x)
    for width in g_widths:
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    images = layers.Conv2D(channels, 5, padding="same", activation="tanh", dtype="float32",
                           name="images")(x)
    generator = keras.Model(z, images, name="kerasio_generator")

    image_in = keras.Input((resolution, resolution, channels), name="images")
    x = image_in
    for width in d_widths:
        x = layers.Conv2D(width, 4, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Dropout(dropout)(layers.Flatten()(x))
    logits = layers.Dense(1, dtype="float32", name="logits")(x)
    return generator, keras.Model(image_in, logits, name="kerasio_discriminator")


def register() -> networks.Family:
    """Registers the family under NAME (a second call returns the first registration)."""
    try:
        return networks.get(NAME)
    except ValueError:
        return networks.register(networks.Family(
            NAME, __name__,
            "keras-io's DCGAN (dcgan_overriding_train_step.py): transposed convs + LeakyReLU, "
            "no normalisation, D with dropout; unconditional", options=OPTIONS))


register()
