"""`run(config)`: build everything, train with exact resume, export. Used by `train.py`.

Flow: prepare the run directory (or check it holds this very config) -> pick the
strategy and dtype policy -> describe the data -> build and compile the GAN inside the
strategy scope -> restore the newest backup -> train epoch by epoch -> save
`final.keras` and export a TF Serving version.

Each epoch's batches are a pure function of (seed, epoch): the pipeline is rebuilt
with a seed derived from both, and a resumed epoch skips the batches it already
trained on. With the stateless training noise of `kgan.GAN` and deterministic ops,
a run killed at any step and resumed ends bit-identical to one never interrupted.

Example:
    >>> from kgan.training.config import TrainConfig
    >>> result = run(TrainConfig.from_preset("digits", epochs=2))
    >>> print(result.summary())
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import sys
import tempfile

import keras
import tensorflow as tf

from kgan.gan import GAN
from kgan.training import distribute, monitoring, validation
from kgan.training.callbacks import HParams, Profiler
from kgan.training.checkpointing import RunError, RunState, find_checkpoints
from kgan.training.config import ConfigError, TrainConfig
from kgan.training.guards import NonFiniteGuard, Saver
from kgan.training.inputs import data_info as _data_info
from kgan.training.inputs import epoch_dataset, epoch_seed
from kgan.training.recipe import build_gan
from kgan.training.rundir import (
    RunPaths,
    RunResult,
    check_export_dir,
    check_run_dir,
    count,
    inside,
    interrupted,
    prepare_run_dir,
    read_result,
    refuse_overwriting_trained_run,
    save_final,
    write_result,
    write_run_dir,
)
from kgan.training.sources import intact_keras_archive

__all__ = ["RunPaths", "RunResult", "build_gan", "epoch_dataset", "epoch_seed",
           "prepare_run_dir", "run"]

_JIT = {"auto": "auto", "on": True, "off": False}


def run(config: TrainConfig, restart: bool = False, callbacks=(), verbose: int | None = None
        ) -> RunResult:
    """Trains (or resumes) the run `config` describes, then saves and exports it.

    Args:
        config: the validated run configuration.
        restart: move an existing run directory aside and start over.
        callbacks: extra Keras callbacks, called after kgan's own each step.
        verbose: Keras verbosity; default a progress bar on a terminal, else one line
            per epoch.

    Returns:
        A `RunResult` (paths of the final model and the export).

    Raises:
        ConfigError: the config cannot run here (data, strategy, batch split, export dir).
        RunError: the run directory belongs to another config, a loss became
            non-finite (`NonFiniteLossError`), a checkpoint could not be written, or a
            stop signal arrived (`TrainingInterrupted`, state saved).
    """
    check_export_dir(config)
    _check_feature_files(config)
    config = _on_this_backend(config)
    # The strategy comes before any other TensorFlow op: a multi-worker strategy cannot
    # configure collective ops once the runtime has started.
    config, env = _with_precision(config, restart)
    try:
        return _run(config, env, restart, list(callbacks), verbose)
    except Exception as error:  # a lost worker: one line that says so; else as it was
        if env.num_workers < 2:
            raise
        latest = find_checkpoints(RunPaths(config.run_dir).backup)[0]
        latest = latest[-1] if latest else None
        lost = (distribute.lost_worker_error(error, env, latest)
                if isinstance(error, tf.errors.OpError)
                else distribute.lost_jax_worker_error(error, env, latest))
        if lost is None:
            raise
        raise lost from None


def _check_feature_files(config: TrainConfig) -> None:
    """Fails before the run directory changes when the metrics' feature model is missing."""
    from kgan.evaluation import features

    if not config.metrics:
        return
    try:
        if config.metrics_features == "inception":
            features.resolve_inception_weights(config.inception_weights)
        elif config.metrics_features.endswith(".keras") and not os.path.isfile(
                config.metrics_features):
            raise FileNotFoundError(f"classifier model not found: {config.metrics_features}")
    except FileNotFoundError as error:
        raise ConfigError(str(error)) from None


