"""kgan-generate: grids equal GAN.generate, PNGs per seed, interpolation GIF and MP4."""

from __future__ import annotations

import io
import signal
import subprocess
import sys

import imageio.v3 as iio
import keras
import numpy as np
import pytest
from harness import assert_close_images, interrupt_with
from PIL import Image
from serving_fakes import run_in_progress

import kgan
from kgan.cli import generate as cli
from kgan.demo import media
from kgan.gan.sampling import latents_from_seeds
from kgan.images import tile_grid, to_uint8_numpy

LATENT, RES = 4, 8


def tiny_gan(num_classes=None, seed=0) -> kgan.GAN:
    keras.utils.set_random_seed(seed)
    generator, discriminator = kgan.networks.get("dcgan")(
        RES, 1, latent_dim=LATENT, num_classes=num_classes, base_filters=4)
    layer = generator.layers[-1]  # spread the untrained tanh output so images differ
    layer.kernel.assign(layer.kernel * 30.0)
    return kgan.GAN(generator, discriminator, latent_dim=LATENT, num_classes=num_classes)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """One conditional GAN as a .keras file, a run directory and an export."""
    root = tmp_path_factory.mktemp("sources")
    gan = tiny_gan(num_classes=3, seed=4)
    (root / "run").mkdir()
    gan.save(root / "run" / "final.keras")
    gan.save(root / "gan.keras")
    kgan.export_generator(gan, root / "exports", model_name="digits")
    return gan, {"keras": str(root / "gan.keras"), "run": str(root / "run"),
                 "export": str(root / "exports" / "digits")}


def _png(path) -> np.ndarray:
    image = np.array(Image.open(path))
    return image[..., None] if image.ndim == 2 else image


@pytest.mark.parametrize("kind", ["keras", "run", "export"])
def test_grid_matches_gan_generate(sources, kind, tmp_path):
    gan, paths = sources
    out = tmp_path / "grid.png"
    assert cli.main([paths[kind], "--seeds", "5-10", "--grid", str(out), "--columns", "3",
                     "--padding", "2"]) == 0
    expected = tile_grid(to_uint8_numpy(gan.generate(6, seed=5)), columns=3, padding=2)
    assert_close_images(_png(out), expected)


def test_a_run_in_progress_draws_from_its_newest_checkpoint(tmp_path, capsys):
    gan, run_dir = run_in_progress(tmp_path, steps_done=5, steps_per_epoch=5)
    assert cli.main([run_dir, "--seeds", "0-3", "--grid", str(tmp_path / "g.png"),
                     "--padding", "0"]) == 0
    assert capsys.readouterr().err.endswith("using its newest checkpoint, step 5 (the end "
                                            "of epoch 1 of 2)\n")
    assert_close_images(_png(tmp_path / "g.png"), tile_grid(to_uint8_numpy(gan.generate(4, seed=0)),
                                               padding=0))


def test_single_pngs_by_seed_and_fixed_label(sources, tmp_path):
    gan, paths = sources
    assert cli.main([paths["export"], "--seeds", "3,42", "--label", "2",
                     "--out", str(tmp_path)]) == 0
    for seed in (3, 42):
        expected = to_uint8_numpy(gan.generate(1, seed=seed, labels=[2]))[0]
        assert_close_images(_png(tmp_path / f"seed_{seed}.png"), expected)


def test_scale_enlarges_without_smoothing(sources, tmp_path):
    _, paths = sources
    assert cli.main([paths["export"], "--seeds", "0", "--grid", str(tmp_path / "a.png"),
                     "--padding", "0"]) == 0
    assert cli.main([paths["export"], "--seeds", "0", "--grid", str(tmp_path / "b.png"),
                     "--padding", "0", "--scale", "3"]) == 0
    small, big = _png(tmp_path / "a.png"), _png(tmp_path / "b.png")
    np.testing.assert_array_equal(big, small.repeat(3, 0).repeat(3, 1))


