"""`kgan-export`: publish a trained generator as a new TF Serving version.

Usage:
    kgan-export SOURCE EXPORT_DIR [--model-name NAME] [--version N] [--overwrite]
                [--num-classes K]

SOURCE is a `.keras` file holding a saved `kgan.GAN` (its EMA generator is exported
when it has one) or a bare generator, or a run directory: the first of
`RUN_DIR/final.keras`, `RUN_DIR/model.keras`, then the newest `RUN_DIR/checkpoints/*.keras`.
The version lands in `EXPORT_DIR/NAME/<next free number>/` (NAME defaults to the run
directory's name, or the file's stem) and its path is printed on stdout; errors print
one line on stderr and exit with status 1.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

_RUN_DIR_FILES = ("final.keras", "model.keras")


def find_model_file(source: str) -> str:
    """Returns the `.keras` file SOURCE names, or the one a run directory holds."""
    if os.path.isfile(source):
        if not source.endswith(".keras"):
            raise ValueError(f"{source} is not a .keras file")
        return source
    if not os.path.isdir(source):
        raise FileNotFoundError(f"{source} does not exist")
    for name in _RUN_DIR_FILES:
        path = os.path.join(source, name)
        if os.path.isfile(path):
            return path
    checkpoints = glob.glob(os.path.join(source, "checkpoints", "*.keras"))
    if checkpoints:
        return max(checkpoints, key=os.path.getmtime)
    raise FileNotFoundError(
        f"no model in {source}: expected {' or '.join(_RUN_DIR_FILES)} or "
        "checkpoints/*.keras")


def default_model_name(source: str) -> str:
    """The run directory's name, or the file's stem; what the server will call it."""
    source = os.path.abspath(source)
    if os.path.isdir(source):
        return os.path.basename(source)
    return os.path.splitext(os.path.basename(source))[0]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgan-export", description=__doc__.split("\n\n")[0],
        epilog="Prints the new version directory. See serving/README.md to serve it.")
    parser.add_argument("source", help="a .keras file, or a run directory")
    parser.add_argument("export_dir", help="folder of models (mounted at /models by serving/)")
    parser.add_argument("--model-name", help="served model name (default: from SOURCE)")
    parser.add_argument("--version", type=int, help="version number (default: next free)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --version if it exists")
    parser.add_argument("--num-classes", type=int,
                        help="classes of a bare conditional generator (a GAN knows them)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (0 ok, 1 error, 2 bad arguments)."""
    args = _parser().parse_args(argv)
    try:
        import keras

        import kgan  # noqa: F401  (registers kgan classes so load_model finds them)
        from kgan.serving.export import export_generator

        path = find_model_file(args.source)
        model = keras.models.load_model(path, compile=False)
        version_dir = export_generator(
            model, args.export_dir,
            model_name=args.model_name or default_model_name(args.source),
            version=args.version, overwrite=args.overwrite, num_classes=args.num_classes)
    except Exception as error:  # one readable line instead of a traceback
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"kgan-export: error: {message}", file=sys.stderr)
        return 1
    print(version_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
