"""`kgan-export`: publish a trained generator as a new TF Serving version.

Usage:
    kgan-export SOURCE EXPORT_DIR [--model-name NAME] [--version N] [--overwrite]
                [--num-classes K]

SOURCE is a run directory (its `final.keras`, which `kgan-train` writes when a run ends;
before that, its newest checkpoint, and stderr says which step) or a `.keras` file
holding a saved `kgan.GAN` (its EMA generator is exported when it has one) or a bare
generator. The version lands in `EXPORT_DIR/NAME/<next free number>/` (NAME defaults to
the model name the run recorded, as its own export used; else the run directory's name,
also for its final.keras, or the file's stem) and its path is printed on stdout. Errors
print one line on stderr.

Exit status (kgan.cli.exits): 0 exported, 1 the export failed (disk full, the written
version did not answer like the model), 2 bad input (no such file, not a run directory,
a run with no checkpoint yet, an existing --version), 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import sys

from kgan.cli import exits, plugins, quiet
from kgan.training import backend
from kgan.training.sources import (
    FINAL_MODEL,
    SourceError,
    check_keras_archive,
    find_model_file,
    load_keras_file,
)

PROG = "kgan-export"
__all__ = ["FINAL_MODEL", "SourceError", "find_model_file", "main"]


def default_model_name(source: str) -> str:
    """What the server will call the model: the `model_name` a run directory recorded
    (the name its own export used, which serving/models.config serves), else the run
    folder's name (also for its `final.keras`) or the file's stem, as a valid model name
    (characters other than letters, digits, '_', '.', '-' become '_')."""
    from kgan.serving.limits import check_model_name, model_name_from
    from kgan.training.config import read_json_object

    source = os.path.abspath(source)
    if os.path.basename(source) == FINAL_MODEL:  # runs/digits/final.keras -> digits
        source = os.path.dirname(source)
    if os.path.isdir(source):
        recorded = read_json_object(os.path.join(source, "config.json")).get("model_name")
        try:
            return check_model_name(recorded)
        except ValueError:  # not a run's, or no usable name
            return model_name_from(os.path.basename(source))
    return model_name_from(os.path.splitext(os.path.basename(source))[0])


def model_name(args: argparse.Namespace) -> str:
    """--model-name, checked (kgan-train's rule: never a path), or the default from SOURCE."""
    from kgan.serving.limits import check_model_name

    if args.model_name is None:
        return default_model_name(args.source)
    return check_model_name(args.model_name, "--model-name")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0],
        epilog="Prints the new version directory. See serving/README.md to serve it.")
    parser.add_argument("source", help="a run directory (its final.keras, or its newest "
                                       "checkpoint while it trains) or a .keras file")
    parser.add_argument("export_dir", help="folder of models (mounted at /models by serving/)")
    parser.add_argument("--model-name", help="served model name (default: the run's "
                        "recorded model name, else SOURCE's folder or file name)")
    parser.add_argument("--version", type=int, help="version number (default: next free)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --version if it exists")
    parser.add_argument("--num-classes", type=int,
                        help="classes of a bare conditional generator (a GAN knows them)")
    plugins.add_flag(parser)
    quiet.add_debug_flag(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (`kgan.cli.exits`)."""
    args = _parser().parse_args(argv)
    return exits.run(PROG, lambda: print(_export(args)), debug=args.debug,
                     bad_input=(SourceError, FileExistsError, ValueError),
                     interrupted="; nothing was published")


def _export(args: argparse.Namespace) -> str:
    from kgan.serving.limits import version_target

    backend.check_environment(PROG)
    name = model_name(args)  # before TensorFlow loads: bad input fails fast
    if args.overwrite and args.version is None:
        raise ValueError("--overwrite replaces the version --version names; without "
                         "--version every export takes the next free number")
    try:
        version_target(os.path.join(args.export_dir, name), args.version, args.overwrite)
    except FileExistsError as error:
        raise FileExistsError(str(error).replace("overwrite=True (kgan-export --overwrite)",
                                                 "--overwrite")) from None
    path = find_model_file(args.source)
    from kgan.training.rundir import writable_problem

    problem = writable_problem(args.export_dir)
    if problem:
        raise SourceError(f"EXPORT_DIR {args.export_dir}: {problem}")
    # The export is a TensorFlow graph, whatever backend trained the model: a .keras file
    # loads on either, so this process runs Keras on TensorFlow.
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    quiet.quiet_tensorflow(args.debug)
    from kgan.serving.export import export_generator

    check_keras_archive(path)
    try:
        plugins.load(args.imports)
    except ValueError as error:
        raise SourceError(str(error)) from None
    model = load_keras_file(path)
    return export_generator(
        model, args.export_dir, model_name=name,
        version=args.version, overwrite=args.overwrite, num_classes=args.num_classes)


if __name__ == "__main__":
    sys.exit(main())
