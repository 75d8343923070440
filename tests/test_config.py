"""TrainConfig: validation messages, JSON round trip, presets, resume compatibility."""

import gzip
import json
import os

import numpy as np
import pytest

from kgan import data
from kgan.data import idx
from kgan.training.config import (
    PRESETS,
    RESUMABLE_FIELDS,
    ConfigError,
    TrainConfig,
    preset_for,
)


def test_the_digits_preset_is_the_conditional_relativistic_demo():
    config = TrainConfig.from_preset("digits")
    assert (config.dataset, config.resolution, config.conditional) == ("digits", 16, True)
    assert (config.loss, config.r1_gamma, config.r2_gamma) == ("relativistic", 0.1, 0.1)
    assert (config.batch_size, config.lr_d, config.lr_g) == (32, 5e-4, 5e-4)
    assert config.ema_kimg == 3.0 and config.run_dir == "runs/digits"


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_the_28px_grayscale_presets_are_the_digits_recipe_at_32px(name):
    config, digits = TrainConfig.from_preset(name), TrainConfig.from_preset("digits")
    assert (config.dataset, config.resolution, config.channels) == (name, 32, 1)
    recipe = ("loss", "r1_gamma", "r2_gamma", "batch_size", "lr_d", "lr_g", "beta1", "beta2",
              "ema_rampup", "conditional", "network", "latent_dim")
    assert {k: getattr(config, k) for k in recipe} == {k: getattr(digits, k) for k in recipe}
    # G takes the class through its batch norms (measured on Fashion-MNIST's recall), the
    # EMA half-life is 10 kimg where the digits' is 3 (measured on its precision), and
    # R1/R2 are lazy, every 4th D step (measured on its FD per CPU minute).
    assert config.network_args == {**digits.network_args, "conditioning": "batchnorm"}
    assert (config.ema_kimg, digits.ema_kimg) == (10.0, 3.0)
    assert (config.reg_interval, digits.reg_interval) == (4, 1)
    assert config.epochs * 60_000 // config.batch_size == 18_750  # steps, as commented


def test_the_r3gan_presets_follow_the_reference_configurations():
    from kgan.networks.families.r3gan import SIZES

    cifar, celeba = TrainConfig.from_preset("cifar10"), TrainConfig.from_preset("celeba64")
    for config, size in ((cifar, "cifar32"), (celeba, "ffhq64")):
        # The reference's sizes, and its conditioning (a class embedding concatenated to z).
        assert config.network == "r3gan"
        assert config.network_args == {**SIZES[size], "conditioning": "concat"}
        assert (config.loss, config.latent_dim) == ("relativistic", 64)
        assert config.lr_d == config.lr_g == 2e-4 and config.lr_final_ratio == 0.25
        assert (config.beta1, config.beta2_start, config.beta2) == (0.0, 0.9, 0.99)
        assert config.gamma_final_ratio == 0.1 and config.ada_target is None
        assert config.ramp_epochs == config.epochs
        assert config.mirror  # R3GAN's training commands pass --mirror=1
        # its AugmentPipe(xflip..xfrac=1, the colour ops 0.5, cutout=1)
        assert config.augment == "blit,geom,ada_color:0.5,cutout"
    # R3GAN's CIFAR10 preset: --batch=512 --cond=1, gamma 0.05, aug p 0.55, EMA 5000 kimg
    # reached at decay_nimg = 2e7 images, 400 epochs of 50,000.
    assert (cifar.batch_size, cifar.conditional, cifar.resolution) == (512, True, 32)
    assert cifar.r1_gamma == cifar.r2_gamma == 0.05 and cifar.augment_p == 0.55
    assert cifar.ramp_epochs == 400
    assert cifar.ema_kimg == 5000 and cifar.ema_rampup is None
    # FFHQ-64: --batch=256, unconditional, gamma 2, aug p 0.3, EMA 500 kimg.
    assert (celeba.batch_size, celeba.conditional, celeba.resolution) == (256, False, 64)
    assert celeba.r1_gamma == celeba.r2_gamma == 2.0 and celeba.augment_p == 0.3
    assert celeba.ema_kimg == 500 and celeba.ema_rampup is None
    assert celeba.ramp_epochs * 162_770 == pytest.approx(2e7, rel=0.01)


