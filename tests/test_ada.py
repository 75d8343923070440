"""ADA's 'bgc' pipeline (kgan.gan.ada) against stylegan2-ada-pytorch's AugmentPipe, and its
draws: gates at p x multiplier, identity at p = 0, replica exactness, gradients."""

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops
from scipy.special import erfinv

from kgan.gan import ada, augment_policy, backends, randomness
from kgan.gan.augment import Augment

REFERENCE = np.load(Path(__file__).parent / "data" / "ada_reference.npz")
GROUPS = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
}
GROUPS["bgc"] = GROUPS["blit"] + GROUPS["geom"] + GROUPS["color"]
SINGLE = {op: (op,) for ops_ in GROUPS.values() for op in ops_}
# the image-space filter pads 21 pixels: its cases are 32 px
FILTERED = {"filter": ("filter",), "bgcf": (*GROUPS["bgc"], "filter")}


def debug_params(op_names, q: float, channels: int) -> dict:
    """The parameters AugmentPipe(...)(images, debug_percentile=q) uses (its own hook)."""
    normal = float(erfinv(q * 2 - 1))
    values = {
        "xflip": np.floor(q * 2), "rotate90": np.floor(q * 4),
        "xint": np.full(2, (q * 2 - 1) * ada.XINT_MAX),
        "scale": 2 ** (normal * ada.SCALE_STD),
        "rotate_pre": (q * 2 - 1) * np.pi * ada.ROTATE_MAX, "rotate_post": 0.0,
        "aniso": 2 ** (normal * ada.ANISO_STD), "xfrac": np.full(2, normal * ada.XFRAC_STD),
        "brightness": normal * ada.BRIGHTNESS_STD, "contrast": 2 ** (normal * ada.CONTRAST_STD),
        "lumaflip": np.floor(q * 2), "hue": (q * 2 - 1) * np.pi * ada.HUE_MAX,
        "saturation": 2 ** (normal * ada.SATURATION_STD),
        "filter": np.full(4, 2 ** (normal * ada.IMGFILTER_STD)),
    }
    keys = [k for name in op_names
            for k in (("rotate_pre", "rotate_post") if name == "rotate" else (name,))]
    if channels == 1:
        keys = [k for k in keys if k not in ("hue", "saturation")]
    return {k: ops.convert_to_tensor(np.asarray(values[k], np.float32)[None]) for k in keys}


@pytest.mark.parametrize("q", [0.1, 0.6, 0.93])
@pytest.mark.parametrize("colour", [True, False])
@pytest.mark.parametrize("name", [*SINGLE, *GROUPS, *FILTERED])
def test_every_op_matches_stylegan2_ada_pytorch(name, colour, q):
    kind = ("rgb" if colour else "grey") + ("32" if name in FILTERED else "")
    image = REFERENCE[kind]
    params = debug_params({**SINGLE, **GROUPS, **FILTERED}[name], q, image.shape[-1])
    out = ops.convert_to_numpy(ada.apply(ops.convert_to_tensor(image[None]), params))[0]
    expected = REFERENCE[f"{name}/{q}/{kind}"]
    # measured: within 9e-6 (the reference pads by its margin, kgan by the largest)
    np.testing.assert_allclose(out, expected, atol=1e-4)


@pytest.mark.backends
def test_bgcf_matches_the_reference_on_every_backend():
    for q in (0.1, 0.6, 0.93):
        for kind in ("rgb32", "grey32"):
            image = REFERENCE[kind]
            params = debug_params(FILTERED["bgcf"], q, image.shape[-1])
            out = ops.convert_to_numpy(ada.apply(ops.convert_to_tensor(image[None]), params))
            np.testing.assert_allclose(out[0], REFERENCE[f"bgcf/{q}/{kind}"], atol=1e-4)


# ---------------------------------------------------------------- draws and gates
def draw(policy: str, probability: float, batch: int = 4000, channels: int = 3) -> dict:
    strengths = dict(augment_policy.parse(policy))
    params = ada.draw(batch, randomness.seed(1, 2), ops.convert_to_tensor(probability),
                      strengths, (16, 16, channels))
    return {key: ops.convert_to_numpy(value) for key, value in params.items()}


