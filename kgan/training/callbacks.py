"""Keras callbacks that put a GAN's training into TensorBoard and the run directory.

Why not `keras.callbacks.TensorBoard`: it knows one `model.optimizer`, so it cannot log
the learning rates of a GAN's two optimizers (nor unwrap their LossScaleOptimizers),
and it prefixes tags (`epoch_loss`), while design.md fixes the tag names (`d_loss`,
`samples`, ...). These callbacks write `tf.summary` directly, sharing one writer per
folder so that several callbacks never race on event files in one run.

Layout under `log_dir` (design.md, TensorBoard contract):

| run | step | content |
|---|---|---|
| `log_dir/epoch` | global train step at the epoch's end | epoch scalars, metrics, `samples` |
| `log_dir/epoch` | - | hparams session |
| `log_dir/batch` | global train step (`gan.step_counter`) | scalars every N steps |
| `log_dir` | - | profiler traces |

Everything counts train steps, so an epoch's mean and its sample grid land where its
last batch did and all curves share one x axis (epoch numbers would squeeze the epoch
curves into the first few steps of the batch curves).

Example:
    >>> logs = "runs/digits/logs"
    >>> gan.fit(data, epochs=20, callbacks=[
    ...     QualityMetrics(real_images, extractor, metrics=("fid", "pr"), every=5),
    ...     ScalarLogger(logs, update_freq=100),
    ...     ImageGrid(logs, samples_dir="runs/digits/samples"),
    ...     HParams(logs, {"lr": 2e-4, "loss": "hinge"}),
    ... ])
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from kgan.evaluation import metrics as metrics_lib
from kgan.evaluation import quality
from kgan.evaluation.features import FeatureExtractor
from kgan.evaluation.stats import FeatureStats
from kgan.images import tile_grid, to_uint8_numpy
from kgan.training.guards import NonFiniteGuard  # noqa: F401  (kgan.callbacks.NonFiniteGuard)

EPOCH_RUN = "epoch"
BATCH_RUN = "batch"

# One writer per folder for the whole process: TensorBoard reads a run's event files in
# order and never goes back, so two live writers in one folder can hide each other's events.
_WRITERS: dict[str, tf.summary.SummaryWriter] = {}


def summary_writer(folder: str) -> tf.summary.SummaryWriter:
    """The process-wide summary writer for `folder` (created on first use)."""
    key = os.path.abspath(folder)
    if key not in _WRITERS:
        _WRITERS[key] = tf.summary.create_file_writer(key)
    return _WRITERS[key]


def close_writers(under: str) -> None:
    """Closes this process's summary writers of folders under `under`, before their event
    files are rewritten (`kgan.training.monitoring.drop_events_after`)."""
    root = os.path.abspath(under)
    for key in [k for k in _WRITERS if k == root or k.startswith(root + os.sep)]:
        _WRITERS.pop(key).close()


def _scalar(value) -> float | None:
    """A float for a numeric scalar log value, None for anything else (strings, arrays)."""
    try:
        array = np.asarray(keras.ops.convert_to_numpy(value))
    except (TypeError, ValueError):
        return None
    if array.size != 1 or not np.issubdtype(array.dtype, np.number):
        return None
    return float(array.reshape(()))


def optimizer_scalars(model: keras.Model) -> dict[str, float]:
    """Current learning rate (and loss scale, if wrapped) of `d_optimizer` and `g_optimizer`.

    The LossScaleOptimizer that GAN.compile adds under mixed_float16 is looked through
    for the learning rate; `learning_rate` of a Keras 3 optimizer already evaluates a
    schedule at the optimizer's current iteration.
    """
    values = {}
    for prefix in ("d", "g"):
        optimizer = getattr(model, f"{prefix}_optimizer", None)
        if optimizer is None:
            continue
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        values[f"{prefix}_learning_rate"] = _scalar(inner.learning_rate)
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            # dynamic_scale only exists once the optimizer is built.
            scale = getattr(optimizer, "dynamic_scale", optimizer.initial_scale)
            values[f"{prefix}_loss_scale"] = _scalar(scale)
    return {k: v for k, v in values.items() if v is not None}


class ScalarLogger(keras.callbacks.Callback):
    """Logs every numeric entry of the fit logs, plus both learning rates, to TensorBoard.

    That covers `d_loss`, `g_loss`, `d_real`, `d_fake`, `gp`/`r1`, `aug_p`,
    `d_loss_scale`/`g_loss_scale` and any quality metric a callback placed earlier in
    the list (QualityMetrics) added to the epoch logs. Per-step values are Keras's
    running means since the start of the epoch, as in keras.callbacks.TensorBoard.
    Both runs are written at the global train step (`gan.step_counter`, which survives
    resume): the `epoch` run at the step that ended the epoch.

    Args:
        log_dir: TensorBoard folder (RUN_DIR/logs).
        update_freq: log every this many train steps to the `batch` run; 0 disables.
        batch_size: the global batch; given, `kimg` (thousands of real images seen, as
            StyleGAN's Progress/kimg) is logged too, to compare runs of other batches.
    """

    def __init__(self, log_dir: str, update_freq: int = 100,
                 batch_size: int | None = None) -> None:
        super().__init__()
        if update_freq < 0:
            raise ValueError(f"update_freq must be >= 0, got {update_freq}")
        self.log_dir = log_dir
        self.update_freq = int(update_freq)
        self.batch_size = batch_size

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._last_step = _global_step(self.model)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.update_freq:
            return
        step, last = _global_step(self.model), self._last_step
        self._last_step = step
        # A multiple of N was reached or passed: with steps_per_execution > 1 the
        # callbacks see only every k-th step, which may step over the multiple itself.
        if step // self.update_freq > last // self.update_freq:
            self._write(BATCH_RUN, logs or {}, step)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._write(EPOCH_RUN, logs or {}, _global_step(self.model))

    def _write(self, run: str, logs: dict, step: int) -> None:
        # fit's own loss-scale logs (epoch means) win over the optimizer's current value.
        values = optimizer_scalars(self.model)
        values.update({name: _scalar(value) for name, value in logs.items()})
        if self.batch_size:
            values["kimg"] = step * self.batch_size / 1000
        writer = summary_writer(os.path.join(self.log_dir, run))
        with writer.as_default(step=step):
            for name, value in values.items():
                if value is not None:
                    tf.summary.scalar(name, value)
        writer.flush()


def _global_step(model: keras.Model) -> int:
    """Train steps completed: kgan.GAN's saved `step_counter` (so it survives resume)."""
    counter = getattr(model, "step_counter", None)
    if counter is None:
        raise ValueError("the model has no step_counter; ScalarLogger expects a kgan.GAN")
    return int(keras.ops.convert_to_numpy(counter))


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 1) -> np.ndarray:
    """Tiles images [N, H, W, C] in [-1, 1] into one uint8 grid image.

    The grid has `rows = ceil(N / columns)` and is `rows * (H + padding) + padding` by
    `columns * (W + padding) + padding` pixels; padding and empty cells are black.

    Args:
        images: float images in [-1, 1].
        columns: images per row; default the smallest square that fits.
        padding: black pixels between and around the images.
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty [N, H, W, C] array, got {images.shape}")
    return tile_grid(to_uint8_numpy(images), columns, padding)


class ImageGrid(keras.callbacks.Callback):
    """Each epoch, a grid from a fixed latent batch: TensorBoard image `samples` and a PNG.

    The latents come from `gan.generate(num_images, seed=seed)`, the same seeds every
    epoch, so grids show one set of "people" changing over training (and match what the
    export's `generate` signature returns for those seeds).

    Args:
        log_dir: TensorBoard folder; the image goes to the `epoch` run at the global
            train step that ended the epoch, as the epoch scalars do.
        samples_dir: folder for `epoch_NNNN.png` (NNNN = epoch + 1, as ModelCheckpoint
            counts); None writes no PNG.
        num_images: images in the grid.
        seed: first latent seed.
        columns: images per row (default: square grid).
        every: write a grid every this many epochs.
    """

    def __init__(
        self,
        log_dir: str,
        samples_dir: str | None = None,
        num_images: int = 64,
        seed: int = 0,
        columns: int | None = None,
        every: int = 1,
    ) -> None:
        super().__init__()
        if num_images < 1 or every < 1:
            raise ValueError(f"num_images and every must be >= 1, got {num_images}, {every}")
        self.log_dir, self.samples_dir = log_dir, samples_dir
        self.num_images, self.seed, self.columns, self.every = num_images, seed, columns, every

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        grid = image_grid(self.model.generate(self.num_images, seed=self.seed), self.columns)
        writer = summary_writer(os.path.join(self.log_dir, EPOCH_RUN))
        with writer.as_default(step=_global_step(self.model)):
            tf.summary.image("samples", grid[None], max_outputs=1)
        writer.flush()
        if self.samples_dir:
            os.makedirs(self.samples_dir, exist_ok=True)
            path = os.path.join(self.samples_dir, f"epoch_{epoch + 1:04d}.png")
            tf.io.write_file(path, tf.io.encode_png(grid))


class HParams(keras.callbacks.Callback):
    """Records the run's hyperparameters and declares the metrics that compare runs.

    The hparams dashboard shows, per session, the last value of each declared metric,
    read from the run `<session>/<group>`. The session is written into the `epoch` run,
    with group "", so the metric values are that run's epoch scalars (final `d_loss`,
    `g_loss` and quality metrics, at the step that ended the last epoch) whether
    `--logdir` is this folder or a parent holding many runs. (A session at the folder's
    root with group "epoch" made TensorBoard look up "./epoch" when `--logdir` was the
    folder itself, a run that does not exist, and the table showed no metric.)

    Values that are not bool/int/float/str (tuples, None) are logged as their str(),
    which the plugin can still filter on.

    Args:
        log_dir: TensorBoard folder (RUN_DIR/logs); the session goes to its `epoch` run.
        hparams: name -> value, e.g. the TrainConfig as a dict.
        metrics: scalar tags of the `epoch` run to show; default `d_loss`, `g_loss` and
            the outputs of every registered quality metric (fid -> `fid`, kid -> `kid`,
            `kid_std`, pr -> `precision`, `recall`, ...). The dashboard takes its
            columns from one run's declaration, so every run declares them all: a run
            that did not score a metric shows an empty cell, and runs with other
            `--metrics` keep their columns.
        trial_id: groups sessions in the table (default: a hash of the hyperparameters).
            A resumed run writes its session again; keep the hyperparameters the same
            across resumes (kgan-train leaves out the fields a resume may change) so it
            stays one session.
    """

    def __init__(
        self,
        log_dir: str,
        hparams: dict,
        metrics: Sequence[str] | None = None,
        trial_id: str | None = None,
    ) -> None:
        super().__init__()
        if not hparams:
            raise ValueError("hparams must be a non-empty dict")
        self.log_dir = log_dir
        self.metrics = tuple(metrics) if metrics is not None else _default_metrics()
        self.hparams = {str(k): _hparam_value(v) for k, v in hparams.items()}
        self.trial_id = trial_id

    def on_train_begin(self, logs: dict | None = None) -> None:
        writer = summary_writer(os.path.join(self.log_dir, EPOCH_RUN))
        with writer.as_default():
            hp.hparams_config(
                hparams=[hp.HParam(name) for name in self.hparams],
                metrics=[hp.Metric(tag, display_name=f"final {tag}") for tag in self.metrics],
            )
            hp.hparams(self.hparams, trial_id=self.trial_id)
        writer.flush()


def _default_metrics() -> tuple[str, ...]:
    """`d_loss`, `g_loss`, then every output of every registered quality metric."""
    outputs = [out for name in metrics_lib.metric_names()
               for out in metrics_lib.get_metric(name).outputs]
    return ("d_loss", "g_loss", *outputs)


def _hparam_value(value):
    return value if isinstance(value, bool | int | float | str) else str(value)


class Profiler(keras.callbacks.Callback):
    """Traces train steps [start, stop) of a fit call with the backend's profiler:
    TensorFlow's, or on JAX `jax.profiler` (XLA's ops and a GPU's kernels; the window
    closes once its steps have run, as JAX dispatches them ahead).

    Skip the first steps: they include tracing and compilation, not steady state. The
    trace lands under `log_dir/plugins/profile/` for TensorBoard's Profile tab (both
    backends write the same XSpace format).

    Args:
        log_dir: TensorBoard folder.
        start: first traced batch of this fit call (counted across epochs).
        stop: first batch after the window.
    """

    def __init__(self, log_dir: str, start: int = 10, stop: int = 20) -> None:
        super().__init__()
        if not 0 <= start < stop:
            raise ValueError(f"need 0 <= start < stop, got start={start}, stop={stop}")
        self.log_dir, self.start, self.stop = log_dir, start, stop
        self._batches = 0
        self._running = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._batches = 0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._batches == self.start:
            if keras.backend.backend() == "jax":
                import jax

                jax.profiler.start_trace(self.log_dir)
            else:
                tf.profiler.experimental.start(self.log_dir)
            self._running = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches += 1
        if self._batches == self.stop:
            self._stop()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._stop()

    def _stop(self) -> None:
        if not self._running:
            return
        self._running = False
        if keras.backend.backend() == "jax":
            import jax

            jax.block_until_ready([v.value for v in self.model.variables])
            jax.profiler.stop_trace()
        else:
            tf.profiler.experimental.stop()


class QualityMetrics(keras.callbacks.Callback):
    """Every N epochs, scores generated samples against real ones with the chosen metrics.

    Calls `kgan.evaluation.quality.evaluate_quality`, the routine `kgan-evaluate` runs,
    so both report one scale. Real features are computed once (first evaluation, or
    given as `FeatureStats`) and kept only as statistics, for every later `fit` call
    with this callback; generated images come from fixed seeds
    (`gan.generate(.., seed=seed + i)`), so the score changes only because the generator
    did. Results go into the epoch logs (so ScalarLogger, EarlyStopping and
    ModelCheckpoint placed after it see them) and, when `log_dir` is given, straight to
    TensorBoard's `epoch` run at the global train step (as ScalarLogger writes it).

    Args:
        real: real images in [-1, 1]: an array [N, H, W, C] or a dataset/iterable of
            batches (images or (images, labels)); or their `FeatureStats` from
            `quality.real_statistics` with this extractor.
        extractor: a FeatureExtractor (InceptionFeatures, ClassifierFeatures).
        metrics: registered metric names (see kgan.evaluation.metrics.metric_names()).
        every: evaluate every this many epochs.
        num_samples: generated images per evaluation (and real images used, at most).
        seed: first latent seed of the generated set.
        log_dir: TensorBoard folder, or None when a ScalarLogger after this one logs them.
        batch_size: images generated and featurised per step.
        **options: metric options (k, num_subsets, subset_size).
    """

    def __init__(
        self,
        real,
        extractor: FeatureExtractor,
        metrics: Sequence[str] = ("fid",),
        every: int = 1,
        num_samples: int = 5000,
        seed: int = 2**30,
        log_dir: str | None = None,
        batch_size: int = 256,
        **options,
    ) -> None:
        super().__init__()
        self.names = quality.check_metrics(metrics)  # fail at construction, not epochs later
        if every < 1 or num_samples < 2 or batch_size < 1:
            raise ValueError(f"need every >= 1, num_samples >= 2 and batch_size >= 1, got "
                             f"{every}, {num_samples}, {batch_size}")
        self.real, self.extractor, self.every = real, extractor, every
        self.num_samples, self.seed, self.log_dir = num_samples, seed, log_dir
        self.batch_size, self.options = batch_size, options
        self._real_stats = real if isinstance(real, FeatureStats) else None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        results = self.evaluate(self.model)
        if logs is not None:
            logs.update(results)
        if self.log_dir:
            writer = summary_writer(os.path.join(self.log_dir, EPOCH_RUN))
            with writer.as_default(step=_global_step(self.model)):
                for name, value in results.items():
                    tf.summary.scalar(name, value)
            writer.flush()

    def evaluate(self, gan: keras.Model) -> dict[str, float]:
        """Scores `gan` now; returns {output name: value}."""
        if self._real_stats is None:
            self._real_stats = quality.real_statistics(
                self.real, self.extractor, self.names, self.num_samples, self.batch_size)
        return quality.evaluate_quality(
            lambda count, seed: gan.generate(count, seed=seed), self._real_stats,
            self.extractor, self.names, self.num_samples, seed=self.seed,
            batch_size=self.batch_size, **self.options,
        )