def test_the_r3gan_ema_half_life_ramps_as_the_references_cosine():
    """R3GAN's ema_scheduler: cosine_decay_with_warmup(cur_nimg, base_value=0,
    final_value=ema_nimg, total_nimg=2e7), then ema_nimg."""
    from kgan.training import recipe

    config = TrainConfig.from_preset("cifar10")
    steps_per_epoch = 50_000 // config.batch_size
    half_life = recipe._Ramp(config, steps_per_epoch).ema_half_life()
    total = config.ramp_epochs * steps_per_epoch  # 2e7 images, in steps
    for step in (0, total // 100, total // 10, total // 2, total, 2 * total):
        decay = 0.5 * (1 + np.cos(np.pi * min(step / total, 1.0)))
        reference = (1 - decay) * 5_000_000
        assert float(half_life(step)) == pytest.approx(reference, rel=1e-5, abs=1.0), step
    # A cap by ema_rampup keeps the constant half-life it caps; no ramp, no schedule.
    assert recipe._Ramp(TrainConfig.from_preset("cifar10", ema_rampup=0.05),
                        steps_per_epoch).ema_half_life() == 5_000_000
    assert recipe._Ramp(TrainConfig.from_preset("faces64"), 10).ema_half_life() == 10_000


def test_ada_speed_is_the_references_and_old_config_files_keep_theirs():
    """ADA moves p by up to 1 per ada_kimg thousand images (stylegan2-ada-pytorch: 500);
    a config.json written before ada_kimg existed trained at 5e-3 per 4 steps."""
    from kgan.training import recipe

    faces = TrainConfig.from_preset("faces64")
    assert faces.ada_kimg == 500 and recipe._augment(faces).kimg == 500
    assert faces.augment == "bgc"  # stylegan2-ada-pytorch's --aug ada pipeline
    assert TrainConfig.from_preset("folder64").ada_kimg == pytest.approx(25.6)
    old = faces.to_dict()
    del old["ada_kimg"]
    upgraded = TrainConfig.from_json(json.dumps(old))
    assert upgraded.ada_kimg * 1000 == pytest.approx(4 * faces.batch_size / 0.005)
    # Without ADA the speed is unused: an old file resumes under the same command.
    digits = TrainConfig.from_preset("digits").to_dict()
    del digits["ada_kimg"]
    assert TrainConfig.from_json(json.dumps(digits)).differences(
        TrainConfig.from_preset("digits")) == []
    with pytest.raises(ConfigError, match="ada_kimg must be > 0"):
        TrainConfig.from_preset("faces64", ada_kimg=0.0)


def _idx_folder(folder):
    os.makedirs(folder)
    header = (0x803).to_bytes(4, "big") + np.asarray([2, 4, 4], ">u4").tobytes()
    with gzip.open(os.path.join(folder, "train-images-idx3-ubyte.gz"), "wb") as file:
        file.write(header + bytes(32))
    return str(folder)


def test_a_dataset_without_a_preset_gets_the_preset_for_its_kind(tmp_path, monkeypatch):
    assert preset_for(None) == "digits"  # python train.py
    for name, preset in [("digits", "digits"), ("mnist", "mnist"), ("cifar10", "cifar10"),
                         ("fashion_mnist", "fashion_mnist"), ("celeb_a", "celeba64")]:
        assert preset_for(name) == preset
    (tmp_path / "faces").mkdir()
    for folder in ("./faces", str(tmp_path / "faces"), tmp_path / "faces", "~/faces"):
        assert preset_for(folder) == "folder64"
    # Debian's Fashion-MNIST folder, or a file in it, is fashion_mnist; other IDX files
    # could be any MNIST-like set.
    debian = _idx_folder(tmp_path / "usr" / "fashion-mnist")
    monkeypatch.setitem(idx.DEBIAN_SETS, "fashion_mnist",
                        idx.DebianSet(debian, "dataset-fashion-mnist", "Fashion-MNIST"))
    assert preset_for(debian) == "fashion_mnist"
    assert preset_for(os.path.join(debian, "train-images-idx3-ubyte.gz")) == "fashion_mnist"
    config = TrainConfig.for_dataset(debian)
    assert (config.preset, config.model_name) == ("fashion_mnist", "fashion-mnist")
    os.remove(os.path.join(debian, "train-images-idx3-ubyte.gz"))
    assert preset_for(debian) == "fashion_mnist"  # not installed: loading says what to do
    other = _idx_folder(tmp_path / "kmnist")
    for name, kind in [(other, "IDX files"), ("svhn_cropped", "a TFDS name"),
                       ("faces.npz", "an array file")]:
        with pytest.raises(ConfigError) as caught:
            preset_for(name)
        message = str(caught.value)
        assert f"no preset fits --dataset {name!r} ({kind})" in message and "\n" not in message
        assert "--preset NAME (cifar10 (32 px colour)" in message and "folder64" in message


def test_a_registered_source_may_name_the_preset_its_runs_get(monkeypatch):
    from kgan.data import registry

    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))

    class Sky(data.Source):
        kind, usage, preset = "sky", "the name 'sky'", "folder64"

        def matches(self, name):
            return name == "sky"

        def describe(self, name, *, split, data_dir):
            return data.SourceInfo(name, self.kind, 64, None, (64, 64, 3))

        def load(self, name, options):
            raise NotImplementedError

    data.register_source(Sky())
    assert preset_for("sky") == "folder64"
    assert TrainConfig.for_dataset("sky").resolution == 64
    Sky.preset = "sky64"
    with pytest.raises(ConfigError, match="data source 'sky' names preset 'sky64', which "
                                          "does not exist; presets: digits, mnist"):
        preset_for("sky")
    Sky.preset = ""  # a source without one: the run must pick
    with pytest.raises(ConfigError, match=r"no preset fits --dataset 'sky' \(sky\)"):
        preset_for("sky")
    Sky.preset = 64
    with pytest.raises(ValueError, match="`preset` must be a preset's name"):
        data.register_source(Sky())


