"""kgan.data: every source meets the batch contract; bad input fails early and clearly."""

import io
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kgan import data
from kgan.data import pipeline, registry


def _batches(dataset):
    return list(dataset.as_numpy_iterator())


def _check_batch(images, batch, resolution, channels):
    assert images.shape == (batch, resolution, resolution, channels)
    assert images.dtype == np.float32
    assert images.min() >= -1.0 and images.max() <= 1.0


# ---------------------------------------------------------------- options and the registry


def test_options_and_keywords_build_the_same_pipeline():
    options = data.DataOptions(resolution=8, channels=1, batch_size=64, seed=3)
    by_options = _batches(data.load("digits", options))
    by_keywords = _batches(data.load("digits", resolution=8, channels=1, batch_size=64, seed=3))
    np.testing.assert_array_equal(by_options[0], by_keywords[0])
    # keywords given with options override its fields
    other_seed = _batches(data.load("digits", options, seed=4))
    assert not np.array_equal(by_options[0], other_seed[0])


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(resolution=0), r"resolution \(kgan-train: --resolution\) must be an integer >= 1"),
        (dict(channels=2), r"channels \(kgan-train: --channels\) must be 1 .* or 3"),
        (dict(batch_size=True), r"batch_size \(kgan-train: --batch-size\)"),
        (dict(seed=-1), r"seed \(kgan-train: --seed\) must be an integer >= 0"),
        (dict(conditional="yes"), "conditional must be True or False"),
        (dict(split=""), "split must be a split name"),
        (dict(data_dir=""), r"data_dir \(kgan-train: --data-dir\) must be a folder path"),
        (dict(shuffle_buffer=0), "shuffle_buffer must be an integer >= 1"),
    ],
)
def test_options_are_checked_on_construction(fields, message):
    with pytest.raises(ValueError, match=message):
        data.DataOptions(**{"resolution": 8, "channels": 1, "batch_size": 4, **fields})


def test_unknown_option_names_list_the_fields():
    options = data.DataOptions(resolution=8, channels=1, batch_size=4)
    with pytest.raises(TypeError, match="no field batchsize; its fields: resolution"):
        data.load("digits", options, batchsize=8)


def test_each_name_goes_to_one_source(tmp_path, monkeypatch):
    assert data.SOURCES == ("idx", "digits", "arrays", "folder", "tfds")  # the order asked
    (tmp_path / "digits").mkdir()
    monkeypatch.chdir(tmp_path)
    assert data.find_source("digits").kind == "digits"  # the demo, even beside ./digits
    assert data.find_source("./digits").kind == "folder"
    assert data.find_source(tmp_path / "digits").kind == "folder"
    assert data.find_source("faces.npz").kind == "arrays"
    assert data.find_source("mnist").kind == data.find_source("celeb_a/align").kind == "tfds"
    assert data.find_source("fashion_mnist").kind == "idx"  # Debian's files, else TFDS
    assert data.find_source("x/train-images-idx3-ubyte.gz").kind == "idx"


