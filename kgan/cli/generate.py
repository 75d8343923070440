"""`kgan-generate`: images from a trained generator as PNG grids, single PNGs or animations.

Usage:
    kgan-generate runs/digits --seeds 0-63 --grid grid.png
    kgan-generate exports/digits --seeds 7,42 --out pngs/          # pngs/seed_7.png, ...
    kgan-generate runs/digits/final.keras --interpolate 3 8 --frames 32 --gif walk.gif
    kgan-generate exports/digits --interpolate 3 8 --mp4 walk.mp4 --scale 4

SOURCE is a `.keras` file (a saved kgan.GAN), a run directory (its final.keras, or
while it trains its newest checkpoint), or an export (EXPORT_DIR/<model> for its
newest version, or a version folder). Generators with a truncation input use the
export's default psi (0.7 for kgan's stylegan2 exports, from kgan.json) unless
--truncation says otherwise; serving/client.py and gan.generate use psi 1, so pass
--truncation 1 for their images. Seed s
gives the same image as `gan.generate(1, seed=s)` and the export's `generate`
signature; a conditional model draws class s % num_classes unless --label fixes it.
An interpolation walks the latent great circle from seed A's latent to seed B's.
GIF needs imageio (the demo extra); MP4 also needs imageio-ffmpeg.
Exit status: 0 written, 1 failed while generating or writing, 2 bad arguments, 130
Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys

from kgan.cli import exits, plugins, quiet
from kgan.cli.seeds import join_negative_values, parse_seeds
from kgan.training import backend as keras_backend

__all__ = ["main", "parse_seeds", "write_outputs"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgan-generate", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("source", help="a .keras file, a run directory, or an export folder")
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-15"),
                        help="seeds for --grid/--out, e.g. 0-15, 3,7,42 or -5--1 (any "
                             "int64; default 0-15)")
    parser.add_argument("--label", type=int, help="class for every image (conditional models)")
    parser.add_argument("--truncation", type=float,
                        help="truncation psi, for generators with a truncation input "
                             "(default: the export's, 0.7 for stylegan2; 1 = none)")
    out = parser.add_argument_group("outputs (at least one)")
    out.add_argument("--grid", metavar="PNG", help="one PNG grid of the seeds' images")
    out.add_argument("--out", metavar="DIR", help="one PNG per seed: DIR/seed_<s>.png")
    out.add_argument("--gif", metavar="GIF", help="interpolation animation as GIF")
    out.add_argument("--mp4", metavar="MP4", help="interpolation animation as MP4")
    look = parser.add_argument_group("layout")
    look.add_argument("--columns", type=int, help="grid columns (default: square)")
    look.add_argument("--padding", type=int, default=1, help="grid padding in pixels")
    look.add_argument("--scale", type=int, default=1,
                      help="enlarge grids and animations by this factor (nearest neighbour)")
    anim = parser.add_argument_group("interpolation")
    anim.add_argument("--interpolate", nargs=2, type=int, metavar=("A", "B"),
                      help="seeds of the first and last frame")
    anim.add_argument("--frames", type=int, default=24, help="frames from A to B (2-64)")
    anim.add_argument("--fps", type=float, default=12.0, help="frames per second")
    anim.add_argument("--bounce", action="store_true",
                      help="play back from B to A too, for a seamless loop")
    plugins.add_flag(parser)
    quiet.add_debug_flag(parser)
    return parser


# Bounds that keep a typo from asking for gigabytes of pixels; a GIF's frame delay is
# counted in hundredths of a second.
MAX_SCALE, MAX_PADDING, MAX_FPS = 64, 64, 100.0


def _check(args: argparse.Namespace) -> None:
    if args.interpolate and not (args.gif or args.mp4):
        raise ValueError("--interpolate needs --gif or --mp4 to write it to")
    if not (args.grid or args.out or args.gif or args.mp4):
        raise ValueError("nothing to write: pass --grid, --out, --gif or --mp4")
    if (args.gif or args.mp4) and not args.interpolate:
        raise ValueError("--gif/--mp4 show an interpolation: pass --interpolate A B")
    for flag, value, low, high in (("--scale", args.scale, 1, MAX_SCALE),
                                   ("--padding", args.padding, 0, MAX_PADDING),
                                   ("--columns", args.columns, 1, None)):
        if value is not None and not (low <= value and (high is None or value <= high)):
            allowed = f"in {low}..{high}" if high is not None else f">= {low}"
            raise ValueError(f"{flag} must be {allowed}, got {value}")
    if not 0 < args.fps <= MAX_FPS:  # also refuses nan
        raise ValueError(f"--fps must be in (0, {MAX_FPS:g}], got {args.fps}")
    if args.truncation is not None:  # the export's range (kgan.serving.limits), up front
        from kgan.serving.limits import check_truncation

        check_truncation(args.truncation, 1)
    _check_outputs(args)


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuses an output that cannot be written before the model loads and renders."""
    from kgan.training.rundir import writable_problem  # no TensorFlow

    folders = [("--out", args.out)] if args.out else []
    files = [(flag, path, kind) for flag, path, kind in (
        ("--grid", args.grid, ".png"), ("--gif", args.gif, ".gif"), ("--mp4", args.mp4, ".mp4"))
        if path]
    for flag, path, kind in files:  # never onto a model, a folder or a misnamed file
        if os.path.isdir(path):
            raise ValueError(f"{flag} takes a file name, and {path} is a folder: e.g. "
                             f"{os.path.join(path, 'images' + kind)}")
        if not path.lower().endswith(kind):
            raise ValueError(f"{flag} writes a {kind[1:].upper()} file: name it *{kind}, got "
                             f"{path}")
    folders += [(flag, os.path.dirname(os.path.abspath(path))) for flag, path, _ in files]
    for flag, folder in folders:
        problem = writable_problem(folder)
        if problem:
            raise ValueError(f"{flag}: {problem}")


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (`kgan.cli.exits`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(join_negative_values(argv))
    return exits.run("kgan-generate", lambda: _generate(args), debug=args.debug,
                     bad_input=(ValueError, FileNotFoundError, ImportError))


def _generate(args: argparse.Namespace) -> None:
    _check(args)
    quiet.quiet_tensorflow(args.debug)
    keras_backend.check_environment("kgan-generate")
    plugins.load(args.imports)
    from kgan.demo.backends import load_backend

    for path in write_outputs(load_backend(args.source), args):
        print(path)


def write_outputs(backend, args: argparse.Namespace) -> list[str]:
    """Writes what the arguments ask for; returns the paths written."""
    from kgan.demo import media

    written = []
    if args.grid or args.out:
        labels = None if args.label is None else [args.label] * len(args.seeds)
        result = backend.generate(args.seeds, labels, args.truncation)
        if args.grid:
            grid = media.grid(result.images, args.columns, args.padding)
            _write(args.grid, media.png_bytes(media.upscale(grid, args.scale)))
            written.append(args.grid)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            for seed, image, png in zip(args.seeds, result.images, result.png, strict=True):
                path = os.path.join(args.out, f"seed_{seed}.png")
                scaled = png if args.scale == 1 else media.png_bytes(
                    media.upscale(image, args.scale))
                written.append(_write(path, scaled))
    if args.interpolate:
        frames = backend.interpolate(*args.interpolate, args.frames, args.label,
                                     args.truncation)
        frames = media.upscale(frames, args.scale)
        if args.bounce:
            frames = media.bounce(frames)
        if args.gif:
            written.append(media.write_gif(args.gif, frames, args.fps))
        if args.mp4:
            written.append(media.write_mp4(args.mp4, frames, args.fps))
    return written


def _write(path: str, data: bytes) -> str:
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    return path


if __name__ == "__main__":
    sys.exit(main())
