"""What a run writes for people to watch it: the TensorBoard callbacks (scalars, sample
grids, quality metrics, the hparams session) and `samples/real.png`, built from the
config. The metrics score against a fixed real sample with a domain classifier, both
of which depend on the data only, so runs on the same data compare."""

from __future__ import annotations

import glob
import os

import numpy as np
import tensorflow as tf

from kgan import _durable
from kgan.training import distribute, inputs
from kgan.training.callbacks import (
    EPOCH_RUN,
    ImageGrid,
    QualityMetrics,
    ScalarLogger,
    close_writers,
    image_grid,
    summary_writer,
)
from kgan.training.config import RESUMABLE_FIELDS, ConfigError, TrainConfig
from kgan.training.rundir import RunPaths

__all__ = ["MAX_CLASS_COLUMNS", "drop_events_after", "hparams", "logging_callbacks",
           "quality_metrics", "sample_grid", "write_real_grid"]


def hparams(config: TrainConfig, env: distribute.Setup) -> dict:
    """The hyperparameters of the hparams table: the fields that decide what a step
    computes, with `auto` precision resolved. Fields a resume may change (epochs, paths,
    logging) stay out: TensorBoard keeps the first session a run wrote, so they would
    show their first values after a resume changed them; `metrics_features` stays in,
    as it says what the quality columns measure."""
    values = {k: v for k, v in config.to_dict().items() if k not in RESUMABLE_FIELDS}
    return {**values, "backend": config.backend, "mixed_precision": env.policy,
            "metrics_features": config.metrics_features}


def logging_callbacks(config: TrainConfig, paths: RunPaths, info) -> list:
    found = [quality_metrics(config, paths, info)] if config.metrics else []
    num_images, columns = sample_grid(config.num_samples,
                                      info.num_classes if config.conditional else None)
    return found + [
        ScalarLogger(paths.logs, update_freq=config.log_every_n_steps,
                     batch_size=config.batch_size),
        ImageGrid(paths.logs, samples_dir=paths.samples, num_images=num_images,
                  columns=columns, every=config.sample_every),
    ]


def write_real_grid(config: TrainConfig, paths: RunPaths, info) -> str:
    """`samples/real.png` (and TensorBoard image `real` at step 0): real images as the
    GAN sees them (crop, orientation, channels, resolution) in the sample grids' layout,
    one class per column in a conditional run, so the two compare at a glance."""
    classes = info.num_classes if config.conditional else None
    count, columns = sample_grid(config.num_samples, classes)
    by_class = columns is not None  # sample_grid gives columns only for classes
    rows = count // columns if by_class else count
    cells: list[list[np.ndarray]] = [[] for _ in range(columns if by_class else 1)]
    for batch in inputs.load(config, seed=inputs.REFERENCE_SEED).take(256).as_numpy_iterator():
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


def quality_metrics(config: TrainConfig, paths: RunPaths, info) -> QualityMetrics:
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
            parts = list(inputs.real_sample(config, features.CLASSIFIER_IMAGES, labelled=True)
                         .as_numpy_iterator())
            images, labels = (np.concatenate(column)[: features.CLASSIFIER_IMAGES]
                              for column in zip(*parts, strict=True))
            model = features.train_classifier(images, labels, info.num_classes,
                                              seed=inputs.REFERENCE_SEED)
            model.save(paths.classifier)
            extractor = features.ClassifierFeatures(model)
        else:
            path = paths.classifier if labelled else config.metrics_features
            extractor = features.ClassifierFeatures.from_file(path)
    except (FileNotFoundError, ValueError) as error:  # ValueError: not an image classifier
        raise ConfigError(f"--metrics-features: {error}") from None
    return QualityMetrics(inputs.real_sample(config, config.metrics_samples, labelled=False),
                          extractor, metrics=config.metrics, every=config.metrics_every,
                          num_samples=config.metrics_samples)


def drop_events_after(logs: str, step: int) -> int:
    """Removes what a stopped process logged after `step`, the checkpoint its resume goes
    back to (a SIGKILL or a lost machine leaves up to `--checkpoint-every` steps logged
    past it), so the resumed run does not log those steps a second time with other values.
    TensorBoard's Python reader hides such duplicates; other readers of event files do
    not. Each changed event file is rewritten whole and replaced atomically; a record cut
    short by the kill is dropped too. Returns the number of events removed."""
    from tensorboard.compat.proto import event_pb2

    close_writers(logs)
    dropped = 0
    for path in sorted(glob.glob(os.path.join(logs, "**", "*.tfevents.*"), recursive=True)):
        events, complete = _read_events(path, event_pb2.Event)
        keep = [e for e in events if not (e.step > step and e.HasField("summary"))]
        if len(keep) == len(events) and complete:
            continue
        temp = os.path.join(os.path.dirname(path), ".kgan-rewrite")
        with tf.io.TFRecordWriter(temp) as writer:
            for event in keep:
                writer.write(event.SerializeToString())
        _durable.replace_file(temp, path)
        dropped += len(events) - len(keep)
    return dropped


def _read_events(path: str, event_type) -> tuple[list, bool]:
    """The events of one file, and whether it ended cleanly (not cut short mid-record)."""
    events = []
    iterator = iter(tf.data.TFRecordDataset(path).as_numpy_iterator())
    while True:
        try:
            events.append(event_type.FromString(next(iterator)))
        except StopIteration:
            return events, True
        except tf.errors.DataLossError:
            return events, False
