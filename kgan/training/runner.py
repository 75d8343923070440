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
import sys

import keras
import numpy as np
import tensorflow as tf

from kgan import data
from kgan.gan import GAN
from kgan.training import distribute
from kgan.training.callbacks import (
    EPOCH_RUN,
    HParams,
    ImageGrid,
    QualityMetrics,
    ScalarLogger,
    image_grid,
    summary_writer,
)
from kgan.training.checkpointing import RunError, RunState, find_checkpoints
from kgan.training.config import RESUMABLE_FIELDS, ConfigError, TrainConfig
from kgan.training.guards import NonFiniteGuard, Saver
from kgan.training.recipe import build_gan
from kgan.training.rundir import (
    RunPaths,
    RunResult,
    check_export_dir,
    check_run_dir,
    interrupted,
    prepare_run_dir,
    read_result,
    save_final,
    write_result,
    write_run_dir,
)

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
    env = _setup(config)
    try:
        return _run(config, env, restart, list(callbacks), verbose)
    except tf.errors.OpError as error:
        latest = find_checkpoints(os.path.join(config.run_dir, "backup"))[0]
        lost = distribute.lost_worker_error(error, env, latest[-1] if latest else None)
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
    with env.strategy.scope():
        gan = build_gan(config, info.num_classes, env.jit_compile, steps_per_epoch)
    state = RunState(gan, paths.root, steps_per_epoch, config.keep_checkpoints,
                     chief=env.chief)
    try:
        _resume(config, state, paths)
        if env.chief:  # the request is accepted: only now does the run dir change
            write_run_dir(config, paths)
        _announce(config, paths, state, env)
        if state.step == 0 and env.chief:
            write_real_grid(config, paths, info)
        if state.step < config.epochs * steps_per_epoch:
            if verbose is None:
                verbose = 1 if sys.stdout.isatty() else 2
            _train(config, gan, state, paths, info, callbacks, verbose, env)
        return _finish(config, gan, state, paths, env)
    finally:
        state.close()


def _check_data_use(config: TrainConfig, info) -> None:
    """What the data cannot do, refused before the run directory changes."""
    if (config.metrics and config.metrics_features == "classifier"
            and not info.num_classes):
        raise ConfigError(f"--metrics with the default features (classifier) needs class "
                          f"labels, which {config.dataset!r} lacks: use --metrics-features "
                          "inception (with --inception-weights) or a .keras model")
    if info.kind == "folder" and _inside(config.run_dir, info.name):
        raise ConfigError(f"the run directory {config.run_dir} is inside the image folder "
                          f"{info.name}: its sample grids would be read as training images "
                          "by the next run; pass --run-dir outside the folder")


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _resume(config: TrainConfig, state: RunState, paths: RunPaths) -> None:
    """Restores the newest checkpoint; refuses what would overwrite a run's progress."""
    start = state.restore()
    if start > config.epochs * state.steps_per_epoch:
        raise RunError(f"{paths.root} has already trained {start // state.steps_per_epoch} "
                       "epochs; ask for at least that many (--epochs)")
    trained = [p for p in (paths.final_model, paths.result) if os.path.exists(p)]
    if start == 0 and trained:
        raise RunError(f"{paths.root} holds a trained run ({os.path.basename(trained[0])}) "
                       f"but no checkpoint in {paths.backup} or {paths.checkpoints}; "
                       "training again would overwrite it: pass --restart to move it aside "
                       "and start over")


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


def _setup(config: TrainConfig) -> distribute.Setup:
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
    keras.utils.set_random_seed(config.seed)
    return env


# ---------------------------------------------------------------------- data
def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: a hash of (seed, epoch), so any epoch's order can
    be rebuilt without replaying the epochs before it."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] & 0x7FFFFFFF)


def epoch_dataset(config: TrainConfig, epoch: int, steps: int, skip: int = 0) -> tf.data.Dataset:
    """Batches `skip`..`steps` of epoch `epoch`, in an order fixed by (seed, epoch).

    Skipping reads (but does not train on) the skipped batches, so resuming costs at
    most one epoch of input work. `repeat` lets `steps` exceed one pass over the data.
    """
    dataset = _load(config, seed=epoch_seed(config.seed, epoch))
    return dataset.repeat().skip(skip).take(steps - skip)


