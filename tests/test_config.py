"""TrainConfig: validation messages, JSON round trip, presets, resume compatibility."""

import json

import pytest

from kgan.training.config import PRESETS, RESUMABLE_FIELDS, ConfigError, TrainConfig


def test_the_digits_preset_is_the_conditional_relativistic_demo():
    config = TrainConfig.from_preset("digits")
    assert (config.dataset, config.resolution, config.conditional) == ("digits", 16, True)
    assert (config.loss, config.r1_gamma, config.r2_gamma) == ("relativistic", 0.1, 0.1)
    assert (config.batch_size, config.lr_d, config.lr_g) == (32, 5e-4, 5e-4)
    assert config.ema_kimg == 3.0 and config.run_dir == "runs/digits"


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
        (dict(augment="colour"), "unknown augment policy colour"),
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
    assert changed == [
        "network_args: {'base_filters': 64, 'max_filters': 512, 'spectral_norm': False} "
        "-> {'base_filters': 8, 'max_filters': 512, 'spectral_norm': False}",
        "lr_d: 0.0002 -> 0.001"]
    assert "epochs" in RESUMABLE_FIELDS and "seed" not in RESUMABLE_FIELDS