def test_for_dataset_trains_a_folder_with_the_folder_preset():
    config = TrainConfig.for_dataset("./faces", resolution=128, channels=3)
    assert (config.preset, config.dataset, config.resolution) == ("folder64", "./faces", 128)
    assert not config.conditional and config.augment == "color,translation,cutout"
    assert (config.model_name, config.run_dir) == ("faces", os.path.join("runs", "faces"))
    assert (config.loss, config.r1_gamma, config.ema_kimg) == ("relativistic", 2.0, 10.0)
    assert TrainConfig.for_dataset("celeb_a").model_name == "celeba64"  # the preset's name


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_and_round_trip(name):
    config = TrainConfig.from_preset(name)
    assert config.preset == name
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert json.loads(again.to_json()) == json.loads(config.to_json())


def test_round_trip_keeps_every_kind_of_value(tmp_path):
    config = TrainConfig(dataset="mnist", ema_decay=0.99, metrics=("fid", "kid"),
                         steps_per_epoch=7, augment="color,cutout", ada_target=None,
                         conditional=True, jit_compile="off")
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    loaded = TrainConfig.load(path)
    assert loaded == config
    assert loaded.metrics == ("fid", "kid")
    assert loaded.model_name == "mnist" and loaded.run_dir == "runs/mnist"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(resolution=12), "resolution must be a power of two in [8, 256], got 12"),
        (dict(resolution=512), "resolution must be a power of two"),
        (dict(epochs=-1), "epochs must be >= 1, got -1"),
        (dict(channels=2), "channels must be 1 or 3"),
        (dict(batch_size=0), "batch_size must be >= 1"),
        (dict(loss="nope"), "unknown loss 'nope'; choose from"),
        (dict(lr_d=0.0), "lr_d must be > 0"),
        (dict(beta1=1.0), "beta1 must be in [0, 1)"),
        (dict(ema_decay=1.0), "ema_decay must be in (0, 1)"),
        (dict(augment="colour"), "augment: unknown augmentation 'colour'; choose from color, "
         "translation, cutout, blit, geom, ada_color, filter, noise, bgc, bgcf, bgcfn, bgcfnc; "
         "or none"),
        (dict(augment="color,,cutout"), "augment: an empty name in 'color,,cutout'; or none"),
        (dict(augment="bgc:2"), "augment: augmentation bgc:2: the multiplier after ':' must "
         "be a number in (0, 1]"),
        (dict(augment="bgcf", resolution=16), "augment 'bgcf': ADA's filter group needs "
         "--resolution 32 or more (its 43-tap filters pad 21 pixels by reflection), got 16"),
        (dict(seed=2**32), "seed must be in [0, 2**32 - 1], got 4294967296"),
        (dict(num_samples=10**8), "num_samples (the sample grid's images) must be at most 1024"),
        (dict(latent_dim=10**11), "latent_dim must be at most 16384, got 100000000000"),
        (dict(metrics=("fid", "pr"), metrics_samples=3),
         "metrics_samples must be >= 4 for metrics fid, pr, got 3"),
        (dict(strategy="gpus"), "unknown strategy 'gpus'"),
        (dict(mixed_precision="fp16"), "unknown mixed_precision 'fp16'"),
        (dict(metrics=("fid", "is")), "unknown metric is"),
        (dict(model_name="a b"), "model_name must be"),
        (dict(epochs="5"), "epochs must be of type int"),
        (dict(gradient_penalty=float("nan")), "gradient_penalty must be finite"),
        (dict(dataset=" "), "dataset must not be empty"),
    ],
)
def test_invalid_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as error:
        TrainConfig(**overrides)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_a_config_file_may_list_metrics_as_the_flag_does():
    assert TrainConfig(metrics="fid, kid").metrics == ("fid", "kid")
    assert TrainConfig.from_json('{"metrics": "fid"}').metrics == ("fid",)


