"""IDX files (kgan.data.idx): Debian's Fashion-MNIST, hand-made files, and bad input."""

import dataclasses
import gzip
import os

import numpy as np
import pytest

from kgan import data
from kgan.data import idx

FASHION = idx.DEBIAN_SETS["fashion_mnist"]
needs_fashion = pytest.mark.skipif(
    not idx.is_idx_folder(FASHION.folder),
    reason=f"Fashion-MNIST's IDX files are not installed: {FASHION.install}")


def write_idx(path, array, magic=None, gz=None, extra=b"", cut=0):
    """Writes `array` (uint8) as an IDX file; gzipped when the name ends in .gz.

    `magic` replaces the magic number, `extra` is appended, `cut` bytes are dropped from
    the end (of the gzip stream for .gz files).
    """
    array = np.asarray(array, np.uint8)
    magic = (0x0800 | array.ndim) if magic is None else magic
    raw = magic.to_bytes(4, "big") + np.asarray(array.shape, ">u4").tobytes()
    raw += array.tobytes() + extra
    gz = str(path).endswith(".gz") if gz is None else gz
    body = gzip.compress(raw) if gz else raw
    with open(path, "wb") as file:
        file.write(body[: len(body) - cut])
    return str(path)


def make_folder(folder, gz=True, train=6, test=4, labels=True):
    """A small IDX folder: 4x4 images whose pixels all equal 40 * label."""
    os.makedirs(folder, exist_ok=True)
    ext = ".gz" if gz else ""
    for prefix, count in (("train", train), ("t10k", test)):
        classes = np.arange(count, dtype=np.uint8) % 3
        images = np.repeat(classes * 40, 16).reshape(count, 4, 4)
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{ext}"), images)
        if labels:
            write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{ext}"), classes)
    return str(folder)


def _one_batch(source, **fields):
    options = dict(resolution=4, channels=1, batch_size=2, shuffle=False)
    return next(data.load(source, **{**options, **fields}).as_numpy_iterator())


def _error(error_type, *args, **fields):
    """The message of the error that loading raises: one line, naming what to do."""
    with pytest.raises(error_type) as caught:
        _one_batch(*args, **fields)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------- Debian's Fashion-MNIST


@needs_fashion
def test_fashion_mnist_splits_are_read_from_the_headers():
    train = data.describe(FASHION.folder)
    test = data.describe("fashion_mnist", split="test")
    assert (train.kind, train.name, train.num_examples) == ("idx", FASHION.folder, 60_000)
    assert (test.kind, test.name, test.num_examples) == ("idx", FASHION.folder, 10_000)
    assert train.num_classes == test.num_classes == 10
    assert train.image_shape == (28, 28, 1)
    assert data.describe("fashion_mnist", split="test[:10%]").num_examples == 1_000
    assert data.describe("fashion_mnist", split="train[59000:]").num_examples == 1_000


@needs_fashion
def test_fashion_mnist_conditional_batch():
    images, labels = _one_batch("fashion_mnist", split="test[:256]", resolution=32,
                                batch_size=64, conditional=True, shuffle=True)
    assert images.shape == (64, 32, 32, 1) and images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.min() < images.max()
    assert labels.dtype == np.int32 and labels.min() >= 0 and labels.max() <= 9
    assert len(set(labels.tolist())) > 3  # shuffled classes, not one


@needs_fashion
def test_a_single_fashion_file_finds_its_labels_file_beside_it():
    path = os.path.join(FASHION.folder, "t10k-images-idx3-ubyte.gz")
    assert data.find_source(path).kind == "idx"
    info = data.describe(path)
    assert (info.num_examples, info.num_classes) == (10_000, 10)
    images, labels = _one_batch(path, resolution=8, channels=3, batch_size=4, conditional=True)
    assert images.shape == (4, 8, 8, 3)
    # Fashion-MNIST's first test images are classes 9, 2, 1, 1 (ankle boot, pullover, ...).
    assert labels.tolist() == [9, 2, 1, 1]


# ---------------------------------------------------------------- hand-made files