def _run(config: TrainConfig, env: distribute.Setup, restart: bool, callbacks: list,
         verbose: int | None) -> RunResult:
    info, steps_per_epoch = _data_info(config)
    _check_data_use(config, info)
    paths = check_run_dir(config, restart) if env.chief else RunPaths(config.run_dir)
    # JAX's processes run one SPMD program: what the chief computes on the model (sample
    # grids, metrics, final.keras) every process computes too, writing into a scratch
    # folder. TensorFlow's other workers need no such copies.
    scratch = (RunPaths(tempfile.mkdtemp(prefix="kgan-worker-"))
               if _mirrors_chief(env) else None)
    with env.strategy.scope():
        gan = build_gan(config, info.num_classes, env.jit_compile, steps_per_epoch)
    state = RunState(gan, paths.root, steps_per_epoch, config.keep_checkpoints,
                     chief=env.chief)
    try:
        _resume(config, state, paths)
        if env.chief:  # the request is accepted: only now does the run dir change
            write_run_dir(config, paths)
        _announce(config, paths, state, env, gan)
        if state.step == 0 and env.chief:
            monitoring.write_real_grid(config, paths, info)
        elif env.chief:
            dropped = monitoring.drop_events_after(paths.logs, state.step)
            if dropped:
                print(f"kgan: removed {dropped} TensorBoard events the stopped run logged "
                      f"after step {state.step}, where it resumes", flush=True)
        if state.step < config.epochs * steps_per_epoch:
            if verbose is None:
                verbose = 1 if sys.stdout.isatty() else 2
            _train(config, gan, state, paths, info, callbacks, verbose, env, scratch)
        return _finish(config, gan, state, paths, env, scratch)
    finally:
        state.close()
        if scratch is not None:
            shutil.rmtree(scratch.root, ignore_errors=True)


def _mirrors_chief(env: distribute.Setup) -> bool:
    """Whether this process repeats the chief's computations on the model: a non-chief
    process of a multi-process JAX run, where every process joins every computation."""
    return env.num_workers > 1 and not env.chief and keras.backend.backend() == "jax"


def _check_data_use(config: TrainConfig, info) -> None:
    """What the data cannot do, refused before the run directory changes."""
    if (config.metrics and config.metrics_features == "classifier"
            and not info.num_classes):
        raise ConfigError(f"--metrics with the default features (classifier) needs class "
                          f"labels, which {config.dataset!r} lacks: use --metrics-features "
                          "inception (with --inception-weights) or a .keras model")
    if info.kind == "folder" and inside(config.run_dir, info.name):
        raise ConfigError(f"the run directory {config.run_dir} is inside the image folder "
                          f"{info.name}: its sample grids would be read as training images "
                          "by the next run; pass --run-dir outside the folder")


def _resume(config: TrainConfig, state: RunState, paths: RunPaths) -> None:
    """Restores the newest checkpoint; refuses what would overwrite a run's progress."""
    start = state.restore()
    if start > config.epochs * state.steps_per_epoch:
        raise RunError(f"{paths.root} has already trained {start // state.steps_per_epoch} "
                       "epochs; ask for at least that many (--epochs)")
    if start == 0:
        refuse_overwriting_trained_run(paths)


# ------------------------------------------------------------------ building
def _on_this_backend(config: TrainConfig) -> TrainConfig:
    """The config with this process's Keras backend recorded (`kgan.training.backend`
    chooses it before Keras loads); a config asking for another is refused."""
    active = keras.backend.backend()
    if config.backend not in ("auto", active):
        raise ConfigError(f"the config asks for the {config.backend} backend but Keras runs on "
                          f"{active} in this process; set KERAS_BACKEND={config.backend} "
                          "before importing keras (kgan-train --backend does)")
    return dataclasses.replace(config, backend=active)


def _with_precision(config: TrainConfig, restart: bool
                    ) -> tuple[TrainConfig, distribute.Setup]:
    """Sets the run up with its dtype policy resolved, as config.json then records it:
    `auto` picks one for this hardware on a fresh run, and on a resumed run is the policy
    the run started with, so a job rescheduled onto other GPUs (bf16 on an A100, fp16 on
    a V100) resumes exactly instead of failing on the checkpoint's dtypes. Runs recorded
    as `auto` (kgan up to 0.3) resolve here, as they did."""
    saved = None if restart else _saved_precision(config.run_dir)
    started = config.mixed_precision == "auto" and saved not in (None, "auto")
    if started:
        config = dataclasses.replace(config, mixed_precision=saved)
    env = _setup(config)
    if started:
        env = dataclasses.replace(env, policy_reason="auto: the policy this run started with")
    elif config.mixed_precision == "auto" and saved is None:
        config = dataclasses.replace(config, mixed_precision=env.policy)
    return config, env


def _saved_precision(run_dir: str) -> str | None:
    """The policy in the run directory's config.json; None without a readable one (the
    run directory check then says what is wrong)."""
    try:
        return TrainConfig.load(os.path.join(run_dir, "config.json")).mixed_precision
    except ConfigError:
        return None


