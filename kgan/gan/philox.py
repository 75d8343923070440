"""TensorFlow's stateless random numbers, computed with any NumPy-like array module.

`tf.random.stateless_*` turns a seed into numbers with Philox-4x32-10 (Salmon et al.,
2011): the seed's four 32-bit words are scrambled into a key and a counter by one Philox
block under a fixed key, then block g of the output comes from counter + g. Floats are
built from the bits (uniform: 23 mantissa bits in [1, 2) minus 1; normal: Box-Muller on
pairs of those). Here the same is written with 32-bit integer ops only (products split
into 16-bit halves), so it runs on NumPy and on JAX without 64-bit support, and gives
TensorFlow's bits exactly and its floats to float32 rounding (design.md rule 7: one
seed, one latent, on every backend).

A seed is four uint32 words [low(s0), high(s0), low(s1), high(s1)] of TensorFlow's int64
seed pair (s0, s1); `words(s0, s1)` builds them.
"""

from __future__ import annotations

import math

import numpy as np

_MASK16 = 0xFFFF
_FIXED_KEY = (0x3EC8F720, 0x02461E29)
_ROUND_KEY = (0x9E3779B9, 0xBB67AE85)
_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)


def _u32(xp, value):
    return xp.asarray(value, dtype=xp.uint32)


def _mul_hi_lo(xp, a, constant: int):
    """(high, low) 32-bit words of the 64-bit product a * constant, in uint32 ops."""
    c_lo, c_hi = _u32(xp, constant & _MASK16), _u32(xp, constant >> 16)
    a_lo, a_hi = a & _u32(xp, _MASK16), a >> _u32(xp, 16)
    ll, lh, hl, hh = a_lo * c_lo, a_lo * c_hi, a_hi * c_lo, a_hi * c_hi
    mask, sixteen = _u32(xp, _MASK16), _u32(xp, 16)
    mid = (ll >> sixteen) + (lh & mask) + (hl & mask)
    high = hh + (lh >> sixteen) + (hl >> sixteen) + (mid >> sixteen)
    low = (mid << sixteen) | (ll & mask)
    return high, low


def _round(xp, counter: list, key: list) -> list:
    hi0, lo0 = _mul_hi_lo(xp, counter[0], _MULTIPLIERS[0])
    hi1, lo1 = _mul_hi_lo(xp, counter[2], _MULTIPLIERS[1])
    return [hi1 ^ counter[1] ^ key[0], lo1, hi0 ^ counter[3] ^ key[1], lo0]


def block(xp, counter: list, key: list) -> list:
    """Philox-4x32-10 of counter words [4] under key words [2] (arrays broadcast)."""
    shape = np.broadcast_shapes(*(np.shape(c) for c in counter), *(np.shape(k) for k in key))
    counter = [xp.broadcast_to(xp.asarray(c, xp.uint32), shape) for c in counter]
    key = [xp.broadcast_to(xp.asarray(k, xp.uint32), shape) for k in key]
    if xp is np:
        for _ in range(10):
            counter = _round(xp, counter, key)
            key = [key[0] + _u32(xp, _ROUND_KEY[0]), key[1] + _u32(xp, _ROUND_KEY[1])]
        return counter
    import jax  # a loop keeps XLA's program (and its compile time) ten times smaller

    def body(_, carry):
        counter, key = carry
        counter = _round(xp, counter, key)
        return counter, [key[0] + _u32(xp, _ROUND_KEY[0]), key[1] + _u32(xp, _ROUND_KEY[1])]

    return jax.lax.fori_loop(0, 10, body, (counter, key))[0]


def words(xp, s0, s1):
    """The uint32 words [..., 4] of TensorFlow's int64 seed pair (s0, s1): Python ints, or
    int32 arrays (sign-extended, as int64 would be)."""
    parts = []
    for s in (s0, s1):
        if isinstance(s, (int, np.integer)):
            s = int(s) & 0xFFFFFFFFFFFFFFFF
            parts += [_u32(xp, s & 0xFFFFFFFF), _u32(xp, s >> 32)]
        else:
            s = xp.asarray(s)
            parts += [s.astype(xp.uint32),
                      xp.where(s < 0, _u32(xp, 0xFFFFFFFF), _u32(xp, 0))]
    shapes = [np.shape(p) for p in parts]
    shape = np.broadcast_shapes(*shapes)
    return xp.stack([xp.broadcast_to(p, shape) for p in parts], axis=-1)