@pytest.mark.parametrize("gz", [True, False])
def test_a_hand_made_folder_gives_both_splits_in_order(tmp_path, gz):
    folder = make_folder(tmp_path / "set", gz=gz)
    assert data.find_source(folder).kind == "idx"
    assert data.describe(folder).num_examples == 6
    assert data.describe(folder, split="test").num_examples == 4
    images, labels = _one_batch(folder, batch_size=6, conditional=True)
    assert labels.tolist() == [0, 1, 2, 0, 1, 2]
    # pixels 0, 40, 80 of 255 land at -1, -1 + 2 * 40 / 255, ...
    np.testing.assert_allclose(images[:, 0, 0, 0], labels * 80 / 255 - 1, atol=1e-5)
    images, labels = _one_batch(folder, batch_size=4, conditional=True, split="test")
    assert images.shape == (4, 4, 4, 1) and labels.tolist() == [0, 1, 2, 0]
    unlabelled = _one_batch(folder, batch_size=2, split="train[2:4]")
    np.testing.assert_allclose(unlabelled[:, 0, 0, 0], [160 / 255 - 1, -1], atol=1e-5)


def test_uncompressed_and_gzipped_files_read_the_same(tmp_path):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    plain = write_idx(tmp_path / "a-images-idx3-ubyte", array)
    zipped = write_idx(tmp_path / "b-images-idx3-ubyte.gz", array)
    odd_name = write_idx(tmp_path / "c-images.idx3-ubyte", array, gz=True)  # told by content
    for path in (plain, zipped, odd_name):
        np.testing.assert_array_equal(idx.read_idx(path, idx.MAGIC_IMAGES), array)
        assert idx.read_header(path, idx.MAGIC_IMAGES) == (2, 3, 5)


def test_labels_are_needed_only_for_conditional_runs(tmp_path):
    folder = make_folder(tmp_path / "set", labels=False)
    assert data.describe(folder).num_classes is None
    assert _one_batch(folder).shape == (2, 4, 4, 1)
    message = _error(ValueError, folder, conditional=True)
    assert "--conditional" in message and "train-images-idx3-ubyte.gz" in message
    assert "train-labels-idx1-ubyte.gz" in message and "without conditional=True" in message