def test_each_op_hits_an_image_with_p_times_its_groups_multiplier():
    params = draw("blit,geom,ada_color:0.5", probability=0.6)
    hit = {key: (value != identity).reshape(len(value), -1).any(axis=1).mean()
           for key, identity in (("xint", 0.0), ("scale", 1.0), ("aniso", 1.0), ("xfrac", 0.0),
                                 ("brightness", 0.0), ("contrast", 1.0), ("hue", 0.0),
                                 ("saturation", 1.0))
           for value in [params[key]]}
    for key in ("xint", "scale", "aniso", "xfrac"):
        assert hit[key] == pytest.approx(0.6, abs=0.04), key
    for key in ("brightness", "contrast", "hue", "saturation"):
        assert hit[key] == pytest.approx(0.3, abs=0.04), key
    # values drawn under an open gate: a flip half the time, a quarter turn 3/4 of it
    assert (params["xflip"] == 1).mean() == pytest.approx(0.6 * 0.5, abs=0.04)
    assert (params["rotate90"] != 0).mean() == pytest.approx(0.6 * 0.75, abs=0.04)
    assert (params["lumaflip"] == 1).mean() == pytest.approx(0.3 * 0.5, abs=0.04)
    # two rotations, each with 1 - sqrt(1 - p): one or both with probability p
    rotated = (params["rotate_pre"] != 0) | (params["rotate_post"] != 0)
    assert rotated.mean() == pytest.approx(0.6, abs=0.04)


def test_filter_and_noise_gates_open_with_p_times_their_multiplier():
    params = draw("filter,noise:0.5", probability=0.6, batch=2000)
    for band in range(4):  # each band's gain has its own gate
        assert (params["filter"][:, band] != 1.0).mean() == pytest.approx(0.6, abs=0.04), band
    noisy = (params["noise"].reshape(2000, -1) != 0).any(axis=1).mean()
    assert noisy == pytest.approx(0.3, abs=0.04)
    closed = draw("bgcfn", probability=0.0, batch=64)
    assert (closed["filter"] == 1.0).all() and (closed["noise"] == 0.0).all()


def test_parameters_follow_adas_distributions():
    params = draw("bgc", probability=1.0)
    assert np.abs(params["xint"]).max() <= ada.XINT_MAX
    assert np.std(np.log2(params["scale"])) == pytest.approx(ada.SCALE_STD, rel=0.1)
    assert np.std(np.log2(params["aniso"])) == pytest.approx(ada.ANISO_STD, rel=0.1)
    assert np.std(params["xfrac"]) == pytest.approx(ada.XFRAC_STD, rel=0.1)
    assert np.abs(params["rotate_pre"]).max() <= np.pi
    assert np.std(params["brightness"]) == pytest.approx(ada.BRIGHTNESS_STD, rel=0.1)
    assert np.std(np.log2(params["contrast"])) == pytest.approx(ada.CONTRAST_STD, rel=0.1)
    assert np.std(np.log2(params["saturation"])) == pytest.approx(ada.SATURATION_STD, rel=0.1)
    assert set(np.unique(params["rotate90"])) == {0.0, 1.0, 2.0, 3.0}
    assert "hue" not in draw("bgc", 1.0, batch=8, channels=1)  # grey: no hue, saturation


@pytest.mark.parametrize("shape", [(16, 16, 3), (12, 20, 1)])
def test_closed_gates_leave_the_images_as_they_were(shape):
    images = np.random.default_rng(1).uniform(-1, 1, (4, *shape)).astype("float32")
    params = {k: ops.convert_to_tensor(v) for k, v in draw("bgc", 0.0, 4, shape[-1]).items()}
    out = ops.convert_to_numpy(ada.apply(ops.convert_to_tensor(images), params))
    # sym6 is orthogonal: its downsampling undoes its upsampling, to float rounding (an
    # x-flip is not exact that way: sym6 is not symmetric; the reference cases cover it)
    np.testing.assert_allclose(out, images, atol=1e-5)


