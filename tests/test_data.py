"""kgan.data: every source meets the batch contract; bad input fails early and clearly."""

import io
import os
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kgan import data
from kgan.data import pipeline


def _batches(dataset):
    return list(dataset.as_numpy_iterator())


def _check_batch(images, batch, resolution, channels):
    assert images.shape == (batch, resolution, resolution, channels)
    assert images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


# ---------------------------------------------------------------- digits and arrays


def test_digits_shapes_labels_and_description():
    dataset = data.load("digits", resolution=16, channels=3, batch_size=64, conditional=True)
    images, labels = next(iter(dataset))
    _check_batch(images.numpy(), 64, 16, 3)
    assert labels.dtype == tf.int32 and set(labels.numpy()) <= set(range(10))
    assert images.numpy().min() == -1.0 and images.numpy().max() > 0.9
    info = data.describe("digits")
    assert (info.num_examples, info.num_classes) == (1797, 10)
    assert int(dataset.cardinality()) == info.steps_per_epoch(64) == 28


def test_shuffle_is_reproducible_from_the_seed_and_new_each_epoch():
    def first_two_epochs(seed):
        dataset = data.load("digits", resolution=8, channels=1, batch_size=512, seed=seed)
        return [next(iter(dataset)).numpy() for _ in range(2)]

    run_a, run_b, other = first_two_epochs(1), first_two_epochs(1), first_two_epochs(2)
    np.testing.assert_array_equal(run_a[0], run_b[0])
    np.testing.assert_array_equal(run_a[1], run_b[1])
    assert not np.array_equal(run_a[0], run_a[1])
    assert not np.array_equal(run_a[0], other[0])


@pytest.mark.parametrize(
    "images, value_range, expected",
    [
        (np.full([6, 5, 7], 255, np.uint8), None, 1.0),  # NHW, non-square
        (np.ones([6, 8, 8, 3], np.float32), None, 1.0),  # [0, 1]
        (-np.ones([6, 8, 8, 4], np.float64), None, 1.0),  # [-1, 1]; alpha 0 -> white
        (np.zeros([6, 8, 8, 1], np.float32), (-1.0, 1.0), 0.0),  # explicit range
    ],
)
def test_arrays_accepted_ranges_map_to_minus_one_one(images, value_range, expected):
    dataset = data.from_arrays(
        images,
        np.arange(6),
        batch_size=3,
        resolution=4,
        channels=3,
        value_range=value_range,
        shuffle=False,
    )
    images_out, labels = _batches(dataset)[0]
    _check_batch(images_out, 3, 4, 3)
    np.testing.assert_array_equal(labels, [0, 1, 2])
    np.testing.assert_allclose(images_out, expected, atol=1e-6)


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (np.full([4, 8, 8], 255.0, np.float32), None, r"\[0, 255\].*divide by 255"),
        (np.full([4, 8, 8], 300, np.int32), None, "outside the expected range"),
        (np.full([4, 8, 8], np.nan, np.float32), None, "NaN"),
        (np.zeros([4, 8], np.float32), None, "shape"),
        (np.zeros([4, 8, 8], np.float32), np.zeros(3, np.int64), "labels must be"),
        (np.zeros([4, 8, 8], np.float32), -np.ones(4, np.int64), ">= 0"),
    ],
)
def test_arrays_bad_input_is_a_clear_error(images, labels, message):
    with pytest.raises(ValueError, match=message):
        data.from_arrays(images, labels, batch_size=2)


def test_batch_larger_than_data_and_bad_geometry_are_errors():
    with pytest.raises(ValueError, match="global batch"):
        data.from_arrays(np.zeros([4, 8, 8], np.uint8), batch_size=8)
    with pytest.raises(ValueError, match="channels"):
        data.load("digits", resolution=8, channels=2, batch_size=8)


# ---------------------------------------------------------------- one op, eager and tf.data


