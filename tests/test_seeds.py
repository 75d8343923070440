"""One seed rule (every int64, negative ones too) and one truncation range
(kgan.serving.limits.TRUNCATION_RANGE) for the export, kgan-generate, the demo and
serving/client.py."""

import argparse
import os

import keras
import numpy as np
import pytest
from harness import assert_close_images
from PIL import Image

from kgan.cli import generate as generate_cli
from kgan.cli.seeds import join_negative_values, parse_seeds
from kgan.demo import params
from kgan.demo.model import ModelInfo, Truncation, check_seeds, check_truncation, truncation_from
from kgan.serving.limits import INT64_MAX, INT64_MIN, TRUNCATION_RANGE


@pytest.mark.parametrize("text, seeds", [
    ("-3", [-3]), ("-5--3", [-5, -4, -3]), ("-1-1", [-1, 0, 1]), ("0-2, 7", [0, 1, 2, 7]),
    (str(INT64_MIN), [INT64_MIN]),
])
def test_seed_lists_take_every_int64(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, words", [
    ("a-b", "is not a seed or a range"), ("3-1", "is empty"),
    (str(INT64_MAX + 1), "int64's range"), ("0-100000", "more than 100000 seeds"),
])
def test_bad_seed_lists(text, words):
    with pytest.raises(argparse.ArgumentTypeError, match=words):
        parse_seeds(text)


def test_the_gan_and_the_numpy_clients_give_a_seed_the_same_default_label():
    from kgan.gan import randomness
    from kgan.serving import limits

    seeds = np.array([INT64_MIN, -11, -1, 0, 9, 10, 2**40, INT64_MAX])
    for classes in (1, 3, 10):
        np.testing.assert_array_equal(randomness.labels_from_seeds(seeds, classes),
                                      limits.labels_from_seeds(seeds, classes))
    assert list(limits.labels_from_seeds([-1, 0, 11], 10)) == [9, 0, 1]  # floor modulo


def test_negative_values_are_joined_to_their_flag():
    assert join_negative_values(["--seeds", "-5--1", "--grid", "g.png"]) == [
        "--seeds=-5--1", "--grid", "g.png"]
    assert join_negative_values(["--seeds", "--grid"]) == ["--seeds", "--grid"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """An unconditional 8x8 export of a tiny bare generator."""
    from kgan.serving.export import export_generator

    keras.utils.set_random_seed(1)
    z = keras.Input([4])
    x = keras.layers.Dense(64, activation="tanh", kernel_initializer=keras.initializers.
                           RandomNormal(stddev=3.0))(z)
    generator = keras.Model(z, keras.layers.Reshape([8, 8, 1])(x))
    root = tmp_path_factory.mktemp("exports")
    return export_generator(generator, root, model_name="tiny")


def test_kgan_generate_takes_negative_seeds(export, tmp_path):
    from kgan.serving.export import ExportedGenerator

    out = tmp_path / "pngs"
    assert generate_cli.main([os.path.dirname(export), "--seeds", "-3", "--out", str(out)]) == 0
    assert generate_cli.main([os.path.dirname(export), "--seeds", "-5--4", "--out",
                              str(out)]) == 0
    assert sorted(os.listdir(out)) == ["seed_-3.png", "seed_-4.png", "seed_-5.png"]
    expected = ExportedGenerator(export).generate([-3, -5])["images"]
    for seed, image in zip((-3, -5), expected, strict=True):
        assert_close_images(np.asarray(Image.open(out / f"seed_{seed}.png")), image[..., 0])


def test_the_demo_takes_negative_seeds():
    info = ModelInfo("m", (8, 8, 1), 4)
    assert params.parse_view({"seed": "-3", "n": "4"}, info).seeds == [-3, -2, -1, 0]
    view = params.parse_view({"a": "-7", "b": str(INT64_MIN)}, info)
    assert (view.a, view.b) == (-7, INT64_MIN)
    assert check_seeds([-3, INT64_MIN]).tolist() == [-3, INT64_MIN]
    with pytest.raises(params.BadRequest, match=f"from {INT64_MIN} to {INT64_MAX}"):
        params.parse_view({"seed": str(INT64_MIN - 1)}, info)


@pytest.mark.parametrize("value", [TRUNCATION_RANGE[0] - 0.5, TRUNCATION_RANGE[1] + 3])
def test_kgan_generate_refuses_truncation_outside_the_export_range(export, value, tmp_path,
                                                                   capsys):
    code = generate_cli.main([os.path.dirname(export), "--truncation", str(value), "--grid",
                              str(tmp_path / "g.png")])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("kgan-generate: error: truncation must lie in [-1, 2]"), error
    assert not (tmp_path / "g.png").exists()


def test_a_kgan_export_accepts_the_whole_range_in_the_demo():
    from kgan.serving.signatures import TRUNCATION_INFO

    assert (TRUNCATION_INFO["min"], TRUNCATION_INFO["max"]) == TRUNCATION_RANGE
    spec = truncation_from({"generate_truncated": {"seed": 1, "truncation": 1}},
                           TRUNCATION_INFO)
    assert spec == Truncation(0.7, *TRUNCATION_RANGE, rank=1, signature="generate_truncated",
                              latents_signature=None)
    for value in (*TRUNCATION_RANGE, 1.5, -0.5):
        assert check_truncation(value, spec) == value
    with pytest.raises(ValueError, match="from -1 to 2"):
        check_truncation(2.5, spec)


@pytest.mark.parametrize("d_steps", [1, 2, 5])
def test_every_draw_of_a_train_step_has_its_own_stream(d_steps):
    """No two draws of a run share a counter (a collision would correlate their noise),
    and the layout keeps kgan 0.2's numbers, so old runs resume on the same draws."""
    from kgan.gan.randomness import StreamLayout

    layout = StreamLayout(d_steps)
    plain = [layout.d_step(k, draw) for k in range(d_steps) for draw in layout.D_STEP]
    plain += [layout.g_step(draw) for draw in layout.G_STEP]
    style = [layout.style_pass(p, draw) for p in range(d_steps + 2) for draw in layout.STYLE_PASS]
    style += [layout.path_length(draw) for draw in layout.PATH_LENGTH]
    assert sorted(plain) == list(range(layout.per_step))  # dense: 4 (d_steps + 1)
    assert len(set(style)) == len(style) and max(style) < layout.style_per_step
    counters = [int(layout.counter(step, s)) for step in range(3) for s in plain]
    counters += [int(layout.style_counter(step, s)) for step in range(3) for s in style]
    assert len(set(counters)) == len(counters)  # across steps too; style ones below zero
    assert min(counters[:3 * len(plain)]) >= 0 > max(counters[3 * len(plain):])
    # kgan 0.2's formulas: D step k draws from 4k + {0..3}, G from 4 d_steps + {0..3}
    assert layout.d_step(1, "fake") == 7 and layout.g_step("real") == 4 * d_steps + 3
    assert int(layout.counter(2, 1)) == 2 * 4 * (d_steps + 1) + 1
    assert int(layout.style_counter(2, 1)) == -1 - (2 * 4 * (d_steps + 3) + 1)
