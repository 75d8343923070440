"""`kgan-demo`: a local web page that draws images from an exported generator.

Usage:
    kgan-demo exports/digits                                   # load the export here
    kgan-demo digits --serving-url http://localhost:8501        # ask TF Serving (REST)
    kgan-demo exports/digits --grpc localhost:8500              # ... over gRPC

Each visit shows a new image and puts its permalink (`?seed=N`) in the address bar;
the page has a grid size, a class picker for conditional models, a truncation slider
for generators with a truncation input, an interpolation between two seeds, and PNG
downloads. MODEL is an export folder (EXPORT_DIR/<model>, whose newest version is
used, or a version folder); with --serving-url/--grpc it may also be just the served
model's name (a local export folder also names the model and describes it).

Needs the demo extra: pip install -e ".[demo]". Binds 127.0.0.1 unless --host says
otherwise (the page has no login: expose it only on networks you trust).
Exit status: 0 stopped (SIGTERM), 1 could not start (port taken, TF Serving
unreachable, failing or too slow: raise --timeout), 2 bad arguments (a --num-classes
the served model does not have, too) or missing extra, 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from kgan.cli import exits, quiet

EXTRA_PACKAGES = ("starlette", "uvicorn", "imageio")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kgan-demo", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("model", help="export folder (EXPORT_DIR/<model>[/<version>]), or the "
                                      "served model name with --serving-url/--grpc")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--serving-url", help="TF Serving REST root, e.g. http://localhost:8501")
    where.add_argument("--grpc", help="TF Serving gRPC host:port, e.g. localhost:8500")
    parser.add_argument("--model-name", help="served model name (default: MODEL's folder name)")
    parser.add_argument("--version", type=int, help="served version to pin (default: latest)")
    parser.add_argument("--num-classes", type=int,
                        help="classes of a served conditional model (default: asked; "
                             "given, it must match the server's answer)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for TF Serving per request (default %(default)s)")
    quiet.add_debug_flag(parser)
    return parser


def missing_extra() -> list[str]:
    """Packages of the demo extra that are not installed."""
    return [name for name in EXTRA_PACKAGES if importlib.util.find_spec(name) is None]


def make_backend(args: argparse.Namespace):
    """The backend the arguments name (embedded unless --serving-url/--grpc)."""
    from kgan.demo import backends

    if not 0 < args.timeout <= 86_400:  # also refuses nan
        raise ValueError(f"--timeout must be in (0, 86400] seconds, got {args.timeout}")
    if not (args.serving_url or args.grpc):
        if args.num_classes is not None or args.version is not None:
            raise ValueError("--num-classes and --version are for --serving-url/--grpc; an "
                             "export folder describes itself")
        from kgan.training.sources import is_keras_source

        if is_keras_source(args.model):
            raise ValueError(f"{args.model} is a saved model, not an export: kgan-demo shows "
                             f"an export folder; run kgan-export {args.model} exports, then "
                             "kgan-demo exports/<model>")
        return backends.EmbeddedBackend(args.model)
    # The clients use NumPy only: a page in front of TF Serving loads no TensorFlow.
    from kgan.serving.client import GrpcClient, RestClient

    local = os.path.isdir(args.model)
    name = args.model_name or (backends.model_name(args.model) if local else args.model)
    if args.serving_url:
        client = RestClient(args.serving_url, model=name, version=args.version,
                            timeout=args.timeout)
    else:
        client = GrpcClient(args.grpc, model=name, version=args.version, timeout=args.timeout)
    return backends.ServingBackend(client, num_classes=args.num_classes,
                                   info_dir=args.model if local else None)


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (0, 1, 2 or 130)."""
    args = _parser().parse_args(argv)
    missing = missing_extra()
    if missing:
        print(f"kgan-demo: error: the demo needs {', '.join(missing)}, which the demo extra "
              "installs: pip install -e \".[demo]\" (or pip install \"kgan[demo]\")",
              file=sys.stderr)
        return exits.BAD_INPUT
    if not 0 <= args.port <= 65535:
        return _fail(f"--port must be from 0 to 65535, got {args.port}", exits.BAD_INPUT)
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("kgan-demo: stopped", file=sys.stderr)
        return exits.INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    quiet.quiet_tensorflow(args.debug)
    from kgan.demo.app import create_app
    from kgan.demo.server import bind, serve, url_of

    try:
        backend = make_backend(args)
    except (ValueError, FileNotFoundError, KeyError) as error:
        return _fail(error, exits.BAD_INPUT)
    except Exception as error:  # TF Serving unreachable or refusing: one line, status 1
        if args.debug:
            raise
        return _fail(error, exits.STOPPED)
    try:
        sock = bind(args.host, args.port)
    except OSError as error:
        backend.close()
        return _fail(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}",
                     exits.STOPPED)
    info = backend.info
    print(f"kgan-demo: {info.name} ({backend.kind}: {info.source}) at {url_of(sock)}/ "
          "- Ctrl-C to stop", flush=True)
    try:
        serve(create_app(backend), sock)
    finally:
        backend.close()
        sock.close()
    return exits.OK  # a server stopped by SIGTERM (systemd, docker stop) ends cleanly


def _fail(error, status: int) -> int:
    print(f"kgan-demo: error: {exits.one_line(error)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
