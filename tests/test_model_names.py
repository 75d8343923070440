"""The served model's name: one rule for kgan-train, kgan-export and export_generator,
so a version never lands outside EXPORT_DIR."""

import json
import os
import subprocess
import sys

import keras
import pytest

from kgan.cli import export as cli
from kgan.serving.limits import check_model_name, model_name_from
from kgan.training.config import ConfigError, TrainConfig

BAD_NAMES = ["", ".", "..", "../evil", "/abs/evil", "a/b", "a b", "name\n", "-x", "_x"]


@pytest.mark.parametrize("name", ["digits", "faces.v2", "a-b_c", "9"])
def test_good_names(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError, match=r"must be letters, digits, '_', '.' and '-'"):
        check_model_name(name)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_kgan_train_refuses_up_front_what_the_export_would_refuse_after_training(name):
    with pytest.raises(ConfigError, match=r"model_name must be letters, digits, '_', '.'"):
        TrainConfig(model_name=name)


def test_names_made_from_folders_are_valid():
    assert model_name_from("my run") == "my_run"
    assert model_name_from("..") == "model"
    assert model_name_from("_Faces 64") == "Faces_64"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny bare generator (z [N, 4] -> 8x8x1 images) saved as a .keras file."""
    z = keras.Input([4])
    x = keras.layers.Dense(64, activation="tanh")(z)
    generator = keras.Model(z, keras.layers.Reshape([8, 8, 1])(x), name="generator")
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    generator.save(path)
    return path


@pytest.mark.parametrize("name", ["../evil", "", "a/b", os.sep + "evil"])
def test_kgan_export_refuses_a_model_name_that_is_a_path(model_file, tmp_path, capsys, name):
    exports = tmp_path / "exports"
    assert cli.main([str(model_file), str(exports), "--model-name", name]) == 2
    error = capsys.readouterr().err
    assert error == (f"kgan-export: error: --model-name must be letters, digits, '_', '.' and "
                     f"'-', starting with a letter or digit, got {name!r}\n")
    assert sorted(os.listdir(tmp_path)) == []  # nothing written, inside or outside


def test_kgan_export_default_name_follows_the_rule(model_file, tmp_path, capsys):
    run_dir = tmp_path / "my run"
    run_dir.mkdir()
    os.link(model_file, run_dir / "final.keras")
    assert cli.main([str(run_dir), str(tmp_path / "exports")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "exports" / "my_run" / "1")


def test_export_generator_refuses_a_path_as_model_name(model_file, tmp_path):
    from kgan.serving.export import export_generator

    generator = keras.models.load_model(model_file)
    with pytest.raises(ValueError, match="model_name must be letters"):
        export_generator(generator, tmp_path / "exports", model_name="../evil")
    assert os.listdir(tmp_path) == []


def test_kgan_export_names_a_run_as_its_own_export_did(model_file, tmp_path, capsys):
    """`--run-dir runs/try` trains model "digits": kgan-export publishes it there too (the
    name serving/models.config serves), not under "try"; a config with a bad name or none
    falls back to the folder's name."""
    run_dir = tmp_path / "try"
    run_dir.mkdir()
    os.link(model_file, run_dir / "final.keras")
    for config, name in [({"model_name": "digits"}, "digits"), ({"model_name": "../x"}, "try"),
                         ({}, "try")]:
        (run_dir / "config.json").write_text(json.dumps(config))
        assert cli.main([str(run_dir), str(tmp_path / "exports")]) == 0
        assert capsys.readouterr().out.strip().startswith(str(tmp_path / "exports" / name))


def test_kgan_export_checks_the_version_before_loading_anything(model_file, tmp_path):
    """--version and --overwrite mistakes answer in a moment: no TensorFlow, no model."""
    (tmp_path / "exports" / "tiny" / "3").mkdir(parents=True)
    probe = ("import sys\nfrom kgan.cli import export\ncode = export.main(sys.argv[1:])\n"
             "print('exit', code, 'tf', 'tensorflow' in sys.modules)")
    source, exports = str(model_file), str(tmp_path / "exports")
    for flags, words in [
            (["--version", "0"], "version must be a positive integer up to 2**63 - 1"),
            (["--version", "3"], "version 3 already exists at"),
            (["--overwrite"], "--overwrite replaces the version --version names")]:
        done = subprocess.run([sys.executable, "-c", probe, source, exports, *flags],
                              capture_output=True, text=True, timeout=120)
        assert done.stdout.split()[-4:] == ["exit", "2", "tf", "False"], done.stderr
        assert words in done.stderr and done.stderr.count("\n") == 1
        assert "overwrite=True" not in done.stderr  # the flag's name, not Python's
