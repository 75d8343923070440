"""`--import MODULE` for every kgan command: the user's own registered pieces (network
families, losses, metrics, data sources, Keras layers) live in the user's modules, which
a command imports (`kgan.plugins.load`) before it reads a config or loads a model."""

from __future__ import annotations

import argparse

from kgan.plugins import load, load_failure

__all__ = ["IMPORT_HELP", "add_flag", "load", "load_failure"]

IMPORT_HELP = ("import MODULE first (repeatable): where your own network family, loss, "
               "metric, data source or Keras layers are registered")


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        metavar="MODULE", help=IMPORT_HELP)