def data_options(config: TrainConfig) -> data.DataOptions:
    """The config's data settings as one `kgan.data.DataOptions`."""
    return data.DataOptions(resolution=config.resolution, channels=config.channels,
                            batch_size=config.batch_size, conditional=config.conditional,
                            data_dir=config.data_dir, download=config.download)


def _load(config: TrainConfig, seed: int, conditional: bool | None = None) -> tf.data.Dataset:
    try:
        options = data_options(config).replace(seed=seed, shuffle=True)
        if conditional is not None:
            options = options.replace(conditional=conditional)
        return data.load(config.dataset, options)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from None


def _data_info(config: TrainConfig):
    """The source's description and the epoch length; fails fast on missing data."""
    try:
        info = data.describe(config.dataset, data_dir=config.data_dir)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from None
    # Missing TFDS data fails here (or downloads); each source says what a conditional
    # run needs (e.g. one subfolder per class).
    _load(config, seed=config.seed)
    if info.num_examples is None:
        info = data.describe(config.dataset, data_dir=config.data_dir)
    steps = config.steps_per_epoch or info.steps_per_epoch(config.batch_size)
    if not steps:
        raise ConfigError(f"cannot tell how many batches {config.dataset!r} has; pass "
                          "--steps-per-epoch")
    return info, steps


# ------------------------------------------------------------------ training
def _announce(config: TrainConfig, paths: RunPaths, state: RunState, env) -> None:
    epoch, batch = state.position()
    total = config.epochs * state.steps_per_epoch
    if state.step >= total:
        where = f"training is complete ({config.epochs} epochs, step {state.step})"
    elif state.step:
        where = f"resuming at epoch {epoch + 1}, batch {batch} (step {state.step})"
    else:
        where = "starting"
    worker = "" if env.chief else f"worker {env.worker_index} of {env.num_workers}: "
    print(f"kgan: {worker}{where}; {config.dataset} at {config.resolution}px, "
          f"{config.epochs} epoch{'s' if config.epochs != 1 else ''} x "
          f"{state.steps_per_epoch} steps, "
          f"{env.num_replicas} replica(s), {env.policy}"
          f"{f' ({env.policy_reason})' if env.policy_reason else ''}; run dir {paths.root}",
          flush=True)