def test_colour_ops_need_one_or_three_channels():
    params = {"brightness": ops.zeros([2])}
    with pytest.raises(ValueError, match="1 or 3 channels, got 4"):
        ada.apply(ops.zeros([2, 8, 8, 4]), params)


# ---------------------------------------------------------------- policy strings
def test_policy_strings_name_groups_aliases_and_multipliers():
    assert augment_policy.parse("bgc") == (("blit", 1.0), ("geom", 1.0), ("ada_color", 1.0))
    # R3GAN's pipeline: ADA's geometry, its colour at half the probability, cutout
    assert augment_policy.parse("blit, geom,ada_color:0.5,cutout") == (
        ("blit", 1.0), ("geom", 1.0), ("ada_color", 0.5), ("cutout", 1.0))
    assert augment_policy.parse("bgc:0.25")[2] == ("ada_color", 0.25)
    # ADA's fuller pipelines; bgcfnc's cutout is kgan's square (DiffAugment's)
    assert [name for name, _ in augment_policy.parse("bgcfnc")] == [
        "blit", "geom", "ada_color", "filter", "noise", "cutout"]
    parsed = augment_policy.parse(["translation", "ada_color:0.3"])
    assert augment_policy.parse(augment_policy.format_policy(parsed)) == parsed


@pytest.mark.parametrize(("policy", "message"), [
    ("colour", "unknown augmentation 'colour'; choose from color, translation, cutout, blit, "
               "geom, ada_color, filter, noise, bgc, bgcf, bgcfn, bgcfnc"),
    ("ada_color:1.5", r"ada_color:1.5: the multiplier after ':' must be a number in \(0, 1\]"),
    ("geom:half", "geom:half: the multiplier"),
    ("blit,bgc", "augmentation blit named twice"),
])
def test_bad_policies_say_what_is_wrong(policy, message):
    with pytest.raises(ValueError, match=message):
        augment_policy.parse(policy)


def test_a_layer_keeps_its_multipliers_through_its_config():
    layer = Augment("bgc:0.5,cutout", initial_probability=1.0, adaptive=False)
    assert layer.get_config()["policy"] == ["blit:0.5", "geom:0.5", "ada_color:0.5", "cutout"]
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert clone.get_config() == layer.get_config()
    images = np.random.default_rng(2).uniform(-1, 1, (6, 16, 16, 3)).astype("float32")
    seed = randomness.seed(4, 5)
    np.testing.assert_allclose(ops.convert_to_numpy(clone(images, seed=seed)),
                               ops.convert_to_numpy(layer(images, seed=seed)), atol=1e-6)


def test_filter_and_noise_follow_adas_distributions_and_pass_gradients():
    params = draw("filter,noise", probability=1.0, batch=2000)
    assert params["filter"].shape == (2000, 4)
    assert np.std(np.log2(params["filter"])) == pytest.approx(ada.IMGFILTER_STD, rel=0.1)
    # noise of std |N(0, 0.1)| per image: E|N(0, 1)| = sqrt(2 / pi)
    sigma = params["noise"].reshape(2000, -1).std(axis=1)
    assert sigma.mean() == pytest.approx(ada.NOISE_STD * np.sqrt(2 / np.pi), rel=0.1)
    layer = Augment("bgcfn", initial_probability=1.0, adaptive=False)
    images = ops.convert_to_tensor(
        np.random.default_rng(3).uniform(-1, 1, (4, 32, 32, 3)).astype("float32"))
    weights = np.random.default_rng(4).normal(size=(4, 32, 32, 3)).astype("float32")
    _, pullback = backends.current().vjp(lambda x: layer(x, seed=randomness.seed(1, 1)), images)
    gradient = ops.convert_to_numpy(pullback(ops.convert_to_tensor(weights))[0])
    assert np.isfinite(gradient).all() and (gradient != 0).mean() > 0.9


def test_the_filter_needs_images_larger_than_its_padding():
    with pytest.raises(ValueError, match="larger than 21 px on each side .* got 16x16"):
        ada.band_filter(ops.zeros([2, 16, 16, 3]), ops.ones([2, 4]))

