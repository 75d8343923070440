"""Stateless random draws that give TensorFlow's numbers with and without XLA.

`tf.random.stateless_*` is a function of (shape, seed) on CPU and GPU, but a jit-compiled
step draws other numbers (measured on TF 2.21, CPU) for two reasons:
    * XLA's StatelessRandomGetKeyCounter keeps only the low 32 bits of `seed[1]`, and the
      seeds `stateless_split` returns use all 64;
    * XLA turns Philox bits into floats its own way.
The Philox bit stream for a given (key, counter) agrees. So the seed -> (key, counter)
scramble is recomputed here with plain integer ops as TensorFlow's kernel does it (one
Philox-4x32-10 block of the seed's four 32-bit words under a fixed key), the bits come
from the *V2 ops with that key and counter, and floats are built from the bits as
TensorFlow's kernel builds them. `bits`, `split`, `uniform` and `integers` equal their
`tf.random` counterparts bit for bit, compiled or not; `normal` equals
`tf.random.stateless_normal` to float32 rounding (its sin / cos / log are TensorFlow's ops,
not the kernel's), also compiled.
"""

from __future__ import annotations

import math

import tensorflow as tf

_PHILOX = 1  # tf.random.Algorithm.PHILOX: what "auto_select" picks on CPU and GPU
_MASK32 = 0xFFFFFFFF
_SHIFT32 = 32


def _philox_block(counter: list, key: list) -> list:
    """Philox-4x32-10 (Salmon et al., 2011) on uint64 tensors holding 32-bit words."""
    shift = tf.constant(_SHIFT32, tf.uint64)
    for round_ in range(10):
        if round_:
            key = [(key[0] + 0x9E3779B9) & _MASK32, (key[1] + 0xBB67AE85) & _MASK32]
        product_0 = counter[0] * 0xD2511F53
        product_1 = counter[2] * 0xCD9E8D57
        counter = [
            tf.bitwise.right_shift(product_1, shift) ^ counter[1] ^ key[0],
            product_1 & _MASK32,
            tf.bitwise.right_shift(product_0, shift) ^ counter[3] ^ key[1],
            product_0 & _MASK32,
        ]
    return counter


def key_counter(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """TensorFlow's StatelessRandomGetKeyCounter for an int [2] seed: uint64 key [1] and
    counter [2], the same under XLA."""
    return _key_counter(tf.cast(seed, tf.int64))


# One traced function, called where a draw needs it: written inline, the ~100 integer ops
# of each draw's Philox block took 0.1 s of Python graph building, ~6 s per training step
# with augmentation (dozens of draws) before the first batch.
@tf.function(input_signature=[tf.TensorSpec([2], tf.int64)], autograph=False)
def _key_counter(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    words = tf.bitcast(seed, tf.uint64)
    shift = tf.constant(_SHIFT32, tf.uint64)
    low, high = words & _MASK32, tf.bitwise.right_shift(words, shift)
    fixed_key = [tf.constant(0x3EC8F720, tf.uint64), tf.constant(0x02461E29, tf.uint64)]
    mix = _philox_block([low[0], high[0], low[1], high[1]], fixed_key)
    key = tf.reshape(mix[0] | tf.bitwise.left_shift(mix[1], shift), [1])
    counter = tf.stack([tf.constant(0, tf.uint64), mix[2] | tf.bitwise.left_shift(mix[3], shift)])
    return key, counter


def bits(shape, seed: tf.Tensor, dtype=tf.uint32) -> tf.Tensor:
    """`tf.random.stateless_uniform(shape, seed, minval=None, maxval=None, dtype=dtype)`."""
    key, counter = key_counter(seed)
    return tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=shape, key=key, counter=counter, alg=_PHILOX, dtype=dtype
    )


def split(seed: tf.Tensor, count: int) -> tf.Tensor:
    """`tf.random.experimental.stateless_split(seed, count)`: int64 [count, 2] seeds."""
    return bits([count, 2], seed, tf.int64)


def uniform(shape, seed: tf.Tensor) -> tf.Tensor:
    """`tf.random.stateless_uniform(shape, seed)`: float32 in [0, 1), the 23 low bits of
    each uint32 as the mantissa of a float in [1, 2), minus 1."""
    mantissa = tf.bitwise.bitwise_or(tf.bitwise.bitwise_and(bits(shape, seed), 0x7FFFFF),
                                     0x3F800000)
    return tf.bitcast(mantissa, tf.float32) - 1.0


def normal(shape, seed: tf.Tensor) -> tf.Tensor:
    """`tf.random.stateless_normal(shape, seed)` to float32 rounding (<= 2e-6), the same with
    and without XLA: Box-Muller on pairs of the bits, as TensorFlow's kernel does it. (XLA's
    own stateless_normal draws entirely other numbers, so a jit-compiled step would train
    on other noise than a plain one.)"""
    size = tf.reduce_prod(tf.cast(shape, tf.int32))
    uniforms = uniform([size + size % 2], seed)
    radius = tf.sqrt(-2.0 * tf.math.log(tf.maximum(uniforms[0::2], 1e-7)))
    angle = (2.0 * math.pi) * uniforms[1::2]
    pairs = tf.stack([tf.sin(angle) * radius, tf.cos(angle) * radius], axis=-1)
    return tf.reshape(tf.reshape(pairs, [-1])[:size], shape)


def integers(shape, seed: tf.Tensor, minval, maxval) -> tf.Tensor:
    """`tf.random.stateless_uniform(shape, seed, minval, maxval, tf.int32)`: [minval, maxval)."""
    key, counter = key_counter(seed)
    return tf.raw_ops.StatelessRandomUniformIntV2(
        shape=shape, key=key, counter=counter, alg=_PHILOX,
        minval=tf.cast(minval, tf.int32), maxval=tf.cast(maxval, tf.int32),
    )
