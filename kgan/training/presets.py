"""Named starting points for `TrainConfig.from_preset` and `kgan-train --preset`.

Each preset gives sizes and hyperparameters known to work for a data set; flags and
config files override any of them.
"""

from __future__ import annotations

from typing import Any

_SMALL = dict(dataset="digits", resolution=32, channels=1, batch_size=64, epochs=20,
              latent_dim=64, network="dcgan", network_args={})
_DCGAN64 = dict(base_filters=64)
PRESETS: dict[str, dict[str, Any]] = {
    # 1797 8x8 digits upsampled to 32 px: 28 steps/epoch, a few minutes on 2 CPU cores.
    "digits": dict(_SMALL),
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
}
