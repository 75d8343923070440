"""Named starting points for `TrainConfig.from_preset` and `kgan-train --preset`.

Each preset gives sizes and hyperparameters for a kind of data; flags and config files
override any of them. Every number says where it comes from: kgan's own measurements
(benchmarks/RESULTS.md) or a paper's reference configuration. `preset_for(dataset)` picks
the preset of a run that names a data set but no preset. Nothing here loads TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any

from kgan import data
from kgan.data import idx
from kgan.training.errors import ConfigError

DEFAULT_PRESET = "digits"  # `python train.py` with no --preset and no --dataset

_SMALL = dict(dataset="digits", resolution=32, channels=1, batch_size=64, epochs=20,
              latent_dim=64, network="dcgan", network_args={})
_DCGAN64 = dict(base_filters=64)

# The recipe measured on the digits: benchmarks/RESULTS.md, "Digits: the 50-epoch recipe
# search of 2026-11-27" (50 epochs, 3 seeds, FD in a digits CNN's features against
# held-out digits, as a multiple of the real-data floor):
# - loss relativistic with R1 = R2 = 0.1: R3GAN's loss (Huang et al. 2024); it cut FD
#   56 -> 41 against the non-saturating loss at 32 px ("Digits, before the search");
# - batch 32 and Adam 5e-4 (beta 0.5 / 0.999, TrainConfig's defaults): FD 2.87x -> 1.99x
#   the floor (batch 64 and 2e-4 before; beta 0 / 0.99 measured no better, 2.03x);
# - an EMA generator with half-life 3 kimg (1 -> 3 kimg: 1.99x -> 1.80x, mean of 3 seeds),
#   the half-life capped at 5 % of the images seen (StyleGAN2-ADA's ema_rampup 0.05).
_DIGITS_RECIPE = dict(loss="relativistic", r1_gamma=0.1, r2_gamma=0.1, batch_size=32,
                      lr_d=5e-4, lr_g=5e-4, ema_kimg=3.0, ema_rampup=0.05)


def _digits_recipe_at_32px(dataset: str) -> dict[str, Any]:
    """The digits recipe for 28 px grayscale sets of 60,000 labelled images (MNIST,
    Fashion-MNIST), with a longer EMA and lazy R1/R2. Measured on Fashion-MNIST at 30 CPU
    minutes, 3 seeds (benchmarks/RESULTS.md, "Lazy R1/R2"): recognised 1.03x the real
    rate, precision 0.91, recall 0.82, FD 0.59. With 0.2's G (z x class embedding), batch
    64 (kgan 0.2's recipe) reached batch 32's FD by 30 minutes with recall 0.41 against
    0.50 and was behind at 3 and 10 ("Fashion-MNIST at 30 CPU minutes"), so batch 32
    stays."""
    # EMA half-life 10 kimg, StyleGAN2-ADA's at batch 32, where the digits' 50 short epochs
    # measured 3 best: on Fashion-MNIST at 30 CPU minutes, half-lives kept beside one run
    # (3 seeds), 3 -> 10 kimg took precision 0.889 -> 0.903, recall 0.823 -> 0.814, FD 0.71
    # -> 0.76; 20 kimg reached 0.911 at FD 0.88 (RESULTS.md, "EMA half-life"). Until 0.05
    # (ema_rampup) x the images seen passes a half-life, the ramp-up caps it.
    # Lazy R1/R2 (Karras et al. 2020: the penalties' double backward pass every 4th D
    # step, weighted x4): on Fashion-MNIST at 30 CPU minutes, 3 seeds, 1.21x the steps in
    # the same minutes, FD 0.76 -> 0.59 (lower in every seed), precision 0.903 -> 0.912,
    # recall 0.814 -> 0.821 (RESULTS.md, "Lazy R1/R2"); StyleGAN2's 16 is unmeasured here.
    recipe = {**_DIGITS_RECIPE, "ema_kimg": 10.0, "reg_interval": 4}
    return dict(
        _SMALL, **recipe, dataset=dataset,
        resolution=32,  # the smallest power of two >= 28 (the images are resized 28 -> 32)
        # labelled: conditioning took digit recognition 0.21 -> 0.84; on Fashion-MNIST at
        # 10 CPU minutes (unconditional -> conditional with the class-norm G below),
        # recognition 0.76x -> 1.00x the real rate, precision 0.82 -> 0.87, FD 2.73 -> 1.58,
        # recall 0.79 -> 0.73 (RESULTS.md, "per network family", "Class-conditional batch norm")
        conditional=True,
        # base 32 (digits: 64 was no better, 2.14x, and 4.6x slower); the class enters G
        # through per-class batch-norm gains, not z x embedding: on Fashion-MNIST, 3 seeds,
        # recall 0.36 -> 0.73 at 10 CPU minutes and 0.50 -> 0.82 at 30, precision 0.93 ->
        # 0.90 and FD 0.85 -> 0.64 at 30 (RESULTS.md, "Class-conditional batch norm");
        # MNIST takes it unmeasured.
        network_args=dict(base_filters=32, conditioning="batchnorm"),
        # 10 epochs of 60,000 images at batch 32 = 18,750 steps, the order of the ~21k
        # steps at which the digits DCGAN reached FD 1.38x its floor (10-minute row of
        # "Digits: quality per CPU minute").
        epochs=10)


# R3GAN's reference configurations (Huang et al., NeurIPS 2024; github.com/brownvc/R3GAN,
# train.py `--preset` and the README's training commands). Its schedules run over
# decay_nimg = 2e7 images, cosine from the first value to the second, and stay there:
# lr 2e-4 -> 5e-5 (lr_final_ratio 0.25), Adam beta_1 0 and beta_2 0.9 -> 0.99, gamma ->
# gamma / 10 (gamma_final_ratio 0.1), augmentation probability 0 -> p, EMA half-life
# 0 -> ema_nimg; latent 64 (NoiseDimension). Augmentation is its ADA pipeline at a fixed,
# ramped probability (no ADA feedback): AugmentPipe(xflip, rotate90, xint, scale, rotate,
# aniso, xfrac = 1, the colour ops = 0.5, cutout = 1), kgan's cutout being DiffAugment's
# square of half the side (ADA's too, up to where its centre may fall).
# Adam's epsilon is PyTorch's 1e-8, as in R3GAN's and stylegan2-ada-pytorch's training.
# Its training commands all pass --mirror=1 (x-flips; here each image flipped with
# probability 1/2 per epoch, which keeps an epoch one pass over the data).
_R3GAN = dict(network="r3gan", latent_dim=64, loss="relativistic", lr_d=2e-4, lr_g=2e-4,
              mirror=True, lr_final_ratio=0.25, beta1=0.0, beta2=0.99, beta2_start=0.9,
              adam_epsilon=1e-8, gamma_final_ratio=0.1,
              augment="blit,geom,ada_color:0.5,cutout", ada_target=None)
_R3GAN_IMAGES = 20_000_000  # decay_nimg


def _r3gan(num_examples: int, ema_kimg: float, **settings) -> dict[str, Any]:
    """R3GAN's schedules in epochs of a data set of `num_examples` images; the EMA
    half-life ramps with them, as a cosine from 0 to `ema_kimg` (no ema_rampup cap)."""
    epochs = round(_R3GAN_IMAGES / num_examples)
    return dict(_R3GAN, ramp_epochs=epochs, epochs=epochs, ema_kimg=ema_kimg, **settings)


# = kgan.networks.families.r3gan.SIZES["cifar32"] / ["ffhq64"] (tests/test_config.py
# checks): widths 3/4 of R3GAN's [1024, ...], 2 blocks per stage, groups of 16 channels
# (its cardinality 96 on 2 x 768 channels), expansion 2; written out so that reading a
# preset loads no TensorFlow.
_R3GAN_CIFAR32 = dict(widths=[768, 768, 768, 768], blocks_per_stage=2, expansion=2,
                      group_size=16)
_R3GAN_FFHQ64 = dict(widths=[768, 768, 768, 768, 384], blocks_per_stage=2, expansion=2,
                     group_size=16)


def _stylegan2(resolution: int, batch_size: int = 32, **overrides) -> dict[str, Any]:
    """StyleGAN2 (Karras et al. 2020) as stylegan2-ada-pytorch's `--cfg auto` trains it on
    one GPU: batch 32, Adam(0.0025, beta_1=0, beta_2=0.99), a 2-layer mapping network,
    widths min(16384 // res, 512), EMA half-life batch x 10 / 32 kimg with ramp-up 0.05,
    lazy R1 with gamma 0.0002 res^2 / batch every 16 D steps, path length 2 every 4 G
    steps, style mixing 0.9, the 4 highest resolutions in FP16 (under mixed_float16) with
    conv_clamp 256, minibatch-stddev groups of 4."""
    network_args = dict(cbase=16384, cmax=512, mapping_layers=2, w_dim=512, conv_clamp=256,
                        num_fp16_res=4, mbstd_group_size=4)
    preset = dict(
        resolution=resolution, batch_size=batch_size, network="stylegan2", latent_dim=512,
        loss="non_saturating", r1_gamma=0.0002 * resolution**2 / batch_size, reg_interval=16,
        lr_d=0.0025, lr_g=0.0025, beta1=0.0, beta2=0.99, adam_epsilon=1e-8,
        ema_kimg=batch_size * 10 / 32,
        ema_rampup=0.05, style_mixing=0.9, pl_weight=2.0, pl_interval=4)
    network_args = {**network_args, **overrides.pop("network_args", {})}
    return {**preset, **overrides, "network_args": network_args}


PRESETS: dict[str, dict[str, Any]] = {
    # 1797 8x8 digits at 16 px, one class per label, the measured recipe above: FD 1.8x
    # the real-data floor over 3 seeds in 50 epochs (56 steps/epoch, 1-2 minutes on 2
    # quiet CPU cores).
    "digits": dict(_SMALL, **_DIGITS_RECIPE, resolution=16, conditional=True, epochs=50,
                   network_args=dict(base_filters=32)),
    # MNIST's handwritten digits (TFDS) are the data the digits recipe was measured on,
    # at their own size.
    "mnist": _digits_recipe_at_32px("mnist"),
    # "fashion_mnist" reads Debian's IDX files (apt-get install dataset-fashion-mnist)
    # when installed, TFDS's otherwise (kgan.data.idx).
    "fashion_mnist": _digits_recipe_at_32px("fashion_mnist"),
    # R3GAN's CIFAR-10 configuration, `--preset=CIFAR10 --batch=512 --cond=1 --aug=1`:
    # its network (SIZES["cifar32"]), class-conditional, gamma 0.05 -> 0.005, augmentation
    # probability 0 -> 0.55, EMA half-life 0 -> 5000 kimg; 2e7 images = 400 epochs of
    # CIFAR-10's 50,000 (R3GAN trains on at the final values: raise --epochs to follow).
    "cifar10": dict(_r3gan(50_000, ema_kimg=5000.0), dataset="cifar10", resolution=32,
                    channels=3, conditional=True, batch_size=512,
                    network_args=_R3GAN_CIFAR32, r1_gamma=0.05, r2_gamma=0.05,
                    augment_p=0.55),
    # R3GAN's FFHQ-64 configuration (its 64 px faces; CelebA itself is unmeasured),
    # `--preset=FFHQ-64 --batch=256 --aug=1`: its network (SIZES["ffhq64"]),
    # unconditional, gamma 2 -> 0.2, augmentation probability 0 -> 0.3, EMA half-life
    # 0 -> 500 kimg; 2e7 images = 123 epochs of CelebA's 162,770 training images.
    "celeba64": dict(_r3gan(162_770, ema_kimg=500.0), dataset="celeb_a", resolution=64,
                     channels=3, batch_size=256, network_args=_R3GAN_FFHQ64,
                     r1_gamma=2.0, r2_gamma=2.0, augment_p=0.3, model_name="celeba64"),
    # A folder of hundreds to thousands of photos (dataset: its path; the run is named
    # after the folder), a DCGAN that trains on a CPU:
    # - loss relativistic with R1 = R2 = 2: R3GAN's loss and its gamma at 64 px (FFHQ-64;
    #   the digits' measured 0.1 at 16 px scaled by resolution^2, as StyleGAN2's gamma
    #   heuristic scales, gives 1.6);
    # - Adam 2e-4, betas 0 / 0.99: R3GAN's learning rate and final betas (StyleGAN2's
    #   betas too);
    # - EMA half-life 10 kimg with ramp-up 0.05: StyleGAN2-ADA's batch x 10 / 32 kimg at
    #   batch 32, its one-GPU batch at 64 px;
    # - DiffAugment's color, translation and cutout (Zhao et al. 2020, their policy for
    #   100-shot data) applied with ADA's adaptive probability, target 0.6 (Karras et al.
    #   2020), so that D does not memorise a small folder;
    # - ADA moves p by up to 1 per 25.6k images (5e-3 every 4 steps, kgan's earlier rate,
    #   not measured): ADA's 500 kimg suits runs of millions of images, and at 500 this
    #   preset's 200,000 images could raise p by 0.4 at most;
    # - latent 128, base_filters 64 and 200 epochs: kgan's earlier folder64 values, not
    #   measured (200 epochs of 1,000 images are 6,250 steps: raise --epochs for more).
    "folder64": dict(dataset="images", resolution=64, channels=3, batch_size=32, epochs=200,
                     latent_dim=128, network="dcgan", network_args=_DCGAN64,
                     loss="relativistic", r1_gamma=2.0, r2_gamma=2.0, lr_d=2e-4, lr_g=2e-4,
                     beta1=0.0, beta2=0.99, ema_kimg=10.0, ema_rampup=0.05,
                     augment="color,translation,cutout", ada_target=0.6, ada_kimg=25.6),
    # StyleGAN2 on the 8x8 digits at 16 px, its smallest size, with narrow networks:
    # 1680 steps of 0.25-0.6 s on 2 CPU cores (17 min measured on busy cores); legible
    # digits from about epoch 10.
    "stylegan2_digits": _stylegan2(
        16, dataset="digits", channels=1, epochs=30, latent_dim=64,
        network_args=dict(cbase=1024, cmax=64, w_dim=64), model_name="stylegan2_digits"),
    # A folder of face images (thousands; dataset: its path), with ADA against
    # overfitting: its 'bgc' pipeline and target 0.6, stylegan2-ada-pytorch's `--aug ada`.
    # The paper trains 25M images: raise --epochs for the full recipe.
    "faces64": _stylegan2(64, dataset="images", channels=3, epochs=500, augment="bgc",
                          ada_target=0.6, model_name="faces64"),
    "faces128": _stylegan2(128, dataset="images", channels=3, epochs=500, augment="bgc",
                           ada_target=0.6, model_name="faces128"),
}


def _dataset_presets() -> dict[str, str]:
    """Data set name -> its preset: the first preset that names it ("images" is a
    placeholder for a folder's path, not a name)."""
    found: dict[str, str] = {}
    for name, preset in PRESETS.items():
        if preset["dataset"] != "images":
            found.setdefault(preset["dataset"], name)
    return found


DATASET_PRESETS = _dataset_presets()
_CHOICES = ("cifar10 (32 px colour), celeba64 (64 px colour, faces), mnist or fashion_mnist "
            "(small grayscale images), folder64 (a folder of photos)")


def preset_for(dataset: str | os.PathLike | None) -> str:
    """The preset of a run that names `dataset` but no preset (kgan-train's default).

    No data set: `DEFAULT_PRESET` (the digits demo). A data set with a preset of its own
    gets it ("mnist", "fashion_mnist", "cifar10", "celeb_a" -> celeba64, "digits"), and so
    does the folder of a Debian data package (/usr/share/datasets/fashion-mnist ->
    fashion_mnist); a source that names a preset (`kgan.data.Source.preset`) gets it: an
    image folder gets folder64 (resolution, channels and the rest still come from flags),
    a registered source its own. Other sources have no preset that fits them all: a
    ConfigError names the presets to pick from. Reads no data and loads no TensorFlow.
    """
    if dataset is None:
        return DEFAULT_PRESET
    name = os.fspath(dataset)
    if name in DATASET_PRESETS:
        return DATASET_PRESETS[name]
    try:
        source = data.find_source(name)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    kind = source.kind
    if source.preset:  # a folder's (folder64), or a registered source's own
        if source.preset not in PRESETS:
            raise ConfigError(f"data source {kind!r} names preset {source.preset!r}, which does "
                              f"not exist; presets: {', '.join(PRESETS)}")
        return source.preset
    if kind == "idx":
        path = os.path.realpath(os.path.expanduser(name))
        for set_name, known in idx.DEBIAN_SETS.items():
            if os.path.realpath(known.folder) in (path, os.path.dirname(path)):
                return DATASET_PRESETS.get(set_name, DEFAULT_PRESET)
        what = "IDX files"
    else:
        if kind == "tfds" and (hint := _mistyped_path(name)):
            raise ConfigError(hint)
        what = {"tfds": "a TFDS name", "arrays": "an array file"}.get(kind, kind)
    raise ConfigError(
        f"no preset fits --dataset {name!r} ({what}) by name: pick the closest with --preset NAME "
        f"({_CHOICES}; all: {', '.join(PRESETS)}) and adjust it with flags (--resolution, "
        "--channels, --conditional, ...).")


def _mistyped_path(name: str) -> str | None:
    """Why a name that only TFDS would take is more likely a path gone wrong: an existing
    file, or a folder path whose first folder exists but the rest does not."""
    if os.path.isfile(name):
        return (f"--dataset {name!r} is a file; --dataset takes a folder of images, a folder "
                "of IDX files, an .npz file or a TFDS name")
    first = name.split("/")[0]
    if "/" in name and first and os.path.isdir(first):
        return (f"--dataset {name!r}: no such folder or file (and no TFDS data set has that "
                f"name); check the path below {first}/")
    return None