def test_importing_and_configuring_needs_no_tensorflow():
    code = (
        "import sys, kgan.data as d; "
        "d.DataOptions(resolution=32, channels=3, batch_size=64); "
        "assert d.find_source('mnist').kind == 'tfds'; "
        "heavy = {'tensorflow', 'tensorflow_datasets', 'keras'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


class Noise(data.Source):
    """A whole source in a dozen lines: uniform noise images under the name "noise"."""

    kind = "noise"
    usage = "the name 'noise'"

    def matches(self, name):
        return name == "noise"

    def describe(self, name, *, split, data_dir):
        return data.SourceInfo(name, self.kind, 32, None, (6, 6, 3))

    def load(self, name, options):
        images = np.random.default_rng(options.seed).random([32, 6, 6, 3])
        return data.from_arrays(images, None, options)


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test vanish after it."""
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))


def test_a_registered_source_is_found_by_name(scratch_registry):
    data.register_source(Noise())
    assert data.SOURCES[0] == "noise"  # asked before the built-in sources
    assert data.describe("noise").steps_per_epoch(8) == 4
    batches = _batches(data.load("noise", resolution=4, channels=1, batch_size=8))
    assert len(batches) == 4
    _check_batch(batches[0], 8, 4, 1)
    data.register_source(Noise())  # the same definition again (a re-run cell) replaces it
    assert data.SOURCES.count("noise") == 1
    broken = Noise()
    broken.load = None
    with pytest.raises(ValueError, match="lacks the method"):
        data.register_source(broken)
    assert data.SOURCES[0] == "noise"  # a refused registration keeps the one it would replace

    class OtherNoise(Noise):
        pass

    with pytest.raises(ValueError, match="already registered"):
        data.register_source(OtherNoise())


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


def test_mirror_flips_half_the_images_left_right_by_the_seed_and_keeps_the_labels():
    images = np.zeros([64, 8, 8, 1], np.float32)
    images[:, :, :4] = 1.0  # the left half bright: a flip shows in the first pixel
    labels = np.arange(64) % 4
    options = data.DataOptions(resolution=8, channels=1, batch_size=64, seed=3,
                               conditional=True, mirror=True)

    def flips(dataset):
        batch, batch_labels = next(iter(dataset))
        assert sorted(batch_labels.numpy()) == sorted(labels)  # labels travel with images
        return batch.numpy()[:, 0, 0, 0] < 0

    flipped = flips(data.from_arrays(images, labels, options))
    assert 0.3 < flipped.mean() < 0.7
    np.testing.assert_array_equal(flipped, flips(data.from_arrays(images, labels, options)))
    assert not np.array_equal(flipped, flips(data.from_arrays(images, labels,
                                                              options.replace(seed=4))))
    unflipped = data.from_arrays(images, labels, options.replace(mirror=False))
    assert not flips(unflipped).any()
    # A new draw for each iteration (each Keras epoch), unless the order is fixed.
    for reshuffle in (True, False):
        dataset = data.from_arrays(images, labels, options.replace(reshuffle=reshuffle))
        first, second = (next(iter(dataset))[0].numpy()[:, 0, 0, 0] < 0 for _ in range(2))
        assert np.array_equal(first, second) is not reshuffle


def test_arrays_passed_as_a_source_name_point_to_from_arrays():
    with pytest.raises(ValueError, match=r"got a tuple; for arrays in memory use kgan.data."
                                         r"from_arrays\(images, labels, ...\)\.$"):
        data.load((np.zeros([4, 8, 8]), np.zeros(4)), resolution=8, channels=1, batch_size=4)


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


@pytest.mark.parametrize("values, dtype, value_range, expected", [
    ([0, 51, 255], np.uint8, None, [-1.0, -0.6, 1.0]),
    ([0.0, 0.5, 1.0], np.float32, None, [-1.0, 0.0, 1.0]),  # inferred [0, 1]
    ([-1.0, 0.0, 1.0], np.float32, None, [-1.0, 0.0, 1.0]),  # inferred [-1, 1]
    ([0.0, 0.5, 0.25], np.float32, (-1.0, 1.0), [0.0, 0.5, 0.25]),  # as given
], ids=["uint8", "unit_floats", "signed_floats", "explicit"])
def test_arrays_map_each_value_of_their_range_linearly(values, dtype, value_range, expected):
    images = np.ones([3, 4, 4, 1]) * np.asarray(values, np.float64)[:, None, None, None]
    dataset = data.from_arrays(images.astype(dtype), batch_size=3, resolution=4, channels=1,
                               value_range=value_range, shuffle=False)
    out = _batches(dataset)[0]
    out = out[0] if isinstance(out, tuple) else out
    np.testing.assert_allclose(np.asarray(out)[:, 0, 0, 0], expected, atol=1e-6)


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
    with pytest.raises(ValueError, match=r"global batch of 8.*--batch-size"):
        data.from_arrays(np.zeros([4, 8, 8], np.uint8), batch_size=8)
    with pytest.raises(ValueError, match="channels"):
        data.load("digits", resolution=8, channels=2, batch_size=8)
    with pytest.raises(ValueError, match="single split, 'train'"):
        data.load("digits", resolution=8, channels=1, batch_size=8, split="test")


def test_npz_file_is_the_arrays_source(tmp_path):
    path = tmp_path / "blobs.npz"
    images = np.random.default_rng(0).integers(0, 256, [10, 6, 6, 3], dtype=np.uint8)
    np.savez(path, images=images, labels=np.arange(10) % 4)
    info = data.describe(str(path))
    assert (info.kind, info.num_examples, info.num_classes, info.image_shape) == (
        "arrays", 10, 4, (6, 6, 3))
    dataset = data.load(str(path), resolution=4, channels=3, batch_size=5, conditional=True,
                        shuffle=False)
    (first, labels), _ = _batches(dataset)
    _check_batch(first, 5, 4, 3)
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 0])


def test_npz_without_labels_cannot_be_conditional(tmp_path):
    path = tmp_path / "unlabelled.npz"
    np.savez(path, images=np.zeros([4, 6, 6], np.uint8))
    with pytest.raises(ValueError, match=r"needs a 'labels' array.*it has images.*np\.savez"):
        data.load(str(path), resolution=4, channels=1, batch_size=2, conditional=True)


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
    # TensorFlow's reason, without its op names: "Unknown image file format. One of ..."
    assert skipped["notes.png"].startswith("Unknown image file format")
    assert not any("function_node" in why or "[Op:" in why for why in skipped.values())


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
    with pytest.raises(ValueError, match="found no files at all. Pass the folder that "
                                         "holds the images"):
        data.load(tmp_path / "empty_dir", resolution=8, channels=3, batch_size=1)
    (tmp_path / "empty_dir" / "scan.tif").write_bytes(b"II*")
    with pytest.raises(ValueError, match=r"found 1 other file.*Convert the images to PNG"):
        data.load(tmp_path / "empty_dir", resolution=8, channels=3, batch_size=1)


def test_photos_are_read_upright_as_viewers_show_them(tmp_path):
    """Phones store portraits as landscape pixels with an EXIF orientation; each of the 8
    orientations gives Pillow's `exif_transpose` image (lossless PNGs, no resize)."""
    from PIL import ImageOps

    quadrants = np.zeros([12, 20, 3], np.uint8)  # four colours: any flip or turn shows
    quadrants[:6, 10:], quadrants[6:, :10], quadrants[6:, 10:] = [255] * 3, [255, 0, 0], 128
    quadrants[0, 0] = [0, 0, 255]
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(quadrants).save(tmp_path / f"o{orientation}.png", exif=exif)
    report = data.scan_image_folder(tmp_path)
    assert report.orientations == tuple(range(1, 9))
    loaded = _batches(data.load(tmp_path, resolution=12, channels=3, batch_size=8,
                                shuffle=False))[0]
    for path, image in zip(report.files, loaded, strict=True):
        upright = np.asarray(ImageOps.exif_transpose(Image.open(path)), np.float32)
        height, width = upright.shape[:2]
        top, left = (height - 12) // 2, (width - 12) // 2
        expected = upright[top:top + 12, left:left + 12] / 127.5 - 1
        np.testing.assert_allclose(image, expected, atol=1e-5, err_msg=path)


def test_large_jpegs_decode_at_a_dct_scale_that_keeps_twice_the_resolution(tmp_path):
    assert [pipeline.jpeg_scale(side, 32) for side in (0, 100, 128, 256, 512, 4000)] == [
        0, 0, 1, 2, 3, 3]
    rows, columns = np.mgrid[0:600, 0:800]
    smooth = np.stack([columns * 255 / 800, rows * 255 / 600,
                       127 + 100 * np.sin(columns / 40.0)], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "photo.jpg", quality=95)
    assert data.scan_image_folder(tmp_path).jpeg_sides == (600,)
    scaled = _batches(data.load(tmp_path, resolution=32, channels=3, batch_size=1))[0][0]
    full = pipeline.decode_file(tf.constant(str(tmp_path / "photo.jpg")))
    full = pipeline.preprocess_image(pipeline.center_crop_square(full), 32, 3).numpy()
    # 2.3 grey levels on average here, most in the sine's chroma (libjpeg upsamples
    # chroma differently at DCT scale); the full decode would take 64x the pixels.
    assert np.abs(scaled - full).mean() * 127.5 < 4


def test_folder_scan_skips_hidden_names_follows_links_and_names_what_it_cannot_read(
        tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, [8, 8, 3], dtype=np.uint8)
    root, elsewhere = tmp_path / "images", tmp_path / "elsewhere"
    for path in ("cat/a.png", "cat/b.png", ".ipynb_checkpoints/c.png", "cat/.d.png"):
        _save(str(root / path), rgb, "PNG")
    _save(str(elsewhere / "dog" / "e.png"), rgb, "PNG")
    os.symlink(elsewhere / "dog", root / "dog")  # a linked class folder
    os.symlink(root, root / "cat" / "loop")  # a link loop ends at the folder seen
    _save(str(tmp_path / "runs" / "samples" / "grid.png"), rgb, "PNG")  # beside the data
    os.symlink(tmp_path, root / "cat" / "up")  # a link above the folder is not followed
    os.symlink(tmp_path / "gone.png", root / "cat" / "broken.png")
    Image.fromarray(rgb).convert("P").save(root / "cat" / "palette.bmp")
    (root / "cat" / "scan.tif").write_bytes(b"II*\0")
    (root / "cat" / "phone.HEIC").write_bytes(b"")
    report = data.scan_image_folder(root)
    assert [os.path.relpath(p, root) for p in report.files] == [
        "cat/a.png", "cat/b.png", "dog/e.png"]
    assert report.class_names == ("cat", "dog")
    skipped = {os.path.basename(p): why for p, why in report.skipped}
    assert skipped["broken.png"] == f"broken symbolic link to {tmp_path / 'gone.png'}"
    assert "palette or 1-bit BMP" in skipped["palette.bmp"]
    assert sorted(os.path.basename(p) for p in report.ignored) == ["phone.HEIC", "scan.tif"]
    with pytest.warns(data.SkippedImagesWarning, match="2 ignored in formats kgan cannot "
                      r"read \(2 other file\(s\) \(.heic, .tif\)\): convert them to PNG"):
        data.load(root, resolution=8, channels=3, batch_size=1)


def test_a_later_scan_decodes_only_new_or_changed_files(tmp_path, monkeypatch):
    """Scan results outlive the process (kgan.data.scans), so a resume or kgan-evaluate
    does not decode a large folder again."""
    from kgan.data import folder

    rgb = np.random.default_rng(0).integers(0, 256, [8, 8, 3], dtype=np.uint8)
    for name in ("a.png", "b.png", "c.png"):
        _save(str(tmp_path / "photos" / name), rgb, "PNG")
    (tmp_path / "photos" / "bad.png").write_text("not an image")
    first = data.scan_image_folder(tmp_path / "photos")
    decoded = []
    decodable_files = pipeline.decodable_files
    monkeypatch.setattr(pipeline, "decodable_files",
                        lambda paths: decoded.append(paths) or decodable_files(paths))
    folder._validate.cache_clear()  # as a new process would start
    assert data.scan_image_folder(tmp_path / "photos") == first and decoded == []
    _save(str(tmp_path / "photos" / "b.png"), rgb[:4], "PNG")  # changed
    _save(str(tmp_path / "photos" / "d.png"), rgb, "PNG")  # new
    again = data.scan_image_folder(tmp_path / "photos")
    assert [[os.path.basename(p) for p in paths] for paths in decoded] == [["b.png", "d.png"]]
    assert len(again.files) == 4 and [os.path.basename(p) for p, _ in again.skipped] == [
        "bad.png"]


def test_a_folder_of_images_smaller_than_the_resolution_warns(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, [24, 30, 3], dtype=np.uint8)
    for name in ("a.png", "b.jpg", "c.png"):
        _save(str(tmp_path / name), rgb, "JPEG" if name.endswith("jpg") else "PNG")
    assert data.scan_image_folder(tmp_path).sides == (24, 24, 24)
    with pytest.warns(data.UpscaledImagesWarning, match="3 of the 3 images .* smaller than "
                      "32 px on their shorter side and are upscaled"):
        data.load(tmp_path, resolution=32, channels=3, batch_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", data.UpscaledImagesWarning)
        data.load(tmp_path, resolution=16, channels=3, batch_size=1)


def test_unlabelled_folder_says_conditional_needs_class_subfolders(tmp_path):
    _save(str(tmp_path / "x.png"), np.zeros([4, 4], np.uint8), "PNG")
    _save(str(tmp_path / "cat" / "y.png"), np.zeros([4, 4], np.uint8), "PNG")
    with pytest.raises(ValueError) as caught:
        data.load(tmp_path, resolution=4, channels=1, batch_size=1, conditional=True)
    message = str(caught.value)
    assert "--conditional" in message and "class subfolders" in message
    assert f"{tmp_path}/cat/*.jpg and {tmp_path}/dog/*.jpg" in message
    assert "1 image(s) lie directly in" in message and "x.png" in message


def test_a_single_class_folder_cannot_be_conditional(tmp_path):
    _save(str(tmp_path / "images" / "a.png"), np.zeros([4, 4], np.uint8), "PNG")
    assert data.describe(tmp_path).num_classes == 1
    with pytest.raises(ValueError, match="two or more classes.*single class subfolder, 'images'"):
        data.load(tmp_path, resolution=4, channels=1, batch_size=1, conditional=True)


def test_folder_mistakes_name_the_fix(tmp_path):
    (tmp_path / "scan.tif").write_bytes(b"II*")
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ValueError, match=r"found 2 other file\(s\) \(\.tif, \.txt\)"):
        data.describe(tmp_path)
    with pytest.raises(FileNotFoundError, match="is a file, not a folder"):
        data.load(str(tmp_path / "scan.tif"), resolution=4, channels=1, batch_size=1)
    _save(str(tmp_path / "a.png"), np.zeros([4, 4], np.uint8), "PNG")
    with pytest.raises(ValueError, match="single split, 'train'.*own folder"):
        data.load(tmp_path, resolution=4, channels=1, batch_size=1, split="test")


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
        with pytest.raises(ValueError, match="--conditional.*no ClassLabel"):
            data.load("celeb_a", resolution=8, channels=3, batch_size=2, conditional=True)


def test_offline_tfds_request_fails_fast_with_the_fix(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    def no_download(*args, **kwargs):  # fast means: never tries the network
        pytest.fail("data.load tried to download without download=True")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    monkeypatch.setattr(tfds.download.DownloadManager, "download", no_download)
    with pytest.raises(data.DatasetNotPreparedError) as caught:
        data.load("mnist", resolution=8, channels=1, batch_size=2, data_dir=str(tmp_path))
    message = str(caught.value)
    assert str(tmp_path) in message and "tfds build mnist" in message
    # both spellings of both ways out: the Python argument and the kgan-train flag
    assert "download=True (kgan-train: --download)" in message
    assert "data_dir=PATH (kgan-train, kgan-evaluate: --data-dir PATH)" in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert not any(tmp_path.iterdir())  # nothing half-downloaded


def test_unknown_source_is_a_clear_error():
    with pytest.raises(ValueError, match="neither an existing folder nor a TFDS") as caught:
        data.load("no_such_dataset_xyz", resolution=8, channels=1, batch_size=2)
    assert "https://www.tensorflow.org/datasets/catalog" in str(caught.value)
    assert "a .npz file" in str(caught.value) and "'digits'" in str(caught.value)
    with pytest.raises(ValueError, match="Did you mean 'mnist'"):
        data.describe("mnsit")
    # A name only a plugin source knows (used without --import) is not TFDS's grammar lesson.
    with pytest.raises(ValueError, match=r"'noise:64' is neither .* your own module: "
                                         r"--import MODULE\)\.$"):
        data.describe("noise:64")


def test_missing_folder_path_is_not_mistaken_for_a_tfds_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="Image folder not found"):
        data.load(str(tmp_path / "nope"), resolution=8, channels=1, batch_size=2)
