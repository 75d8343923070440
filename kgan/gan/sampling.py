"""Seed-addressed sampling shared by training, `GAN.generate` and the export.

Each latent vector is a pure function of one integer seed (stateless random ops),
so a seed gives the same image alone, in any batch, in Python and in TF Serving.

Style-based generators (with `mapping` and `synthesis`, e.g. StyleGAN2) also take their
noise from the image's seed (`noise_seeds=seed`), and accept a truncation psi per image
(`generator_options`); the export's `generate` signature passes the same.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from kgan.gan.randomness import LATENT_STREAM, labels_from_seeds, latents_from_seeds

__all__ = ["LATENT_STREAM", "check_truncation", "generator_options", "is_style_based",
           "labels_from_seeds", "latents_from_seeds", "sample_images", "style_mix_images"]


def is_style_based(generator) -> bool:
    """StyleGAN2's interface: a mapping and a synthesis network and a tracked w_avg, with a
    call that takes `truncation_psi` and `noise_seeds` (one per example). Training, the
    demo and the export ask this one question, so they never disagree about a generator."""
    return all(hasattr(generator, name) for name in ("mapping", "synthesis", "w_avg"))


def generator_options(generator, seeds=None, truncation=None) -> dict:
    """Keyword arguments of a generator call for these image seeds and truncation psi:
    a style-based generator draws each image's noise from its seed (`noise_seeds`) and
    truncates toward w_avg; other generators take neither (truncation is refused)."""
    check_truncation_target(generator, truncation)
    if not is_style_based(generator):
        return {}
    options = {}
    if seeds is not None:
        options["noise_seeds"] = seed_words(seeds)
    if truncation is not None:
        options["truncation_psi"] = ops.convert_to_tensor(truncation, "float32")
    return options


def seed_words(seeds) -> np.ndarray:
    """int64 seeds [N] as int32 (low, high) word pairs [N, 2]: a layer call turns its
    arguments into backend tensors, and JAX (x64 off) would cut int64 to int32, so seeds of
    2**31 and up would draw other noise than on TensorFlow. Two int32 words stay exact."""
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    low = (seeds & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    return np.stack([low, (seeds >> 32).astype(np.int32)], axis=-1)


def check_truncation_target(generator, truncation) -> None:
    """Refuses a truncation psi for a generator without a mapping network and w_avg."""
    if truncation is not None and not is_style_based(generator):
        raise ValueError(
            f"truncation needs a style-based generator (a mapping network and w_avg, "
            f"e.g. stylegan2); {generator.name!r} has none. Leave truncation unset.")


def check_truncation(truncation, n: int):
    """None, a finite number, or n finite numbers (one psi per image) as float32 [n]."""
    if truncation is None:
        return None
    psi = np.asarray(truncation, dtype=np.float64)
    if psi.ndim > 1 or (psi.ndim == 1 and len(psi) != n) or not np.isfinite(psi).all():
        raise ValueError(f"truncation must be a finite number or {n} finite numbers (one psi "
                         f"per image), got {truncation!r}.")
    return np.broadcast_to(psi, (n,)).astype(np.float32)


def sample_images(
    generator, latent_dim: int, num_classes: int | None, n_or_z,
    seed: int | None = None, labels=None, batch_size: int = 256, truncation=None,
    seeds=None,
) -> np.ndarray:
    """Runs `generator` on seed-addressed (or given) latents; float32 NumPy images.

    With a number n and `seed` s, image i comes from `latents_from_seeds(s + i)`, which is
    what the export's `generate` signature computes; None draws fresh seeds. With
    `n_or_z=None`, `seeds` gives any int64 seeds, one per image, as the export takes. Labels of a
    conditional generator default to `labels_from_seeds` (or i % num_classes for given
    latents). A style-based generator takes image i's noise from its seed (with given
    latents, from a hash of z) and `truncation` psi (a number or one per image). Runs in
    chunks of `batch_size` to bound memory.
    """
    if n_or_z is None:
        seeds = np.asarray(seeds, np.int64).reshape(-1)
    elif np.ndim(n_or_z) == 0 and not isinstance(n_or_z, (int, np.integer)):
        raise ValueError(f"generate() takes a number of images (an int) or latents "
                         f"[N, {latent_dim}], got {n_or_z!r}.")
    elif isinstance(n_or_z, (int, np.integer)):
        if n_or_z < 1:
            raise ValueError(f"Number of images must be >= 1, got {n_or_z}.")
        start = np.random.randint(0, 2**31) if seed is None else int(seed)
        seeds = np.arange(start, start + int(n_or_z), dtype=np.int64)
    else:
        seeds, z = None, np.asarray(n_or_z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != latent_dim:
            raise ValueError(f"Latents must have shape [N, {latent_dim}], got {list(z.shape)}.")
    if seeds is not None:
        z = np.asarray(latents_from_seeds(seeds, latent_dim))
    labels = _sampling_labels(len(z), num_classes, seeds, labels)
    check_truncation_target(generator, truncation)
    psi = check_truncation(truncation, len(z))
    chunks = []
    for start in range(0, len(z), batch_size):
        rows = slice(start, start + batch_size)
        inputs = z[rows] if labels is None else [z[rows], labels[rows]]
        options = generator_options(generator, None if seeds is None else seeds[rows],
                                    None if psi is None else psi[rows])
        chunks.append(np.asarray(generator(inputs, training=False, **options), np.float32))
    return _in_range(np.concatenate(chunks))


def style_mix_images(generator, latent_dim: int, num_classes: int | None, seeds_a, seeds_b,
                     cutoff: int, labels=None, truncation=None, batch_size: int = 256
                     ) -> np.ndarray:
    """Style mixing (StyleGAN, section 3.1) of seed pairs: image i has ws[:cutoff] (the
    coarse styles) of seeds_a[i], the rest of seeds_b[i], and seeds_a[i]'s noise; a single
    seed on either side pairs with every seed of the other. Labels default to each seed's
    own (`labels_from_seeds`); truncation applies to both sides. float32 NumPy images.
    """
    if not is_style_based(generator):
        raise ValueError(f"style mixing needs a style-based generator (mapping and synthesis "
                         f"networks, e.g. stylegan2); {generator.name!r} has none.")
    a, b = (np.atleast_1d(np.asarray(s, dtype=np.int64)) for s in (seeds_a, seeds_b))
    if a.ndim != 1 or b.ndim != 1 or (len(a) != len(b) and 1 not in (len(a), len(b))):
        raise ValueError(f"seeds_a and seeds_b must be lists of equal length (or one seed), "
                         f"got {len(a)} and {len(b)} seeds.")
    a, b = np.broadcast_arrays(a, b)
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)) or not (
            0 <= cutoff <= generator.num_ws):
        raise ValueError(f"cutoff must be an integer in [0, {generator.num_ws}] (the number of "
                         f"ws taken from seeds_a), got {cutoff!r}.")
    psi = check_truncation(truncation, len(a))
    sides = [(s, _sampling_labels(len(s), num_classes, s, labels)) for s in (a, b)]
    chunks = []
    for start in range(0, len(a), batch_size):
        rows = slice(start, start + batch_size)
        ws = []
        for seeds, side_labels in sides:
            z = latents_from_seeds(seeds[rows], latent_dim)
            inputs = z if side_labels is None else [z, side_labels[rows]]
            ws.append(generator.map_ws(inputs, 1.0 if psi is None else psi[rows]))
        mixed = generator.mix_styles(ws[0], ws[1], cutoff)
        images = generator.synthesis(mixed, noise_seeds=seed_words(a[rows]))
        chunks.append(np.asarray(images, np.float32))
    return _in_range(np.concatenate(chunks))


def _in_range(images: np.ndarray) -> np.ndarray:
    """Images [N, H, W, C] clipped to [-1, 1], as the export's uint8 conversion does:
    linear-output generators (R3GAN, StyleGAN2) overshoot a little, and images leave
    `generate` in the contract's range. Other data (the mlp family's points) is left as is."""
    return np.clip(images, -1.0, 1.0) if images.ndim == 4 else images


def _sampling_labels(n: int, num_classes: int | None, seeds, labels):
    if not num_classes:
        return None
    if labels is None:
        return labels_from_seeds(seeds if seeds is not None else np.arange(n), num_classes)
    labels = np.asarray(labels, dtype=np.int32).reshape(-1)
    if len(labels) != n or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must be {n} integers in [0, {num_classes}), got {labels.tolist()}."
        )
    return labels
