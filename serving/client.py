"""Command-line client for a kgan generator served by TensorFlow Serving.

The importable code lives in `kgan.serving.client` (RestClient, GrpcClient, generate,
from_latents, save_pngs, save_grid); this file is only the command line over it.

Examples:
    python serving/client.py --model digits generate --seeds 0-15 --out samples/ \
        --grid grid.png
    python serving/client.py --grpc localhost:8500 --model digits --label stable \
        generate --seeds 0,7,42 --num-classes 10
    python serving/client.py --model digits latents --count 8 --latent-seed 1 --grid z.png
    python serving/client.py --model digits status
    python serving/client.py --model digits metadata

Needs kgan installed (`pip install -e .` from the repository root).

Exit status: 0 on success, 1 when the server cannot be reached or refuses the request
(one line on stderr says why), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from kgan.serving.client import (
    GrpcClient,
    RestClient,
    ServingError,
    from_latents,
    generate,
    labels_for_seeds,
    save_grid,
    save_pngs,
)


def parse_seeds(text: str) -> list[int]:
    """Reads "0-15" (inclusive range) or "1,5,9" (list), or a mix: "0-3,10"."""
    seeds = []
    for part in text.split(","):
        start, _, stop = part.strip().partition("-")
        seeds += list(range(int(start), int(stop) + 1)) if stop else [int(start)]
    return seeds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="client.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--rest", default="http://localhost:8501", help="REST root URL")
    where.add_argument("--grpc", help="gRPC host:port (uses gRPC instead of REST)")
    parser.add_argument("--model", required=True, help="model name from models.config")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="pin a version number")
    which.add_argument("--label", help="pin a version label, e.g. stable")
    parser.add_argument("--format", choices=["columnar", "row"], default="columnar",
                        help="REST request format")
    parser.add_argument("--timeout", type=float, default=30.0)
    commands = parser.add_subparsers(dest="command", required=True)
    by_seed = commands.add_parser("generate", help="images for seeds (signature generate)")
    by_seed.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-15"))
    by_z = commands.add_parser("latents", help="images for random latents (serving_default)")
    by_z.add_argument("--count", type=int, default=16)
    by_z.add_argument("--latent-seed", type=int, default=0, help="NumPy seed for z")
    by_z.add_argument("--latent-dim", type=int, help="default: read from the metadata")
    for sub in (by_seed, by_z):
        sub.add_argument("--num-classes", type=int,
                         help="conditional model: label = seed %% K (or i %% K for latents)")
        sub.add_argument("--out", help="folder for one PNG per image")
        sub.add_argument("--grid", help="PNG file for all images in one grid")
    commands.add_parser("status", help="version states (GET /v1/models/NAME)")
    commands.add_parser("metadata", help="signatures (GET /v1/models/NAME/metadata)")
    return parser


def _client(args):
    if args.grpc:
        return GrpcClient(args.grpc, args.model, args.version, args.label, args.timeout)
    return RestClient(args.rest, args.model, args.version, args.label, args.format,
                      args.timeout)


def _latent_dim(client) -> int:
    signatures = client.metadata()["metadata"]["signature_def"]["signature_def"]
    shape = signatures["serving_default"]["inputs"]["z"]["tensor_shape"]["dim"]
    return int(shape[-1]["size"])


def _run(args, client) -> None:
    if args.command in ("status", "metadata"):
        print(json.dumps(getattr(client, args.command)(), indent=2))
        return
    k = args.num_classes
    if args.command == "generate":
        names = [f"seed_{seed}.png" for seed in args.seeds]
        samples = generate(client, args.seeds, k and labels_for_seeds(args.seeds, k))
    else:
        dim = args.latent_dim or _latent_dim(client)
        z = np.random.default_rng(args.latent_seed).standard_normal([args.count, dim])
        names = [f"latent_{i:04d}.png" for i in range(args.count)]
        samples = from_latents(client, z, k and labels_for_seeds(range(args.count), k))
    if args.out:
        save_pngs(samples, args.out, names)
        print(f"wrote {len(names)} PNGs to {args.out}")
    if args.grid:
        print(f"wrote {save_grid(samples.images, args.grid)}")
    if not (args.out or args.grid):
        print(f"received {samples.images.shape[0]} images of shape "
              f"{list(samples.images.shape[1:])}; pass --out or --grid to save them")


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        client = _client(args)
        _run(args, client)
    except (ServingError, ValueError, OSError) as error:
        print(f"client.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
