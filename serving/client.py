"""Command-line client for a kgan generator served by TensorFlow Serving.

The importable code lives in `kgan.serving.client` (RestClient, GrpcClient, generate,
from_latents, save_pngs, save_grid); this file is only the command line over it.

Examples:
    python serving/client.py --model digits generate --seeds 0-15 --out samples/ \
        --grid grid.png
    python serving/client.py --grpc localhost:8500 --model digits --label stable \
        generate --seeds 0,7,42 --num-classes 10
    python serving/client.py --model digits generate --seeds -5--1,7     # negative seeds too
    python serving/client.py --model digits latents --count 8 --latent-seed 1 --grid z.png
    python serving/client.py --model faces generate --seeds 0-15 --truncation 0.7 --grid t.png
    python serving/client.py --model digits status
    python serving/client.py --model digits metadata

A conditional model's class count comes from the server (its metadata says the model
takes labels; one probe request then reads the count from the export's own check);
--num-classes, if given, must match it, and is used only when the server does not say.
`--truncation PSI` (generators with a mapping network, e.g. stylegan2) asks the truncated
signatures; the metadata says whether the model has them.
Needs kgan installed (`pip install -e .` from the repository root); for REST alone, NumPy,
Pillow and `pip install --no-deps .` are enough, no TensorFlow ("A light client" in
serving/README.md). `--debug` shows tracebacks (and TensorFlow's log, for gRPC).

Exit status (kgan.cli.exits): 0 on success, 1 when the server cannot be reached or refuses
the request, 2 for bad arguments, 130 on Ctrl-C, 143 on SIGTERM; one line on stderr says
why.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from kgan.cli import exits, quiet
from kgan.cli.seeds import join_negative_values, parse_seeds
from kgan.images import decode_pngs
from kgan.serving.client import (
    GrpcClient,
    RestClient,
    Samples,
    ServingError,
    checked_num_classes,
    from_latents,
    generate_png,
    labels_for_seeds,
    model_inputs,
    save_grid,
    save_pngs,
)
from kgan.serving.limits import INT64_MAX, check_model_name, check_truncation


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
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    quiet.add_debug_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    by_seed = commands.add_parser("generate", help="images for seeds (signature generate)")
    by_seed.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-15"),
                         help="e.g. 0-15, 1,5,9 or -5--1 (default 0-15)")
    by_z = commands.add_parser("latents", help="images for random latents (serving_default)")
    by_z.add_argument("--count", type=int, default=16)
    by_z.add_argument("--latent-seed", type=int, default=0, help="NumPy seed for z")
    by_z.add_argument("--latent-dim", type=int, help="default: read from the metadata")
    for sub in (by_seed, by_z):
        sub.add_argument("--num-classes", type=int,
                         help="conditional model: label = seed %% K (or i %% K for latents)")
        sub.add_argument("--out", help="folder for one PNG per image")
        sub.add_argument("--grid", help="PNG file for all images in one grid")
        sub.add_argument("--truncation", type=float, metavar="PSI",
                         help="truncation psi for every image (1 = none, 0 = the average "
                              "image); models with a mapping network only")
    commands.add_parser("status", help="version states (GET /v1/models/NAME)")
    commands.add_parser("metadata", help="signatures (GET /v1/models/NAME/metadata)")
    return parser


def _check_args(args) -> None:
    """What can be wrong before any request is sent (bad input, exit 2, not exit 1)."""
    check_model_name(args.model, "--model")
    if args.version is not None and not 1 <= args.version <= INT64_MAX:
        raise ValueError(f"--version must be a positive integer (int64), got {args.version}")
    if not 0 < args.timeout <= 86_400:  # also refuses nan
        raise ValueError(f"--timeout must be in (0, 86400] seconds, got {args.timeout}")
    for flag in ("num_classes", "count", "latent_dim"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    if getattr(args, "truncation", None) is not None:
        check_truncation(args.truncation, 1)


def _client(args):
    if args.grpc:
        return GrpcClient(args.grpc, args.model, args.version, args.label, args.timeout)
    return RestClient(args.rest, args.model, args.version, args.label, args.format,
                      args.timeout)


def _num_classes(args, client) -> int | None:
    """The served model's class count (one probe request), checked against --num-classes."""
    return checked_num_classes(client, args.num_classes)


def _check_truncation(args, client) -> None:
    if args.truncation is None:
        return
    if not model_inputs(client).truncation:
        raise ValueError("this model takes no truncation (its export has no "
                         "generate_truncated signature: only generators with a mapping "
                         "network, e.g. stylegan2, have one); drop --truncation")


def _run(args, client) -> None:
    if args.command in ("status", "metadata"):
        print(json.dumps(getattr(client, args.command)(), indent=2))
        return
    k = _num_classes(args, client)
    _check_truncation(args, client)
    if args.command == "generate":
        names = [f"seed_{seed}.png" for seed in args.seeds]
        labels = None if k is None else labels_for_seeds(args.seeds, k)
        # PNGs only over the wire (generate_png); the grid's pixels are decoded from them.
        pngs = generate_png(client, args.seeds, labels, args.truncation)
        samples = Samples(images=decode_pngs(pngs), png_bytes=pngs)
    else:
        dim = args.latent_dim or model_inputs(client).latent_dim
        z = np.random.default_rng(args.latent_seed).standard_normal([args.count, dim])
        names = [f"latent_{i:04d}.png" for i in range(args.count)]
        labels = None if k is None else labels_for_seeds(range(args.count), k)
        samples = from_latents(client, z, labels, args.truncation)
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
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(join_negative_values(argv))
    with exits.sigterm_as_interrupt():
        try:
            try:
                quiet.quiet_tensorflow(args.debug, load=bool(args.grpc))  # REST: no TF
            except ImportError as error:
                raise ValueError(f"--grpc needs TensorFlow and tensorflow-serving-api (the "
                                 f"full install: pip install kgan); {error}") from None
            _check_args(args)
            client = _client(args)
            _run(args, client)
        except (ServingError, ValueError, OSError) as error:
            if args.debug:
                raise
            if isinstance(error, ServingError):
                return _fail(error, exits.STOPPED)
            if isinstance(error, ValueError):  # our own checks, before anything is sent
                return _fail(error, exits.BAD_INPUT)
            return _fail(f"cannot write: {error}", exits.STOPPED)  # --out / --grid
        except KeyboardInterrupt as error:
            how = "stopped by SIGTERM" if isinstance(error, exits.Terminated) else "interrupted"
            print(f"client.py: {how}", file=sys.stderr)
            return exits.interrupted_status(error)
    return exits.OK


def _fail(error, status: int) -> int:
    print(f"client.py: error: {' '.join(str(error).split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