def key_counter(xp, seed):
    """TensorFlow's StatelessRandomGetKeyCounter: key words [..., 2], counter [..., 4]."""
    seed = xp.asarray(seed, dtype=xp.uint32)
    fixed = [_u32(xp, k) for k in _FIXED_KEY]
    mix = block(xp, [seed[..., i] for i in range(4)], fixed)
    zero = xp.zeros_like(mix[0])
    return xp.stack(mix[:2], axis=-1), xp.stack([zero, zero, mix[2], mix[3]], axis=-1)


def raw_bits(xp, seed, count: int):
    """The first `count` uint32 outputs of the seed's Philox stream, shape [..., count]."""
    key, counter = key_counter(xp, seed)
    blocks = math.ceil(count / 4)
    g = xp.arange(blocks, dtype=xp.uint32)
    c0 = counter[..., 0:1] + g  # the 128-bit counter + g, carrying into the next words
    carry0 = (c0 < g).astype(xp.uint32)
    c1 = counter[..., 1:2] + carry0
    carry1 = ((c1 == 0) & (carry0 == 1)).astype(xp.uint32)
    c2 = counter[..., 2:3] + carry1
    c3 = counter[..., 3:4] + ((c2 == 0) & (carry1 == 1)).astype(xp.uint32)
    out = block(xp, [c0, c1, c2, c3], [key[..., 0:1], key[..., 1:2]])
    stacked = xp.stack(out, axis=-1)  # [..., blocks, 4]
    flat = xp.reshape(stacked, (*stacked.shape[:-2], blocks * 4))
    return flat[..., :count]


def _to_unit_float(xp, bits):
    mantissa = (bits & _u32(xp, 0x7FFFFF)) | _u32(xp, 0x3F800000)
    return _bitcast_float(xp, mantissa) - 1.0


def _bitcast_float(xp, bits):
    if xp is np:
        return bits.view(np.float32)
    import jax  # the only other array module used here

    return jax.lax.bitcast_convert_type(bits, xp.float32)


def uniform(xp, shape, seed):
    """`tf.random.stateless_uniform(shape, seed)`: float32 in [0, 1)."""
    size = int(np.prod(shape))
    return xp.reshape(_to_unit_float(xp, raw_bits(xp, seed, size)), (*seed.shape[:-1], *shape))


def normal(xp, shape, seed):
    """`tf.random.stateless_normal(shape, seed)`: Box-Muller on consecutive bit pairs."""
    size = int(np.prod(shape))
    bits = raw_bits(xp, seed, size + size % 2)
    u = _to_unit_float(xp, bits)
    u1, v = u[..., 0::2], u[..., 1::2]
    radius = xp.sqrt(-2.0 * xp.log(xp.maximum(u1, np.float32(1e-7))))
    angle = np.float32(2.0 * math.pi) * v
    pairs = xp.stack([xp.sin(angle) * radius, xp.cos(angle) * radius], axis=-1)
    flat = xp.reshape(pairs, (*pairs.shape[:-2], -1))[..., :size]
    return xp.reshape(flat.astype(xp.float32), (*seed.shape[:-1], *shape))


def integers(xp, shape, seed, minval, maxval):
    """`tf.random.stateless_uniform(shape, seed, minval, maxval, tf.int32)`."""
    size = int(np.prod(shape))
    minval = xp.asarray(minval, dtype=xp.int32)
    span = (xp.asarray(maxval, dtype=xp.int32) - minval).astype(xp.uint32)
    bits = raw_bits(xp, seed, size)
    values = (bits % span).astype(xp.int32) + minval
    return xp.reshape(values, (*seed.shape[:-1], *shape))


def split(xp, seed, count: int):
    """`tf.random.experimental.stateless_split(seed, count)` as words [..., count, 4]."""
    bits = raw_bits(xp, seed, 4 * count)
    return xp.reshape(bits, (*seed.shape[:-1], count, 4))