def _setup(config: TrainConfig) -> distribute.Setup:
    if config.deterministic and config.backend == "tensorflow" and config.jit_compile == "on":
        raise ConfigError("--jit-compile on and --deterministic exclude each other on "
                          "TensorFlow (Keras compiles no XLA under deterministic ops): drop "
                          "one, or train with --backend jax")
    if config.deterministic and config.backend == "tensorflow":
        tf.config.experimental.enable_op_determinism()
    if config.deterministic and config.backend == "jax":
        # XLA on the CPU is deterministic; on GPUs it must be asked before JAX starts.
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    try:
        env = distribute.setup(config.strategy, config.mixed_precision,
                               _JIT[config.jit_compile])
        distribute.check_global_batch(config.batch_size, env.num_replicas)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if config.deterministic and config.backend == "tensorflow" and env.jit_compile:
        # Keras compiles no XLA under TensorFlow's op determinism (not every op has a
        # deterministic XLA kernel); say so rather than let Keras turn it off quietly.
        env = dataclasses.replace(env, jit_compile=False,
                                  jit_reason="--deterministic on TensorFlow")
    keras.utils.set_random_seed(config.seed)
    return env


# ------------------------------------------------------------------ training
def _announce(config: TrainConfig, paths: RunPaths, state: RunState, env, gan) -> None:
    epoch, batch = state.position()
    total = config.epochs * state.steps_per_epoch
    if state.step >= total:
        where = f"training is complete ({count(config.epochs, 'epoch')}, step {state.step})"
    elif state.step:
        where = f"resuming at epoch {epoch + 1}, batch {batch} (step {state.step})"
    else:
        where = "starting"
    worker = "" if env.chief else f"worker {env.worker_index} of {env.num_workers}: "
    print(f"kgan: {worker}{where}; {config.dataset} at {config.resolution}px, "
          f"{config.network} (G {_parameters(gan.generator)}, D "
          f"{_parameters(gan.discriminator)} parameters), "
          f"{count(config.epochs, 'epoch')} x {count(state.steps_per_epoch, 'step')}, "
          f"{env.num_replicas} replica(s), {env.policy}"
          f"{f' ({env.policy_reason})' if env.policy_reason else ''}, "
          f"XLA {'on' if env.jit_compile else 'off'}"
          f"{f' ({env.jit_reason})' if env.jit_reason else ''}; run dir {paths.root}",
          flush=True)


def _parameters(model: keras.Model) -> str:
    """A network's size as people quote it: 24.8M, 412k, 960."""
    n = model.count_params()
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.0f}k" if n >= 1e4 else str(n)


class _StopAtEpochEnd(keras.callbacks.Callback):
    """Ends `fit` after one epoch, so the next epoch gets its own seeded pipeline while
    Keras still shows "Epoch e/N" with the run's real N; `requested` says whether another
    callback (EarlyStopping, a user's) had asked training to stop."""

    requested = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.requested = bool(self.model.stop_training)
        self.model.stop_training = True


class _WholeRun(keras.callbacks.Callback):
    """A user's callback seen over the whole run, which is one `fit` per epoch: its
    `on_train_begin` runs once, at the first, and `on_train_end` once, at the end (so
    EarlyStopping keeps its patience and CSVLogger its rows); every other hook passes."""

    def __init__(self, callback: keras.callbacks.Callback):
        super().__init__()
        self.callback = callback
        self.begun = False

    def set_model(self, model) -> None:
        super().set_model(model)
        self.callback.set_model(model)

    def set_params(self, params) -> None:
        super().set_params(params)
        self.callback.set_params(params)

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.begun:
            self.begun = True
            self.callback.on_train_begin(logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called by the runner once the run's training ends, not by each `fit`."""


def _forward(hook: str):
    return lambda self, *args, **kwargs: getattr(self.callback, hook)(*args, **kwargs)


for _hook in ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
              "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end"):
    setattr(_WholeRun, _hook, _forward(_hook))


def _train(config, gan, state, paths, info, extra, verbose, env: distribute.Setup,
           scratch: RunPaths | None = None) -> None:
    saver = Saver(state, config.checkpoint_every,
                  cluster=env if env.num_workers > 1 else None)
    # Only the chief logs: TensorBoard, samples and metrics are files of the run dir (a
    # JAX process that mirrors the chief logs the same into its scratch folder).
    logging = (monitoring.logging_callbacks(config, paths, info) if env.chief else
               monitoring.logging_callbacks(config, scratch, info) if scratch else [])
    once = [HParams(paths.logs, monitoring.hparams(config, env))] if env.chief else []
    if config.profile_steps and env.chief:  # Keras's profile_batch: 1-based, inclusive
        start, stop = validation.profile_window(config.profile_steps)
        extra = [*extra, Profiler(paths.logs, start=start - 1, stop=stop)]
    users = [_WholeRun(callback) for callback in extra]
    with saver:
        try:
            while state.step < config.epochs * state.steps_per_epoch:
                epoch, batch = state.position()
                before = state.step
                dataset = epoch_dataset(config, epoch, state.steps_per_epoch, skip=batch)
                stop = _StopAtEpochEnd()
                history = gan.fit(
                    distribute.to_device(dataset, env.input_device),
                    initial_epoch=epoch, epochs=config.epochs,
                    steps_per_epoch=state.steps_per_epoch - batch, shuffle=False,
                    verbose=verbose if env.chief else 0,
                    callbacks=[NonFiniteGuard(state), saver, *logging, *once, *users, stop],
                )
                once = []
                if state.step == before:
                    raise RunError(f"epoch {epoch + 1} trained no step: the data ran out")
                if stop.requested:  # a callback ended the run early (EarlyStopping)
                    print(f"kgan: a callback stopped training at step {state.step}; the "
                          "same command trains on to --epochs", flush=True)
                    break
            logs = {k: v[-1] for k, v in history.history.items()} if users else {}
            for user in users:
                user.callback.on_train_end(logs)
        except KeyboardInterrupt as error:  # a second signal, in the middle of a step
            raise interrupted(error, f"stopped in the middle of step {state.step + 1}; not "
                              f"saved, the last checkpoint is {state.latest or 'none yet'}"
                              ) from None
        saver.check()  # a signal after the last batch: saved at the epoch end, stop now


