"""kgan-evaluate end to end on a tiny GAN: .keras and export agree; bad paths fail clearly."""

import json

import keras
import numpy as np
import pytest

import kgan
from kgan.evaluation import features
from kgan.cli import evaluate
from kgan.serving.export import export_generator

RES = 8


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny GAN saved as .keras and exported, digits as .npz, and a digits classifier."""
    root = tmp_path_factory.mktemp("eval")
    generator, discriminator = kgan.networks.dcgan(RES, 1, latent_dim=8, base_filters=4)
    gan = kgan.GAN(generator, discriminator, latent_dim=8)
    gan.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4))
    gan.save(root / "gan.keras")
    version = export_generator(gan, root / "exports", model_name="tiny")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[..., None] / 8.0 - 1.0).astype(np.float32)
    np.savez(root / "digits.npz", images=images, labels=digits.target)
    classifier = features.train_classifier(images, digits.target, 10, epochs=2, width=8)
    classifier.save(root / "clf.keras")
    return root, version


def _run(capsys, *argv):
    code = evaluate.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_keras_file_and_export_give_the_same_scores(saved, capsys):
    root, _ = saved
    common = ["--data", root / "digits.npz", "--features", "classifier", "--classifier",
              root / "clf.keras", "--num-samples", 100, "--batch-size", 32, "--json"]
    code, out, err = _run(capsys, root / "gan.keras", *common)
    assert code == 0, err
    from_keras = json.loads(out)
    assert from_keras["num_real"] == from_keras["num_fake"] == 100
    assert set(from_keras["metrics"]) == {"fid", "kid", "kid_std", "precision", "recall",
                                          "density", "coverage"}
    code, out, err = _run(capsys, root / "exports" / "tiny", *common)
    assert code == 0, err
    from_export = json.loads(out)["metrics"]
    # Same seeds -> same images, up to the export's uint8 quantisation.
    assert from_export["fid"] == pytest.approx(from_keras["metrics"]["fid"], rel=0.05)


def test_trains_a_domain_classifier_and_prints_a_table(saved, capsys):
    root, version = saved
    code, out, err = _run(capsys, version, "--data", "digits", "--features", "classifier",
                          "--metrics", "fid,pr", "--num-samples", 64, "--classifier-epochs", 1,
                          "--save-classifier", root / "trained.keras")
    assert code == 0, err
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert names == ["fid", "precision", "recall"]
    assert (root / "trained.keras").exists()


@pytest.mark.parametrize("case, expected", [
    ("missing_model", "model not found"),
    ("empty_dir", "no SavedModel (saved_model.pb)"),
    ("missing_data", "data file not found"),
    ("missing_weights", features.INCEPTION_WEIGHTS_FILE),
    ("bad_metric", "unknown metric 'fidd'; valid names: dc, fid, kid, pr"),
])
def test_bad_inputs_fail_with_one_line(saved, capsys, tmp_path, case, expected):
    root, _ = saved
    model, data, extra = root / "gan.keras", root / "digits.npz", []
    if case == "missing_model":
        model = tmp_path / "nope.keras"
    elif case == "empty_dir":
        model = tmp_path
    elif case == "missing_data":
        data = tmp_path / "nope.npz"
        extra = ["--features", "classifier", "--classifier", root / "clf.keras"]
    elif case == "missing_weights":
        extra = ["--inception-weights", tmp_path]
    else:
        extra = ["--metrics", "fidd"]
    code, out, err = _run(capsys, model, "--data", data, *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and expected in err and err.startswith("kgan-evaluate: error:")
