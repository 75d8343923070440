"""`kgan-train` / `python train.py`: flags -> validated TrainConfig -> kgan.training.run.

Every TrainConfig field is a flag (`--batch-size`, `--lr-d`, ...), generated from the
dataclass so the two never drift apart. Values come from, lowest first: the preset
(`--preset`, default `digits`), a config file (`--config run/config.json`), then flags.

Exit codes (`kgan.cli.exits`): 0 done, 1 the run stopped (non-finite loss, disk full,
run directory in use by other settings, lost worker), 2 bad flags or config, 130
interrupted by Ctrl-C and 143 by SIGTERM (state saved: run the same command to resume).

Example:
    $ python train.py                                   # digits demo, a few CPU minutes
    $ python train.py --preset mnist --epochs 5 --dry-run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

from kgan.cli import exits, network, plugins, quiet
from kgan.training import backend, cluster
from kgan.training.config import PRESETS, ConfigError, TrainConfig, preset_for, read_json_object
from kgan.training.errors import RunError, TrainingInterrupted
from kgan.training.rundir import run_lock

PROG = "kgan-train"


def main(argv: list[str] | None = None) -> int:
    """Parses `argv`, trains, prints where the results are; returns the exit code."""
    args = build_parser().parse_args(argv)
    with exits.sigterm_as_interrupt():
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    result = None
    try:
        _resume_as_recorded(args)
        _import_plugins(args)
        config = backend.resolve(config_from_args(args))
        if args.dry_run:
            print(config.to_json(), end="")
            return exits.OK
        network.check_download(config.dataset, config.data_dir, config.download)
        backend.activate(config.backend)
        quiet.quiet_tensorflow(args.debug)
        # A second kgan-train on this run directory refuses here, before TensorFlow works.
        with run_lock(config.run_dir, enabled=writes_run_dir()):
            from kgan.training import runner  # TensorFlow work starts here

            result = runner.run(config, restart=args.restart)
        exits.check_received()  # a signal whose exception Python dropped while exporting
    except TrainingInterrupted as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return exits.interrupted_status(error)
    except KeyboardInterrupt as error:
        how = exits.interruption(error)
        if result is not None:  # the work is done: say so, and still answer the signal
            print(result.summary())
            print(f"{PROG}: {how} after the run finished; nothing was lost.", file=sys.stderr)
        else:
            print(f"{PROG}: {how} before training started; nothing to save.", file=sys.stderr)
        return exits.interrupted_status(error)
    except (ConfigError, RunError) as error:
        if args.debug:
            raise
        print(f"{PROG}: error: {error}", file=sys.stderr)
        if getattr(error, "abandon_runtime", False):  # a JAX cluster lost a process
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(exits.STOPPED)
        return exits.BAD_INPUT if isinstance(error, ConfigError) else exits.STOPPED
    except Exception as error:  # one line, not a traceback; --debug shows it
        if args.debug:
            raise
        message = " ".join(str(error).split())[:500] or type(error).__name__
        print(f"{PROG}: error: {type(error).__name__}: {message} (--debug shows the "
              "traceback)", file=sys.stderr)
        return exits.STOPPED
    print(result.summary())
    return exits.OK


def _resume_as_recorded(args: argparse.Namespace) -> None:
    """A resume imports the modules and takes the backend its run recorded (in the run
    directory's config.json) unless flags or --config name them, so the same short
    command resumes a run that `--import` or `--backend jax` started."""
    if getattr(args, "restart", False):
        return
    from_file = read_json_object(args.config) if getattr(args, "config", None) else {}
    run_dir = getattr(args, "run_dir", None)
    if run_dir is None:
        try:
            run_dir = config_from_args(args).run_dir
        except ConfigError:  # names what a plugin registers: --import is needed anyway
            return
    recorded = read_json_object(os.path.join(run_dir, "config.json"))
    for field in ("imports", "backend"):
        if recorded.get(field) and not getattr(args, field, None) and not from_file.get(field):
            setattr(args, field, list(recorded[field]) if field == "imports" else recorded[field])


def _import_plugins(args: argparse.Namespace) -> None:
    """Imports `--import` modules (or those a `--config` file records) before the config
    is read, as they may register the network, loss, metric or data it names; on the
    backend the run asks for, as importing them loads Keras."""
    names, asked = list(getattr(args, "imports", None) or []), getattr(args, "backend", None)
    if getattr(args, "config", None):
        recorded = read_json_object(args.config)
        names = names or list(recorded.get("imports") or [])
        asked = asked or recorded.get("backend")
    if not names:
        return
    backend.activate(backend.resolve_name(asked or "auto"))
    try:
        plugins.load(names)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """One flag per TrainConfig field (default: unset, so presets and files show through)."""
    parser = argparse.ArgumentParser(
        prog=PROG, argument_default=argparse.SUPPRESS,
        usage=f"{PROG} [--preset NAME] [--config FILE] [--FIELD VALUE ...] (all: --help)",
        description="Train a GAN; rerun the same command to resume an interrupted run.",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="start from these settings (default: digits)")
    parser.add_argument("--config", metavar="FILE", help="JSON config (e.g. a run's config.json)")
    parser.add_argument("--dry-run", action="store_true", default=False,
                        help="print the resolved config as JSON and exit")
    parser.add_argument("--restart", action="store_true", default=False,
                        help="move an existing run directory aside and start over")
    quiet.add_debug_flag(parser)
    for field in dataclasses.fields(TrainConfig):
        if field.name != "preset":
            _add_field(parser, field)
    # kgan 0.1 flags, kept working: DCGAN's options, now under --network-args.
    parser.add_argument("--base-filters", type=int, dest="v01_base_filters", help=argparse.SUPPRESS)
    parser.add_argument("--max-filters", type=int, dest="v01_max_filters", help=argparse.SUPPRESS)
    parser.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction,
                        dest="v01_spectral_norm", help=argparse.SUPPRESS)
    return parser


def writes_run_dir(environ=os.environ) -> bool:
    """Whether this process writes the run directory: rank 0 of a multi-worker run
    (TF_CONFIG; `kgan.training.cluster`), or the only process; the other workers share
    the chief's directory. Needs no TensorFlow."""
    try:
        return cluster.rank(cluster.tf_config(environ)) == 0
    except (ValueError, TypeError, AttributeError):
        return True  # the strategy set-up reports a malformed TF_CONFIG


def _add_field(parser: argparse.ArgumentParser, field: dataclasses.Field) -> None:
    if field.name == "imports":  # spelled as kgan-export's: --import MODULE, repeatable
        parser.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                            help=plugins.IMPORT_HELP)
        return
    flag = "--" + field.name.replace("_", "-")
    kind = str(field.type)
    help_text = field.metadata.get("help")
    options = dict(help=help_text() if callable(help_text) else help_text, dest=field.name)
    if "choices" in field.metadata:
        options["choices"] = field.metadata["choices"]
    if kind == "bool":
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, **options)
    elif kind.startswith("tuple"):
        parser.add_argument(flag, type=_names, metavar="A,B", **options)
    elif kind.startswith("dict"):
        parser.add_argument(flag, type=_options, metavar="K=V,K=V", **options)
    else:
        base = {"int": int, "float": float, "str": str}[kind.split(" ")[0]]
        parser.add_argument(flag, type=_optional(base) if "None" in kind else base, **options)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _options(text: str) -> dict:
    """`{"a": 1}` (JSON) or `a=1,b=true,c=[32,64]`; values are read as JSON where they parse."""
    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError("expected a JSON object")
        return value
    options = {}
    for item in filter(None, (part.strip() for part in _split_top_level(text))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[key.strip()] = raw.strip()
    return options


def _split_top_level(text: str) -> list[str]:
    """Splits on commas outside brackets, so `widths=[64,32],blocks=1` is two items."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return [*parts, text[start:]]


_options.__name__ = "options"


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
    preset = (getattr(args, "preset", None) or file_values.get("preset")
              or preset_for(getattr(args, "dataset", None)))
    if preset not in PRESETS:  # a config file written by another kgan version
        raise ConfigError(f"config file {args.config} names preset {preset!r}, which this "
                          f"kgan does not have; presets: {', '.join(PRESETS)} (pass --preset "
                          "NAME to start from one)")
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if hasattr(args, f.name)}
    v01 = {k[4:]: v for k, v in vars(args).items() if k.startswith("v01_")}
    if v01:
        flags["network_args"] = {**v01, **flags.get("network_args", {})}
    base = {**PRESETS[preset], **file_values}
    values = {**base, **flags, "preset": preset}
    if flags.get("network", base.get("network")) != base.get("network"):
        # Another family's options do not carry over from the preset or file.
        values["network_args"] = flags.get("network_args", {})
    elif "network_args" in flags:
        values["network_args"] = {**base.get("network_args", {}), **flags["network_args"]}
    # One EMA form: a flag for one replaces the preset's or file's other.
    if flags.get("ema_decay") is not None and "ema_kimg" not in flags:
        values.update(ema_kimg=None, ema_rampup=None)
    if flags.get("ema_kimg") is not None and "ema_decay" not in flags:
        values["ema_decay"] = None
    if "dataset" in flags or "model_name" in flags:
        # A new data set gets its own name and run directory unless given.
        for derived in ("model_name", "run_dir"):
            if derived not in flags and derived not in PRESETS[preset]:
                values.pop(derived, None)
    return TrainConfig.from_dict(values)


if __name__ == "__main__":  # python -m kgan.cli.train
    sys.exit(main())