def test_unknown_keys_and_bad_json_are_errors():
    with pytest.raises(ConfigError, match="unknown config keys: learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json("{")
    with pytest.raises(ConfigError, match="unknown preset 'imagenet'"):
        TrainConfig.from_preset("imagenet")
    with pytest.raises(ConfigError, match="cannot read config file"):
        TrainConfig.load("/nonexistent/config.json")


def test_differences_ignore_fields_that_do_not_change_the_computation():
    base = TrainConfig()
    assert base.differences(TrainConfig(epochs=99, log_every_n_steps=1, deterministic=True,
                                        export=False, strategy="one_device")) == []
    changed = base.differences(TrainConfig(lr_d=1e-3, network_args=dict(base_filters=8)))
    rest = "'max_filters': 512, 'spectral_norm': False, 'conditioning': 'multiply', " \
           "'mbstd_group_size': 0}"
    assert changed == [
        f"network_args: {{'base_filters': 64, {rest} -> {{'base_filters': 8, {rest}",
        "lr_d: 0.0002 -> 0.001"]
    assert "epochs" in RESUMABLE_FIELDS and "seed" not in RESUMABLE_FIELDS


def test_one_folder_spelled_two_ways_is_the_same_dataset(tmp_path, monkeypatch):
    (tmp_path / "data" / "faces").mkdir(parents=True)
    (tmp_path / "data" / "cars").mkdir()
    monkeypatch.chdir(tmp_path)
    saved = TrainConfig.for_dataset("data/faces")
    for spelling in ("./data/faces", str(tmp_path / "data" / "faces"), "data/faces/"):
        assert saved.differences(TrainConfig.for_dataset(spelling)) == [], spelling
    assert saved.differences(TrainConfig.for_dataset("./data/cars", model_name="faces")) == [
        "dataset: 'data/faces' -> './data/cars'"]


def test_presets_that_copy_the_pytorch_references_use_their_adam_epsilon():
    """stylegan2-ada-pytorch and R3GAN train with torch.optim.Adam's eps = 1e-8; Keras's
    default is 1e-7, which the other presets keep."""
    from kgan.training import recipe

    for name in ("faces64", "faces128", "stylegan2_digits", "cifar10", "celeba64"):
        assert TrainConfig.from_preset(name).adam_epsilon == 1e-8, name
    assert TrainConfig.from_preset("digits").adam_epsilon == 1e-7
    config = TrainConfig.from_preset("faces64")
    ramp = recipe._Ramp(config, steps_per_epoch=10)
    assert ramp.adam(1e-3, 1).epsilon == 1e-8
    with pytest.raises(ConfigError, match="adam_epsilon must be in"):
        TrainConfig.from_preset("digits", adam_epsilon=0.0)


def test_profile_steps_is_a_window_of_steps_a_resume_may_change():
    assert TrainConfig(profile_steps="10,15").profile_steps == "10,15"
    for bad in ("15,10", "0,3", "10", "a,b", "1,2,3", ""):
        with pytest.raises(ConfigError, match="profile_steps must be START,STOP with 1 <= "
                                              "START <= STOP, e.g. 10,15"):
            TrainConfig(profile_steps=bad)
    assert not TrainConfig().differences(TrainConfig(profile_steps="2,3"))