def test_preprocess_op_is_the_same_eagerly_and_inside_tf_data():
    rng = np.random.default_rng(0)
    raw = [rng.integers(0, 256, [12, 20, c], dtype=np.uint8) for c in (1, 2, 3, 4)]

    def op(image):
        unit = tf.cast(image, tf.float32) / 255.0
        return pipeline.preprocess_image(pipeline.to_rgba(unit), 8, 3)

    eager = [op(tf.constant(image)).numpy() for image in raw]
    graph = [next(iter(tf.data.Dataset.from_tensors(image).map(op))).numpy() for image in raw]
    for a, b in zip(eager, graph, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
        _check_batch(a[np.newaxis], 1, 8, 3)
    # alpha 0 composites to white: the RGBA case of a fully transparent image
    clear = np.zeros([4, 4, 4], np.uint8)
    np.testing.assert_allclose(op(tf.constant(clear)).numpy(), 1.0)


def test_center_crop_keeps_the_middle_square():
    image = tf.reshape(tf.range(2 * 6, dtype=tf.float32), [2, 6, 1])
    np.testing.assert_array_equal(pipeline.center_crop_square(image)[..., 0], [[2, 3], [8, 9]])


# ---------------------------------------------------------------- image folders


def _save(path, array, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, fmt)


@pytest.fixture
def messy_folder(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, [20, 30, 3], dtype=np.uint8)
    _save(str(tmp_path / "cats" / "rgb.jpg"), rgb, "JPEG")
    _save(str(tmp_path / "cats" / "gray.png"), rgb[..., 0], "PNG")
    _save(
        str(tmp_path / "dogs" / "deep" / "rgba.png"),
        np.dstack([rgb, np.full([20, 30], 128, np.uint8)]),
        "PNG",
    )
    _save(str(tmp_path / "dogs" / "photo.webp"), rgb, "WEBP")
    _save(str(tmp_path / "dogs" / "anim.gif"), rgb, "GIF")
    _save(str(tmp_path / "dogs" / "old.bmp"), rgb, "BMP")
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG")
    (tmp_path / "cats" / "truncated.jpg").write_bytes(buffer.getvalue()[:300])
    (tmp_path / "cats" / "notes.png").write_text("this is not an image")
    (tmp_path / "dogs" / "empty.JPG").write_bytes(b"")
    (tmp_path / "dogs" / "README.txt").write_text("ignored: not an image extension")
    return tmp_path


def test_folder_loads_good_images_and_reports_bad_ones(messy_folder):
    with pytest.warns(data.SkippedImagesWarning, match="3 skipped") as caught:
        dataset = data.load(messy_folder, resolution=8, channels=3, batch_size=1, shuffle=False)
    batches = _batches(dataset)
    assert len(batches) == 6
    for batch in batches:
        _check_batch(batch, 1, 8, 3)
    message = str(caught[0].message)
    for name in ("truncated.jpg", "notes.png", "empty.JPG"):
        assert name in message
    report = data.describe(messy_folder).report
    assert len(report.files) == 6
    skipped = {os.path.basename(path): why for path, why in report.skipped}
    assert set(skipped) == {"truncated.jpg", "notes.png", "empty.JPG"}
    assert "empty" in skipped["empty.JPG"]


def test_folder_classes_from_subfolders_and_grayscale_output(messy_folder):
    info = data.describe(messy_folder)
    assert info.kind == "folder" and info.num_classes == 2 and info.num_examples == 6
    with pytest.warns(data.SkippedImagesWarning):
        dataset = data.load(
            str(messy_folder), resolution=8, channels=1, batch_size=6, conditional=True, seed=4
        )
    images, labels = _batches(dataset)[0]
    _check_batch(images, 6, 8, 1)
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 1, 1]


def test_folder_with_no_usable_image_is_a_clear_error(tmp_path):
    (tmp_path / "a.png").write_text("text")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="None of the 2 image files") as caught:
        data.load(tmp_path, resolution=8, channels=3, batch_size=1)
    assert "a.png" in str(caught.value) and "b.jpg" in str(caught.value)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="No image files"):
        data.load(tmp_path / "empty_dir", resolution=8, channels=3, batch_size=1)


def test_unlabelled_folder_cannot_be_conditional(tmp_path):
    _save(str(tmp_path / "x.png"), np.zeros([4, 4], np.uint8), "PNG")
    with pytest.raises(ValueError, match="one subfolder per class"):
        data.load(tmp_path, resolution=4, channels=1, batch_size=1, conditional=True)


# ---------------------------------------------------------------- TFDS


def test_tfds_through_mock_data_gives_labelled_batches():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=8):
        # mock_data replaces downloading with a no-op, so the real builder path runs.
        dataset = data.load(
            "mnist", resolution=16, channels=3, batch_size=4, conditional=True, download=True
        )
        info = data.describe("mnist")
    batches = _batches(dataset)
    assert len(batches) == 2
    for images, labels in batches:
        _check_batch(images, 4, 16, 3)
        assert labels.dtype == np.int32 and ((labels >= 0) & (labels < 10)).all()
    assert info.kind == "tfds" and info.num_classes == 10 and info.image_shape == (28, 28, 1)


def test_tfds_celeb_a_face_crop_and_no_labels():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=2):
        dataset = data.load("celeb_a", resolution=8, channels=3, batch_size=2, download=True)
        _check_batch(_batches(dataset)[0], 2, 8, 3)
        with pytest.raises(ValueError, match="no ClassLabel"):
            data.load("celeb_a", resolution=8, channels=3, batch_size=2, conditional=True)


def test_offline_tfds_request_fails_fast_with_the_fix(tmp_path):
    start = time.monotonic()
    with pytest.raises(data.DatasetNotPreparedError) as caught:
        data.load("mnist", resolution=8, channels=1, batch_size=2, data_dir=str(tmp_path))
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert str(tmp_path) in message and "tfds build mnist" in message
    assert "download=True" in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert not any(tmp_path.iterdir())  # nothing half-downloaded


def test_unknown_source_is_a_clear_error():
    with pytest.raises(ValueError, match="neither an existing folder nor a TFDS"):
        data.load("no_such_dataset_xyz", resolution=8, channels=1, batch_size=2)


def test_missing_folder_path_is_not_mistaken_for_a_tfds_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="Image folder not found"):
        data.load(str(tmp_path / "nope"), resolution=8, channels=1, batch_size=2)