class _StopAtEpochEnd(keras.callbacks.Callback):
    """Ends `fit` after one epoch, so the next epoch gets its own seeded pipeline while
    Keras still shows "Epoch e/N" with the run's real N."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.model.stop_training = True


def _train(config, gan, state, paths, info, extra, verbose, env: distribute.Setup) -> None:
    saver = Saver(state, config.checkpoint_every,
                  cluster=env.strategy if env.num_workers > 1 else None)
    # Only the chief logs: TensorBoard, samples and metrics are files of the run dir.
    logging = _logging_callbacks(config, paths, info) if env.chief else []
    once = [HParams(paths.logs, _hparams(config, env))] if env.chief else []
    with saver:
        try:
            while state.step < config.epochs * state.steps_per_epoch:
                epoch, batch = state.position()
                before = state.step
                dataset = epoch_dataset(config, epoch, state.steps_per_epoch, skip=batch)
                gan.fit(
                    distribute.to_device(dataset, env.input_device),
                    initial_epoch=epoch, epochs=config.epochs,
                    steps_per_epoch=state.steps_per_epoch - batch, shuffle=False,
                    verbose=verbose if env.chief else 0,
                    callbacks=[NonFiniteGuard(state), saver, *logging, *once, *extra,
                               _StopAtEpochEnd()],
                )
                once = []
                if state.step == before:
                    raise RunError(f"epoch {epoch + 1} trained no step: the data ran out")
        except KeyboardInterrupt as error:  # a second signal, in the middle of a step
            raise interrupted(error, f"stopped in the middle of step {state.step + 1}; not "
                              f"saved, the last checkpoint is {state.latest or 'none yet'}"
                              ) from None
        saver.check()  # a signal after the last batch: saved at the epoch end, stop now


def _hparams(config: TrainConfig, env: distribute.Setup) -> dict:
    """The hyperparameters of the hparams table: the fields that decide what a step
    computes, with `auto` precision resolved. Fields a resume may change (epochs, paths,
    logging) stay out: TensorBoard keeps the first session a run wrote, so they would
    show their first values after a resume changed them; `metrics_features` stays in,
    as it says what the quality columns measure."""
    values = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_FIELDS}
    return {**values, "backend": config.backend, "mixed_precision": env.policy,
            "metrics_features": config.metrics_features}


def _logging_callbacks(config: TrainConfig, paths: RunPaths, info) -> list:
    found = [_quality_metrics(config, paths, info)] if config.metrics else []
    num_images, columns = sample_grid(config.num_samples,
                                      info.num_classes if config.conditional else None)
    return found + [
        ScalarLogger(paths.logs, update_freq=config.log_every_n_steps),
        ImageGrid(paths.logs, samples_dir=paths.samples, num_images=num_images,
                  columns=columns, every=config.sample_every),
    ]


def write_real_grid(config: TrainConfig, paths: RunPaths, info) -> str:
    """`samples/real.png` (and TensorBoard image `real` at step 0): real images as the
    GAN sees them (crop, orientation, channels, resolution) in the sample grids' layout,
    one class per column in a conditional run, so the two compare at a glance."""
    classes = info.num_classes if config.conditional else None
    count, columns = sample_grid(config.num_samples, classes)
    by_class = columns is not None and classes is not None
    rows = count // columns if by_class else count
    cells: list[list[np.ndarray]] = [[] for _ in range(columns if by_class else 1)]
    for batch in _load(config, seed=_REFERENCE_SEED).take(256).as_numpy_iterator():
        images, labels = batch if isinstance(batch, tuple) else (batch, None)
        for image, label in zip(images, labels if by_class else [0] * len(images),
                                strict=True):
            if len(cells[int(label)]) < rows:
                cells[int(label)].append(image)
        if all(len(cell) == rows for cell in cells):
            break
    # Grid cell k shows class k % columns, as GAN.generate's default labels do; a class
    # with too few images leaves its cells black.
    blank = np.full(next(cell[0] for cell in cells if cell).shape, -1.0, np.float32)
    width = len(cells)
    grid = image_grid(np.stack([
        cells[k % width][k // width] if k // width < len(cells[k % width]) else blank
        for k in range(count if by_class else len(cells[0]))]), columns)
    writer = summary_writer(os.path.join(paths.logs, EPOCH_RUN))
    with writer.as_default(step=0):
        tf.summary.image("real", grid[None], max_outputs=1)
    writer.flush()
    os.makedirs(paths.samples, exist_ok=True)
    path = os.path.join(paths.samples, "real.png")
    tf.io.write_file(path, tf.io.encode_png(grid))
    return path


# Up to this many classes, a conditional run's sample grid has one column per class.
MAX_CLASS_COLUMNS = 16


def sample_grid(num_samples: int, num_classes: int | None) -> tuple[int, int | None]:
    """The sample grid's image count and columns. Image k is drawn for class
    k % num_classes (`GAN.generate`'s default labels), so with one column per class each
    column shows one class; the count is rounded up to whole rows. Otherwise the grid is
    square (columns None)."""
    if not num_classes or num_classes > MAX_CLASS_COLUMNS:
        return num_samples, None
    rows = -(-num_samples // num_classes)
    return rows * num_classes, num_classes


def _quality_metrics(config: TrainConfig, paths: RunPaths, info) -> QualityMetrics:
    """Scores against a fixed real sample with features fixed for the whole run (a trained
    domain classifier is saved in the run dir, so resumed runs score on the same scale).
    Neither depends on the run's seed or `metrics_samples`: runs on the same data (at
    the same resolution) score against the same real images with the same classifier
    recipe, so a seed sweep compares on one scale. Extractors compute in float32
    whatever the run's dtype policy (kgan.evaluation.features)."""
    from kgan.evaluation import features

    labelled = config.metrics_features == "classifier"  # labels: _check_data_use
    try:
        if config.metrics_features == "inception":
            extractor = features.InceptionFeatures(config.inception_weights)
        elif labelled and not os.path.isfile(paths.classifier):
            parts = list(_real_sample(config, features.CLASSIFIER_IMAGES, labelled=True)
                         .as_numpy_iterator())
            images, labels = (np.concatenate(column)[: features.CLASSIFIER_IMAGES]
                              for column in zip(*parts, strict=True))
            model = features.train_classifier(images, labels, info.num_classes,
                                              seed=_REFERENCE_SEED)
            model.save(paths.classifier)
            extractor = features.ClassifierFeatures(model)
        else:
            path = paths.classifier if labelled else config.metrics_features
            extractor = features.ClassifierFeatures.from_file(path)
    except FileNotFoundError as error:
        raise ConfigError(str(error)) from None
    return QualityMetrics(_real_sample(config, config.metrics_samples, labelled=False),
                          extractor, metrics=config.metrics, every=config.metrics_every,
                          num_samples=config.metrics_samples)


