"""Seed lists on the command line, one rule for kgan-generate and serving/client.py.

A seed is any int64, negative ones included (the export's `generate` signature takes
int64 seeds, and `kgan.serving.limits.as_seeds` accepts the whole range): "7", "0-15"
(inclusive), "-5", "-5--1" (the range -5..-1), and comma-separated mixes ("0-3,10").
Standard library and NumPy only.
"""

from __future__ import annotations

import argparse
import re

from kgan.serving.limits import as_seeds

__all__ = ["MAX_SEEDS", "join_negative_values", "parse_seeds"]

#: Most seeds one command asks for (a typo such as 0-10000000000 should not fill memory).
MAX_SEEDS = 100_000
_SEED_PART = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")


def parse_seeds(text: str) -> list[int]:
    """Reads "0-15" (inclusive range), "1,5,9" (list), a mix ("0-3,10"), and negative
    seeds: "-5" or "-5--1" (the range -5..-1). An argparse `type`: bad text raises
    `argparse.ArgumentTypeError` with the reason."""
    seeds = []
    for part in text.split(","):
        match = _SEED_PART.match(part)
        if not match:
            raise argparse.ArgumentTypeError(
                f"{part.strip()!r} is not a seed or a range (e.g. 7, 0-15, -5--1)")
        start, stop = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if stop < start:
            raise argparse.ArgumentTypeError(f"range {part.strip()} is empty: write the "
                                             "smaller seed first")
        if len(seeds) + stop - start + 1 > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"more than {MAX_SEEDS} seeds asked for")
        seeds += range(start, stop + 1)
    try:
        as_seeds(seeds)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return seeds


def join_negative_values(argv: list[str], flags: tuple[str, ...] = ("--seeds",)) -> list[str]:
    """`--seeds -5--1` -> `--seeds=-5--1`: argparse takes a value that starts with '-' for
    a flag unless it is a plain negative number, which "-5--1" or "-2,-1" is not."""
    joined, skip = [], False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        following = argv[index + 1] if index + 1 < len(argv) else ""
        if arg in flags and following.startswith("-") and following[1:2].isdigit():
            joined.append(f"{arg}={following}")
            skip = True
        else:
            joined.append(arg)
    return joined