def test_gif_has_the_frames_and_size_asked_for(sources, tmp_path):
    gan, paths = sources
    out = tmp_path / "walk.gif"
    assert cli.main([paths["export"], "--interpolate", "1", "2", "--frames", "7",
                     "--label", "0", "--scale", "2", "--gif", str(out)]) == 0
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (7, 2 * RES, 2 * RES)
    # The first and last frames are the two seeds' images (class 0), enlarged.
    ends = to_uint8_numpy(gan.generate(latents_from_seeds(np.array([1, 2]), LATENT).numpy(),
                                       labels=[0, 0]))
    assert_close_images(frames[0][..., :1], media.upscale(ends[0], 2))
    assert_close_images(frames[-1][..., :1], media.upscale(ends[1], 2))
    bounced = tmp_path / "loop.gif"
    assert cli.main([paths["keras"], "--interpolate", "1", "2", "--frames", "7", "--bounce",
                     "--gif", str(bounced)]) == 0
    assert Image.open(bounced).n_frames == 12  # 7 there, 5 back


def test_mp4_has_the_frames_and_size_asked_for(sources, tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="MP4 needs imageio-ffmpeg (dev extra)")
    _, paths = sources
    out = tmp_path / "walk.mp4"
    assert cli.main([paths["run"], "--interpolate", "3", "9", "--frames", "10", "--scale", "4",
                     "--fps", "8", "--mp4", str(out)]) == 0
    frames = iio.imread(out, index=None, plugin="FFMPEG")
    assert frames.shape == (10, 4 * RES, 4 * RES, 3)
    assert iio.immeta(out, plugin="FFMPEG")["fps"] == pytest.approx(8)


def test_odd_mp4_size_is_refused_with_the_fix():
    frames = np.zeros((2, 5, 6, 1), np.uint8)
    with pytest.raises(ValueError, match="even width and height.*--scale 2"):
        media.write_mp4("unused.mp4", frames)


def test_slerp_keeps_the_ends_and_the_norm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=64), rng.normal(size=64)
    path = media.slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    # Two independent 64-d normals are nearly orthogonal, so the middle keeps its norm
    # (a straight line would shrink it to about 1/sqrt(2)).
    middle = np.linalg.norm(path[2]) / np.mean([np.linalg.norm(a), np.linalg.norm(b)])
    assert 0.9 < middle < 1.1
    np.testing.assert_allclose(media.slerp(a, a, np.array([0.5]))[0], a, atol=1e-6)


