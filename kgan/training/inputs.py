"""A run's data: each epoch's batches in an order fixed by (seed, epoch), the source's
description and epoch length, and the fixed real sample the metrics and previews use.
Bad input from a source becomes a `ConfigError` (exit 2), raised before the run
directory changes."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kgan import data
from kgan.training.config import ConfigError, TrainConfig

__all__ = ["REFERENCE_SEED", "data_info", "data_options", "epoch_dataset", "epoch_seed",
           "load", "real_sample"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch: a hash of (seed, epoch), so any epoch's order can
    be rebuilt without replaying the epochs before it."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0] & 0x7FFFFFFF)


def epoch_dataset(config: TrainConfig, epoch: int, steps: int, skip: int = 0) -> tf.data.Dataset:
    """Batches `skip`..`steps` of epoch `epoch`, in an order fixed by (seed, epoch).

    Every iterator over it yields the same batches: Keras opens an extra one under a
    tf.distribute strategy, which would otherwise move N replicas on to another order
    than one device's. Skipping reads (but does not train on) the skipped batches, so
    resuming costs at most one epoch of input work. An epoch of more steps than one
    pass goes on through passes with orders of their own.
    """
    seed = epoch_seed(config.seed, epoch)
    dataset = load(config, seed=seed, reshuffle=False)
    per_pass = int(dataset.cardinality())
    if 0 < per_pass < steps:  # more steps than one pass: each pass its own fixed order
        passes = -(-steps // per_pass)
        for index in range(1, min(passes, _MAX_PASSES)):
            dataset = dataset.concatenate(
                load(config, seed=epoch_seed(seed, index), reshuffle=False))
        if passes > _MAX_PASSES:  # tiny data, long epochs: TensorFlow's reshuffled passes
            dataset = dataset.concatenate(load(config, seed=epoch_seed(seed, _MAX_PASSES),
                                               reshuffle=True).repeat())
    elif per_pass < 0:  # unknown length: the order repeats
        dataset = dataset.repeat()
    return dataset.skip(skip).take(steps - skip)


# Passes of an epoch built as pipelines of their own (each a copy of the source's graph).
_MAX_PASSES = 8


def data_options(config: TrainConfig) -> data.DataOptions:
    """The config's data settings as one `kgan.data.DataOptions`."""
    return data.DataOptions(resolution=config.resolution, channels=config.channels,
                            batch_size=config.batch_size, conditional=config.conditional,
                            mirror=config.mirror, data_dir=config.data_dir,
                            download=config.download)


def load(config: TrainConfig, seed: int, conditional: bool | None = None,
         reshuffle: bool = True, mirror: bool | None = None) -> tf.data.Dataset:
    """The config's data in the order `seed` shuffles it (`conditional` and `mirror`
    override the config's); a source's bad input becomes a `ConfigError`."""
    try:
        options = data_options(config).replace(seed=seed, shuffle=True, reshuffle=reshuffle)
        if conditional is not None:
            options = options.replace(conditional=conditional)
        if mirror is not None:
            options = options.replace(mirror=mirror)
        return data.load(config.dataset, options)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from None


def data_info(config: TrainConfig):
    """The source's description and the epoch length; fails fast on missing data."""
    try:
        info = data.describe(config.dataset, data_dir=config.data_dir)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from None
    # Missing TFDS data fails here (or downloads); each source says what a conditional
    # run needs (e.g. one subfolder per class).
    load(config, seed=config.seed)
    if info.num_examples is None:
        info = data.describe(config.dataset, data_dir=config.data_dir)
    steps = config.steps_per_epoch or info.steps_per_epoch(config.batch_size)
    if not steps:
        raise ConfigError(f"cannot tell how many batches {config.dataset!r} has; pass "
                          "--steps-per-epoch")
    return info, steps


# The shuffle seed of the metrics' real sample and the classifier's training data and
# initialisation: fixed, not the run's seed, so that runs compare.
REFERENCE_SEED = 0


def real_sample(config: TrainConfig, count: int, labelled: bool) -> tf.data.Dataset:
    """The first `count` images (and labels) of the data in the order `REFERENCE_SEED`
    shuffles it, as a dataset, so the callback streams it into statistics once instead
    of holding the images for the whole run. Never mirrored: runs with and without
    `mirror` score against the same images."""
    batches = -(-count // config.batch_size)
    return load(config, seed=REFERENCE_SEED, conditional=labelled, mirror=False).take(batches)