# ------------------------------------------------------------------- the end
def _finish(config: TrainConfig, gan: GAN, state: RunState, paths: RunPaths,
            env: distribute.Setup, scratch: RunPaths | None = None) -> RunResult:
    """Saves `final.keras` and exports, once per trained length of the run (the chief
    only: the other workers of a multi-worker run hold the same weights; on JAX they
    save the same into `scratch` when the chief saves, as the save is collective)."""
    def result(export: str | None) -> RunResult:
        return RunResult(paths.root, config.epochs, state.step, paths.final_model, export,
                         worker=env.worker_index, backend=config.backend,
                         precision=env.policy, replicas=env.num_replicas)

    saved, export = _finished_before(config, state, paths) if env.chief else (True, None)
    if env.num_workers > 1 and keras.backend.backend() == "jax":
        saved = not env.sum_over_workers([float(not saved)])[0]  # the chief's answer
    if not env.chief:
        if scratch is not None and not saved:
            save_final(gan, scratch, "the chief saves the run")
        return result(None)
    if saved and (export or not config.export):
        print("kgan: this run is already complete; nothing to do.")
        return result(export)
    where = f"training is complete and saved in {state.latest}"
    try:
        if not saved:
            save_final(gan, paths, where)
        if config.export and not export:
            export = _export(config, gan, paths)
    except KeyboardInterrupt as error:
        raise interrupted(error, f"interrupted after training ({where})") from None
    finished = result(export)
    write_result(paths, finished)
    return finished


def _finished_before(config: TrainConfig, state: RunState, paths: RunPaths
                     ) -> tuple[bool, str | None]:
    """Whether an earlier command already wrote this length of run's `final.keras`, and
    the export it made if that is still there: a re-run writes only what is missing (a
    deleted final.keras, an export that an earlier `--no-export` skipped)."""
    previous = read_result(paths)
    if previous is None or previous.steps != state.step:
        return False, None
    saved = intact_keras_archive(paths.final_model)  # a damaged one is written again
    export = None
    if previous.export:  # still there, in the folder this command would export to
        version = os.path.basename(os.path.normpath(previous.export))
        path = os.path.join(config.export_dir, config.model_name, version)
        export = path if os.path.isdir(path) else None
    if not saved or (config.export and not export):
        damaged = " (damaged)" if os.path.isfile(paths.final_model) else ""
        missing = [name for name, gone in ((f"final.keras{damaged}", not saved),
                                           ("the export", config.export and not export)) if gone]
        print(f"kgan: this run is complete; writing what is missing: {', '.join(missing)}.")
    return saved, export


def _export(config: TrainConfig, gan: GAN, paths: RunPaths) -> str:
    try:
        from kgan.serving.export import export_generator, export_keras_file

        if keras.backend.backend() != "tensorflow":  # exported by TensorFlow, from final.keras
            return export_keras_file(paths.final_model, config.export_dir, config.model_name)
        return export_generator(gan, config.export_dir, model_name=config.model_name)
    except KeyboardInterrupt as error:
        raise interrupted(error, f"interrupted while exporting to {config.export_dir}; "
                          f"the trained model is saved in {paths.final_model} (kgan-export "
                          "exports it)") from None
    except (OSError, ValueError, tf.errors.OpError) as error:
        cause = ("disk full" if getattr(error, "errno", None) == errno.ENOSPC
                 else " ".join(str(error).split())[:300])
        raise RunError(f"export to {config.export_dir} failed ({cause}); the trained model "
                       f"is saved in {paths.final_model}: run the same command again, or "
                       f"kgan-export {paths.root} {config.export_dir}") from None
