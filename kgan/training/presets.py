"""Named starting points for `TrainConfig.from_preset` and `kgan-train --preset`.

Each preset gives sizes and hyperparameters known to work for a data set; flags and
config files override any of them.
"""

from __future__ import annotations

from typing import Any

_SMALL = dict(dataset="digits", resolution=32, channels=1, batch_size=64, epochs=20,
              latent_dim=64, network="dcgan", network_args={})
_DCGAN64 = dict(base_filters=64)


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
        lr_d=0.0025, lr_g=0.0025, beta1=0.0, beta2=0.99, ema_kimg=batch_size * 10 / 32,
        ema_rampup=0.05, style_mixing=0.9, pl_weight=2.0, pl_interval=4)
    network_args = {**network_args, **overrides.pop("network_args", {})}
    return {**preset, **overrides, "network_args": network_args}


PRESETS: dict[str, dict[str, Any]] = {
    # 1797 8x8 digits at 16 px, one class per label: the relativistic loss with R1 + R2,
    # an EMA generator (half-life 3 kimg, ramped up), batch 32 and Adam 5e-4 gave the
    # best samples in 50 epochs in benchmarks/digits_quality.py (RESULTS.md: FD 1.8x the
    # real-data floor over 3 seeds): 56 steps/epoch, 1-2 minutes on 2 quiet CPU cores.
    "digits": dict(_SMALL, resolution=16, conditional=True, epochs=50, batch_size=32,
                   lr_d=5e-4, lr_g=5e-4, network_args=dict(base_filters=32),
                   loss="relativistic", r1_gamma=0.1, r2_gamma=0.1, ema_kimg=3.0,
                   ema_rampup=0.05),
    "mnist": dict(_SMALL, dataset="mnist", batch_size=128, epochs=20, network_args=_DCGAN64),
    "fashion_mnist": dict(_SMALL, dataset="fashion_mnist", batch_size=128, epochs=30,
                          network_args=_DCGAN64),
    # Hinge loss + spectral norm + EMA: the usual stable recipe for small colour images.
    "cifar10": dict(dataset="cifar10", resolution=32, channels=3, batch_size=128, epochs=100,
                    latent_dim=128, network="dcgan",
                    network_args=dict(base_filters=64, spectral_norm=True), loss="hinge",
                    ema_decay=0.999, beta1=0.0, beta2=0.9, lr_d=2e-4, lr_g=1e-4,
                    augment="color,translation,cutout"),
    "celeba64": dict(dataset="celeb_a", resolution=64, channels=3, batch_size=64, epochs=20,
                     latent_dim=128, network="dcgan", network_args=_DCGAN64, ema_decay=0.999,
                     model_name="celeba64"),
    # Few-shot folders (hundreds of images): ADA keeps D from memorising them.
    "folder64": dict(dataset="images", resolution=64, channels=3, batch_size=32, epochs=200,
                     latent_dim=128, network="dcgan", network_args=_DCGAN64, r1_gamma=1.0,
                     ema_decay=0.999, augment="color,translation,cutout", ada_target=0.6,
                     model_name="folder64"),
    # StyleGAN2 on the 8x8 digits at 16 px, its smallest size, with narrow networks:
    # 1680 steps of 0.25-0.6 s on 2 CPU cores (17 min measured on busy cores); legible
    # digits from about epoch 10.
    "stylegan2_digits": _stylegan2(
        16, dataset="digits", channels=1, epochs=30, latent_dim=64,
        network_args=dict(cbase=1024, cmax=64, w_dim=64), model_name="stylegan2_digits"),
    # A folder of face images (thousands; dataset: its path), with ADA against
    # overfitting. The paper trains 25M images: raise --epochs for the full recipe.
    "faces64": _stylegan2(64, dataset="images", channels=3, epochs=500,
                          augment="color,translation,cutout", ada_target=0.6,
                          model_name="faces64"),
    "faces128": _stylegan2(128, dataset="images", channels=3, epochs=500,
                           augment="color,translation,cutout", ada_target=0.6,
                           model_name="faces128"),
}