# The shuffle seed of the metrics' real sample and the classifier's training data and
# initialisation: fixed, not the run's seed, so that runs compare.
_REFERENCE_SEED = 0


def _real_sample(config: TrainConfig, count: int, labelled: bool) -> tf.data.Dataset:
    """The first `count` images (and labels) of the data in the order `_REFERENCE_SEED`
    shuffles it, as a dataset, so the callback streams it into statistics once instead
    of holding the images for the whole run."""
    batches = -(-count // config.batch_size)
    return _load(config, seed=_REFERENCE_SEED, conditional=labelled).take(batches)


# ------------------------------------------------------------------- the end
def _finish(config: TrainConfig, gan: GAN, state: RunState, paths: RunPaths,
            env: distribute.Setup) -> RunResult:
    """Saves `final.keras` and exports, once per trained length of the run (the chief
    only: the other workers of a multi-worker run hold the same weights)."""
    def result(export: str | None) -> RunResult:
        return RunResult(paths.root, config.epochs, state.step, paths.final_model, export,
                         worker=env.worker_index, backend=config.backend,
                         precision=env.policy, replicas=env.num_replicas)

    if not env.chief:
        return result(None)
    saved, export = _finished_before(config, state, paths)
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
    saved = os.path.isfile(paths.final_model)
    export = None
    if previous.export:  # still there, in the folder this command would export to
        version = os.path.basename(os.path.normpath(previous.export))
        path = os.path.join(config.export_dir, config.model_name, version)
        export = path if os.path.isdir(path) else None
    if not saved or (config.export and not export):
        missing = [name for name, gone in (("final.keras", not saved),
                                           ("the export", config.export and not export)) if gone]
        print(f"kgan: this run is complete; writing what is missing: {', '.join(missing)}.")
    return saved, export


def _export(config: TrainConfig, gan: GAN, paths: RunPaths) -> str | None:
    if not config.export:
        return None
    try:
        from kgan.serving.export import export_generator, export_keras_file

        if keras.backend.backend() != "tensorflow":  # exported by TensorFlow, from final.keras
            return export_keras_file(paths.final_model, config.export_dir, config.model_name)
        return export_generator(gan, config.export_dir, model_name=config.model_name)
    except KeyboardInterrupt as error:
        raise interrupted(error, f"interrupted while exporting to {config.export_dir}; "
                          f"the trained model is saved in {paths.final_model} (kgan-export "
                          "exports it)") from None
    except (OSError, tf.errors.OpError) as error:
        cause = ("disk full" if getattr(error, "errno", None) == errno.ENOSPC
                 else " ".join(str(error).split())[:200])
        raise RunError(f"export to {config.export_dir} failed ({cause}); the trained model "
                       f"is saved in {paths.final_model}: run the same command again, or "
                       f"kgan-export {paths.root} {config.export_dir}") from None
