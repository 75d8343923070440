"""A per-row hash of float bits into a seed in [0, 2^31 - 1), the same on every backend.

StyleGAN2's generator seeds each image's noise from its seed where it has one, else from
a hash of its latent (`kgan.networks.families.stylegan2_generator.noise_seeds_from`), so
an image does not depend on the batch it is drawn in. The hash is sum_j bits_j * w_j
modulo the prime 2^31 - 1, with bits_j the float32 bits of value j read as an unsigned
integer and fixed odd weights w_j. TensorFlow's backend computes it in int64
(`random.row_hash`); JAX without x64 has no int64, so its backend calls `hash_bits`,
the same numbers with uint32 products in 16-bit halves and Mersenne reductions.
"""

from __future__ import annotations

import numpy as np

PRIME = 2**31 - 1


def weights(size: int) -> np.ndarray:
    """The hash's fixed odd weights in [1, 2^31 - 1), one per value."""
    return np.random.default_rng(0x5717).integers(1, PRIME, size) | 1


def _u32(xp, value):
    return xp.asarray(value, dtype=xp.uint32)


def _reduce(xp, x):
    """x mod p for uint32 x, p = 2^31 - 1 (2^31 = 1 mod p)."""
    p = _u32(xp, PRIME)
    x = (x & p) + (x >> _u32(xp, 31))  # <= 2^31
    return xp.where(x >= p, x - p, x)


def _add(xp, a, b):
    """(a + b) mod p for a, b < 2^31 (their sum fits 32 bits)."""
    return _reduce(xp, a + b)


def _times_2_16(xp, x):
    """(x * 2^16) mod p for uint32 x: x = h 2^16 + l gives h 2^32 + l 2^16 = 2h + l 2^16."""
    mask = _u32(xp, 0xFFFF)
    return _add(xp, _reduce(xp, (x >> _u32(xp, 16)) << _u32(xp, 1)),
                _reduce(xp, (x & mask) << _u32(xp, 16)))


def _multiply(xp, a, b):
    """(a * b) mod p for a, b < 2^31, in 16-bit halves (no product exceeds 32 bits)."""
    mask, sixteen = _u32(xp, 0xFFFF), _u32(xp, 16)
    a1, a0, b1, b0 = a >> sixteen, a & mask, b >> sixteen, b & mask
    high = _reduce(xp, (a1 * b1) << _u32(xp, 1))          # a1 b1 2^32 = 2 a1 b1
    middle = _times_2_16(xp, a1 * b0 + a0 * b1)          # < 2^32
    return _add(xp, _add(xp, high, middle), _reduce(xp, a0 * b0))


def hash_bits(xp, bits):
    """The hash of uint32 bits [N, size] with 32-bit unsigned integer ops only (NumPy or
    jax.numpy): uint32 [N], equal to the int64 computation."""
    size = bits.shape[-1]
    if size >= 2**16:
        raise ValueError(f"noise seeds hash at most 65535 values per example, got {size}")
    terms = _multiply(xp, _reduce(xp, bits), _u32(xp, weights(size)))
    mask = _u32(xp, 0xFFFF)
    low = xp.sum(terms & mask, axis=-1, dtype=xp.uint32)        # < 2^16 * 2^16
    high = xp.sum(terms >> _u32(xp, 16), axis=-1, dtype=xp.uint32)
    return _add(xp, _times_2_16(xp, high), _reduce(xp, low))