def test_wrong_magic_numbers_name_the_file_and_the_fix(tmp_path):
    folder = make_folder(tmp_path / "set")
    images = os.path.join(folder, "train-images-idx3-ubyte.gz")
    labels = os.path.join(folder, "train-labels-idx1-ubyte.gz")
    write_idx(images, np.zeros([6, 4, 4]), magic=0x00000D03)  # float32 images: not read
    message = _error(ValueError, folder)
    assert images in message and "magic number 0x00000d03, expected 0x00000803" in message
    # a labels file given as the images
    message = _error(ValueError, labels)
    assert "it is a labels file: pass the *-images-idx3-ubyte file" in message
    # images where the labels belong
    make_folder(folder)
    write_idx(labels, np.zeros([6, 4, 4]))
    message = _error(ValueError, folder, conditional=True)
    assert labels in message and "expected 0x00000801" in message
    # not an IDX file at all
    with open(images, "wb") as file:
        file.write(b"\x89PNG")
    assert "magic number 0x89504e47" in _error(ValueError, folder)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_files_are_one_clear_error(tmp_path, gz):
    folder = make_folder(tmp_path / "set", gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    path = write_idx(os.path.join(folder, name), np.zeros([6, 4, 4]), cut=5)
    message = _error(ValueError, folder)
    assert message.startswith(f"{path} is truncated") and "download it again" in message
    if not gz:
        assert "6 x 4 x 4 = 96 bytes of data but 91 follow" in message
    write_idx(path, np.zeros([6, 4, 4]), extra=b"\0")
    assert "longer than its header says" in _error(ValueError, folder)
    write_idx(path, np.zeros([0]), magic=idx.MAGIC_IMAGES, cut=0)  # header cut short
    assert "is truncated: it ends inside its header" in _error(ValueError, folder)


def test_a_label_count_that_differs_from_the_images_is_an_error(tmp_path):
    folder = make_folder(tmp_path / "set")
    labels = write_idx(os.path.join(folder, "train-labels-idx1-ubyte.gz"), np.zeros(5))
    message = _error(ValueError, folder, conditional=True)
    assert f"{labels} holds 5 labels but" in message and "holds 6 images" in message
    with pytest.raises(ValueError, match="holds 5 labels"):
        data.describe(folder)


def test_missing_splits_paths_and_bad_split_names(tmp_path):
    folder = make_folder(tmp_path / "set")
    os.remove(os.path.join(folder, "t10k-images-idx3-ubyte.gz"))
    assert "has no test images" in _error(ValueError, folder, split="test")
    assert "'train' or 'test'" in _error(ValueError, folder, split="train+test")
    assert "splits 'train' and 'test'" in _error(ValueError, folder, split="validation")
    single = os.path.join(folder, "train-images-idx3-ubyte.gz")
    assert "a single IDX file is one split" in _error(ValueError, single, split="test")
    missing = str(tmp_path / "nope" / "train-images-idx3-ubyte.gz")
    assert data.find_source(missing).kind == "idx"
    assert "IDX file not found" in _error(FileNotFoundError, missing)


def test_fashion_mnist_without_debian_files_or_tfds_names_both_fixes(tmp_path, monkeypatch):
    monkeypatch.setitem(idx.DEBIAN_SETS, "fashion_mnist",
                        idx.DebianSet(str(tmp_path / "absent"), FASHION.package, FASHION.title))
    message = _error(data.DatasetNotPreparedError, "fashion_mnist", data_dir=str(tmp_path))
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-dir PATH" in message and "--download" in message
    assert str(tmp_path / "absent") in message and str(tmp_path) in message
    assert data.describe("fashion_mnist", data_dir=str(tmp_path)).kind == "tfds"
    # its folder's path, when the package is absent, says what to install
    message = _error(FileNotFoundError, str(tmp_path / "absent"))
    assert "Fashion-MNIST's IDX files are not installed" in message
    assert "apt-get install dataset-fashion-mnist" in message


@needs_fashion
def test_a_tfds_data_dir_asks_for_tfds_fashion_mnist(tmp_path):
    # With Debian's files installed, naming a TFDS data dir still means TFDS's copy.
    message = _error(data.DatasetNotPreparedError, "fashion_mnist", data_dir=str(tmp_path))
    assert "apt-get install dataset-fashion-mnist" in message


# ---------------------------------------------------------------- the quality benchmark


def _fashion_quality():
    import importlib
    import sys

    benchmarks = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    return importlib.import_module("fashion_quality")


@needs_fashion
def test_fashion_quality_quick(tmp_path, monkeypatch):  # ~12 s: the preset and keras-io's
    import json
    import math

    fashion_quality = _fashion_quality()
    trainers = []
    init = fashion_quality.digits_quality.Trainer.__init__

    def keep(self, *args, **kwargs):
        init(self, *args, **kwargs)
        trainers.append(self)

    monkeypatch.setattr(fashion_quality.digits_quality.Trainer, "__init__", keep)
    out = tmp_path / "fashion.json"
    result = fashion_quality.main(["--quick", "--recipe", "fashion_mnist", "--baseline",
                                   "keras_io", "--out", str(out), "--grids", str(tmp_path)])
    row, keras_io = result["rows"]
    floor = result["floor"]
    assert row["config"]["preset"] == "fashion_mnist" and row["config"]["conditional"]
    assert row["steps"] == 2 and row["budget_minutes"] is None and row["finite"]
    assert row["count"] == floor["count"] == 256 and result["train_images"] == 512
    for scores in (row, floor):
        assert math.isfinite(scores["frechet_distance"]) and math.isfinite(scores["kid"])
        assert 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1
        assert len(scores["class_shares"]) == 10 and 0 <= scores["label_agreement"] <= 1
        assert 0 <= scores["recognised"] <= 1 and scores["recognised_ratio"] >= 0
    assert "without_ema" in row  # the preset's EMA generator, and the raw one
    assert floor["frechet_distance"] < row["frechet_distance"]
    assert 0 < result["classifier"]["test_accuracy"] <= 1
    assert 0 <= result["classifier"]["test_images_recognised"] <= 1
    assert "| 256 training images (floor) |" in result["markdown"]
    assert os.path.isfile(row["grid"]) and json.loads(out.read_text())["rows"][0]["steps"] == 2
    # The keras-io baseline: its family and recipe, unconditional, no EMA, scored alike.
    config = keras_io["config"]
    assert (keras_io["recipe"], config["network"], config["loss"], config["ema_kimg"]) == (
        "keras_io", "kerasio_dcgan", "non_saturating", None)
    assert not config["conditional"] and (config["lr_d"], config["beta1"]) == (1e-4, 0.9)
    gan = trainers[1].gan
    assert gan.ema_generator is None and gan.num_classes is None
    assert [type(layer).__name__ for layer in gan.generator.layers[1:]] == [
        "Dense", "Reshape", "Conv2DTranspose", "LeakyReLU", "Conv2DTranspose", "LeakyReLU",
        "Conv2D"]
    assert "Dropout" in [type(layer).__name__ for layer in gan.discriminator.layers]
    assert keras_io["steps"] == 2 and math.isfinite(keras_io["frechet_distance"])
    assert "label_agreement" not in keras_io and "without_ema" not in keras_io
    assert os.path.isfile(keras_io["grid"]) and "| keras_io |" in result["markdown"]


def test_fashion_quality_measures_fashion_mnist_only():
    fashion_quality = _fashion_quality()
    with pytest.raises(ValueError, match="measures Fashion-MNIST"):
        fashion_quality.train_config(["--preset", "digits"])
    config = fashion_quality.train_config(["--loss", "hinge"], quick=True)
    assert (config.preset, config.loss, config.steps_per_epoch) == ("fashion_mnist", "hinge", 2)
    # The table's recipes: the preset, its two baselines, its unconditional variant and the
    # other families, all at the preset's 32 px, the command line's flags on top.
    args = fashion_quality.parse_args(["--table", "--set", "seed=1"])
    configs = dict(fashion_quality.digits_quality.configs(
        args, fashion_quality.train_config, fashion_quality.RECIPES))
    assert list(configs) == ["fashion_mnist", "keras_io", "kgan_0.2",
                             "fashion_mnist_unconditional", "resnet", "r3gan_tiny",
                             "r3gan_tiny_gain", "stylegan2"]
    assert {(c.dataset, c.resolution) for c in configs.values()} == {("fashion_mnist", 32)}
    assert [(c.network, c.conditional) for n, c in configs.items() if n != "keras_io"] == [
        ("dcgan", True), ("dcgan", True), ("dcgan", False), ("resnet", True),
        ("r3gan", True), ("r3gan", True), ("stylegan2", True)]
    # The two R3GAN rows differ only in how G takes the class.
    tiny, gain = configs["r3gan_tiny"], configs["r3gan_tiny_gain"]
    assert (tiny.network_args["conditioning"], gain.network_args["conditioning"]) == (
        "concat", "gain")
    assert {**tiny.network_args, "conditioning": "gain"} == gain.network_args
    assert (configs["stylegan2"].loss, configs["stylegan2"].reg_interval) == (
        "non_saturating", 16)
    assert {c.seed for c in configs.values()} == {1} and args.minutes == [3.0, 10.0, 30.0]
    assert (configs["keras_io"].batch_size, configs["keras_io"].latent_dim) == (32, 128)
    # kgan 0.2's recipe is the preset at batch 64 with 0.2's G (z x class embedding), EMA
    # half-life (3 kimg) and R1/R2 at every D step.
    assert configs["fashion_mnist"].network_args["conditioning"] == "batchnorm"
    assert (configs["fashion_mnist"].ema_kimg, configs["fashion_mnist"].reg_interval) == (10.0, 4)
    assert configs["kgan_0.2"] == dataclasses.replace(
        configs["fashion_mnist"], batch_size=64, ema_kimg=3.0, reg_interval=1,
        network_args={**configs["fashion_mnist"].network_args, "conditioning": "multiply"})
    with pytest.raises(ValueError, match="no recipe 'keras'; recipes: fashion_mnist"):
        fashion_quality.digits_quality.recipes(fashion_quality.parse_args(
            ["--baseline", "keras"]), fashion_quality.RECIPES)
