"""`kgan-train` / `python train.py`: flags -> validated TrainConfig -> kgan.training.run.

Every TrainConfig field is a flag (`--batch-size`, `--lr-d`, ...), generated from the
dataclass so the two never drift apart. Values come from, lowest first: the preset
(`--preset`, default `digits`), a config file (`--config run/config.json`), then flags.

Exit codes: 0 done, 1 the run stopped (non-finite loss, run directory in use by other
settings), 2 bad flags or config, 130 interrupted (state saved, run again to resume).

Example:
    $ python train.py                                   # digits demo, a few CPU minutes
    $ python train.py --preset mnist --epochs 5 --dry-run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from kgan.checkpointing import RunError, TrainingInterrupted
from kgan.config import PRESETS, ConfigError, TrainConfig

PROG = "kgan-train"


def main(argv: list[str] | None = None) -> int:
    """Parses `argv`, trains, prints where the results are; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        if args.dry_run:
            print(config.to_json(), end="")
            return 0
        from kgan import training  # TensorFlow work starts here

        result = training.run(config, restart=args.restart)
    except TrainingInterrupted as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted before training started; nothing to save.",
              file=sys.stderr)
        return 130
    except (ConfigError, RunError) as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1
    print(result.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """One flag per TrainConfig field (default: unset, so presets and files show through)."""
    parser = argparse.ArgumentParser(
        prog=PROG, argument_default=argparse.SUPPRESS,
        description="Train a GAN; rerun the same command to resume an interrupted run.",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="start from these settings (default: digits)")
    parser.add_argument("--config", metavar="FILE", help="JSON config (e.g. a run's config.json)")
    parser.add_argument("--dry-run", action="store_true", default=False,
                        help="print the resolved config as JSON and exit")
    parser.add_argument("--restart", action="store_true", default=False,
                        help="move an existing run directory aside and start over")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show tracebacks for errors")
    for field in dataclasses.fields(TrainConfig):
        if field.name != "preset":
            _add_field(parser, field)
    return parser


def _add_field(parser: argparse.ArgumentParser, field: dataclasses.Field) -> None:
    flag = "--" + field.name.replace("_", "-")
    kind = str(field.type)
    options = dict(help=field.metadata.get("help"), dest=field.name)
    if "choices" in field.metadata:
        options["choices"] = field.metadata["choices"]
    if kind == "bool":
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
    elif kind.startswith("tuple"):
        parser.add_argument(flag, type=_names, metavar="A,B", **options)
    else:
        base = {"int": int, "float": float, "str": str}[kind.split(" ")[0]]
        parser.add_argument(flag, type=_optional(base) if "None" in kind else base, **options)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _optional(base):
    def parse(text: str):
        return None if text.lower() == "none" else base(text)

    parse.__name__ = base.__name__  # argparse names the type in its error message
    return parse


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """preset < config file < flags."""
    file_values = {}
    if getattr(args, "config", None):
        file_values = json.loads(TrainConfig.load(args.config).to_json())
    preset = getattr(args, "preset", None) or file_values.get("preset", "digits")
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if hasattr(args, f.name)}
    values = {**PRESETS[preset], **file_values, **flags, "preset": preset}
    if "dataset" in flags or "model_name" in flags:
        # A new data set gets its own name and run directory unless given.
        for derived in ("model_name", "run_dir"):
            if derived not in flags and derived not in PRESETS[preset]:
                values.pop(derived, None)
    return TrainConfig.from_dict(values)
