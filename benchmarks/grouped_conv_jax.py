"""XLA's cost for grouped convolutions (R3GAN's 3x3 convs use them) against a dense one.

On a CPU, XLA (jax 0.10) runs a grouped 3x3 convolution's gradient far slower than the
dense convolution of the same width, although the dense one does `groups` times the
multiply-adds; this is why full-width R3GAN trains at about a minute per step on JAX on a
CPU, where TensorFlow's oneDNN takes seconds. On GPUs the grouped kernels are cuDNN's.
Times one jitted forward pass and one jitted gradient (input and weights) per group count.

    python benchmarks/grouped_conv_jax.py                       # R3GAN's ffhq64 stage width
    python benchmarks/grouped_conv_jax.py --groups 1,4,16 --channels 128 --out g.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402


def _time(fn, *args, seconds: float) -> float:
    """Milliseconds per call, after one compiling call, over at least `seconds`."""
    jax.block_until_ready(fn(*args))
    start, calls = time.perf_counter(), 0
    while calls == 0 or time.perf_counter() - start < seconds:
        jax.block_until_ready(fn(*args))
        calls += 1
    return (time.perf_counter() - start) / calls * 1000


def measure(groups: int, channels: int, size: int, batch: int, seconds: float) -> dict:
    """Forward and gradient milliseconds of a 3x3 'SAME' conv, channels -> channels."""
    x = jnp.ones((batch, size, size, channels), jnp.float32)
    w = jnp.full((3, 3, channels // groups, channels), 0.01, jnp.float32)

    def conv(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=groups,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

    forward = jax.jit(conv)
    gradient = jax.jit(jax.grad(lambda x, w: conv(x, w).sum(), argnums=(0, 1)))
    return {"groups": groups, "forward_ms": _time(forward, x, w, seconds=seconds),
            "gradient_ms": _time(gradient, x, w, seconds=seconds),
            "multiply_adds": batch * size * size * 9 * channels * channels // groups}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--groups", default="1,16", help="comma-separated group counts")
    p.add_argument("--channels", type=int, default=256)
    p.add_argument("--size", type=int, default=16, help="height and width")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seconds", type=float, default=3.0, help="timing window per row")
    p.add_argument("--out", help="write the JSON result here")
    args = p.parse_args(argv)
    groups = [int(g) for g in args.groups.split(",")]
    if any(g < 1 or args.channels % g for g in groups):
        p.error(f"every group count must divide --channels {args.channels}")
    rows = [measure(g, args.channels, args.size, args.batch, args.seconds) for g in groups]
    result = {"benchmark": "grouped_conv_jax", "settings": vars(args),
              "machine": {"jax": jax.__version__, "device": str(jax.devices()[0]),
                          "processor": platform.processor() or platform.machine()},
              "rows": rows}
    for row in rows:
        print(f"groups {row['groups']:3d}: forward {row['forward_ms']:8.1f} ms, "
              f"gradient {row['gradient_ms']:8.1f} ms", file=sys.stderr)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            json.dump(result, file, indent=2)
    return result


if __name__ == "__main__":
    main()