@pytest.mark.parametrize("argv, words", [
    (["--seeds", "0-3"], "nothing to write"),
    (["--gif", "x.gif"], "pass --interpolate A B"),
    (["--interpolate", "1", "2"], "needs --gif or --mp4"),
    (["--seeds", "0", "--grid", "g.png", "--scale", "0"], "--scale must be in 1..64, got 0"),
    (["--seeds", "0", "--grid", "g.png", "--scale", "1000"], "--scale must be in 1..64"),
    (["--seeds", "0", "--grid", "g.png", "--padding", "100000"],
     "--padding must be in 0..64, got 100000"),
    (["--seeds", "0", "--grid", "g.png", "--columns", "0"], "--columns must be >= 1, got 0"),
    (["--interpolate", "1", "2", "--gif", "x.gif", "--fps", "nan"], "--fps must be in (0, 100]"),
    (["--seeds", "0", "--grid", "file/g.png"], "--grid: "),  # tmp_path/file is a file
    (["--seeds", "0", "--out", "file/pngs"], "--out: "),
    (["--interpolate", "1", "2", "--gif", "x.gif", "--fps", "inf"], "--fps must be in (0, 100]"),
    (["--seeds", "0", "--grid", "g.png", "--label", "5"], "from 0 to 2"),
    (["--seeds", "0-15", "--grid", "g.png", "--label", "5"], "3 classes), got 5\n"),
    (["--interpolate", "1", "2", "--frames", "1", "--gif", "x.gif"], "from 2 to 64"),
    (["--seeds", "0", "--grid", "final.keras"], "--grid writes a PNG file: name it *.png"),
    (["--seeds", "0", "--grid", "g.jpg"], "name it *.png, got g.jpg"),
    (["--seeds", "0", "--grid", "."], "--grid takes a file name, and . is a folder"),
    (["--interpolate", "1", "2", "--gif", "walk.png"], "--gif writes a GIF file"),
])
def test_bad_requests_exit_2_with_a_reason(sources, argv, words, capsys, tmp_path,
                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("a file, not a folder")
    assert cli.main([sources[1]["export"], *argv]) == 2
    assert words in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["file"]  # nothing half-written


def test_missing_source_and_bad_seeds(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nope"), "--grid", "g.png"]) == 2
    assert "export not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(tmp_path), "--seeds", "a-b", "--grid", "g.png"])
    assert exit_info.value.code == 2
    assert cli.parse_seeds("0-2, 7") == [0, 1, 2, 7]


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_writing_exits_128_plus_its_number(sources, sig, status, monkeypatch,
                                                          tmp_path):
    def interrupted(backend, args):
        interrupt_with(sig)

    monkeypatch.setattr(cli, "write_outputs", interrupted)
    assert cli.main([sources[1]["export"], "--grid", str(tmp_path / "g.png")]) == status


def test_help_does_not_import_tensorflow():
    code = ("import sys\nfrom kgan.cli import generate\ntry:\n    generate.main(['--help'])\n"
            "except SystemExit as e:\n    print('exit', e.code)\n"
            "print('tf', 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert "--interpolate" in result.stdout and "exit 0" in result.stdout
    assert "tf False" in result.stdout


def test_gif_bytes_round_trip():
    frames = np.random.default_rng(1).integers(0, 256, (4, 6, 6, 1), dtype=np.uint8)
    decoded = iio.imread(io.BytesIO(media.gif_bytes(frames)), index=None, extension=".gif")
    np.testing.assert_array_equal(decoded[..., 0], frames[..., 0])


USER_LAYER = '''
import keras


@keras.saving.register_keras_serializable(package="user")
class Doubled(keras.layers.Layer):
    def call(self, x):
        return 2.0 * x
'''


def test_a_model_with_its_own_layers_needs_import_and_says_so(tmp_path, monkeypatch, capsys):
    (tmp_path / "doubled_layer.py").write_text(USER_LAYER)
    monkeypatch.syspath_prepend(str(tmp_path))
    import doubled_layer

    generator = keras.Sequential([keras.Input((4,)), doubled_layer.Doubled(),
                                  keras.layers.Dense(16), keras.layers.Reshape((4, 4, 1))])
    discriminator = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                      keras.layers.Dense(1)])
    kgan.GAN(generator, discriminator, latent_dim=4).save(tmp_path / "mine.keras")
    monkeypatch.delitem(keras.saving.get_custom_objects(), "user>Doubled")
    monkeypatch.delitem(sys.modules, "doubled_layer")  # as in a process that never saw it
    argv = [str(tmp_path / "mine.keras"), "--grid", str(tmp_path / "g.png"), "--seeds", "0-3"]
    assert cli.main(argv) == 2
    assert ("it uses Doubled, which is not registered in this process: pass --import "
            "doubled_layer") in capsys.readouterr().err
    assert cli.main([*argv, "--import", "doubled_layer"]) == 0
    assert (tmp_path / "g.png").is_file()


def test_a_module_that_fails_on_import_is_named_with_import(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main([str(tmp_path / "any.keras"), "--grid", str(tmp_path / "g.png"),
                     "--import", "broken_plugin"]) == 2
    assert ("--import broken_plugin failed while importing it: RuntimeError: boom (in its "
            "own code; python -c 'import broken_plugin' shows the traceback)"
            ) in capsys.readouterr().err


@pytest.mark.parametrize("command", ["kgan-generate", "kgan-evaluate", "kgan-export"])
def test_a_keras_backend_kgan_does_not_run_on_is_refused_in_one_line(
        command, tmp_path, monkeypatch, capsys):
    from kgan.cli import evaluate, export

    main = {"kgan-generate": cli.main, "kgan-evaluate": evaluate.main,
            "kgan-export": export.main}[command]
    argv = {"kgan-generate": [str(tmp_path), "--grid", str(tmp_path / "g.png")],
            "kgan-evaluate": [str(tmp_path), "--data", "digits"],
            "kgan-export": [str(tmp_path), str(tmp_path / "exp")]}[command]
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert main(argv) == 2
    assert (f"KERAS_BACKEND=torch: {command} runs on tensorflow or jax; unset KERAS_BACKEND "
            "or set it to one of them") in capsys.readouterr().err
