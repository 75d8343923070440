"""kgan-evaluate end to end on a tiny GAN: .keras, run dir and export agree; exit codes."""

import json
import os
import shutil
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
from harness import interrupt_with, tiny_networks

import kgan
from kgan.cli import evaluate
from kgan.evaluation import features
from kgan.serving.export import export_generator

RES = 8


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny GAN saved as .keras and exported, digits as .npz, and a digits classifier."""
    root = tmp_path_factory.mktemp("eval")
    generator, discriminator = tiny_networks("dcgan", resolution=RES)
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
              root / "clf.keras", "--num-samples", 100, "--json"]
    code, out, err = _run(capsys, root / "gan.keras", *common, "--batch-size", 32)
    assert code == 0, err
    from_keras = json.loads(out)
    assert from_keras["num_real"] == from_keras["num_fake"] == 100
    assert set(from_keras["metrics"]) == {"fid", "kid", "kid_std", "precision", "recall",
                                          "density", "coverage"}
    # The default --batch-size (250) is above the export's 64 seeds per request.
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
    ("missing_data", "Array file not found"),
    ("truncated_data", "is not a readable .npz file"),
    ("unlabelled_data", "which has none: pass a trained one with --classifier MODEL.keras"),
    ("nan_data", "images contain NaN or infinite values"),
    ("text_labels", "labels must be integers"),
    ("huge_seed", "--seed must leave its 64 seeds in int64's range"),
    ("damaged_model", "is not a readable .keras file: a .keras file is a zip archive"),
    ("damaged_weights", "cannot read InceptionV3 weights from"),
    ("missing_weights", features.INCEPTION_WEIGHTS_FILE),
    ("bad_metric", "unknown metric 'fidd'; valid names: dc, fid, kid, pr"),
    ("no_metric", "--metrics names no metric"),
    ("one_sample", "--num-samples must be >= 6, got 1"),  # pr and dc's k = 5 neighbours
    ("zero_batch", "--batch-size must be >= 1, got 0"),
    ("classifier_over_the_gan", "holds a trained kgan.GAN, which saving would replace"),
    ("classifier_not_keras", "--save-classifier writes a Keras model: name it *.keras"),
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
    elif case in ("truncated_data", "unlabelled_data", "nan_data", "text_labels"):
        data = tmp_path / "data.npz"
        images = np.zeros([40, RES, RES, 1], np.float32)
        if case in ("truncated_data", "unlabelled_data"):
            np.savez(data, images=images)
            if case == "truncated_data":
                data.write_bytes(data.read_bytes()[:300])
        else:
            labels = np.array(["a"] * 40) if case == "text_labels" else np.zeros(40, int)
            np.savez(data, images=images * np.nan if case == "nan_data" else images,
                     labels=labels)
        extra = ["--features", "classifier", "--classifier-epochs", 1, "--num-samples", 32]
    elif case == "huge_seed":
        extra = ["--seed", 2**63 - 10, "--num-samples", 64]
    elif case in ("damaged_model", "damaged_weights"):
        (tmp_path / "damaged.keras").write_bytes(b"PK\x03")
        if case == "damaged_model":
            model = tmp_path / "damaged.keras"
        else:
            extra = ["--inception-weights", tmp_path / "damaged.keras"]
    elif case == "missing_weights":
        extra = ["--inception-weights", tmp_path]
    elif case == "bad_metric":
        extra = ["--metrics", "fidd"]
    elif case == "no_metric":
        extra = ["--metrics", " , "]
    elif case == "one_sample":
        extra = ["--num-samples", 1]
    elif case.startswith("classifier_"):
        target = model if case == "classifier_over_the_gan" else tmp_path / "clf.h5"
        extra = ["--features", "classifier", "--save-classifier", target]
    else:
        extra = ["--batch-size", 0]
    code, out, err = _run(capsys, model, "--data", data, *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and expected in err and err.startswith("kgan-evaluate: error:")


def _classifier_flags(root, num_samples=64):
    return ["--data", root / "digits.npz", "--features", "classifier", "--classifier",
            root / "clf.keras", "--num-samples", num_samples, "--batch-size", 32, "--json"]


def test_a_run_directory_means_its_final_keras(saved, capsys, tmp_path):
    root, _ = saved
    shutil.copy(root / "gan.keras", tmp_path / "final.keras")  # what kgan-train writes
    code, out, err = _run(capsys, tmp_path, *_classifier_flags(root))
    assert code == 0, err
    code, out_file, err = _run(capsys, root / "gan.keras", *_classifier_flags(root))
    assert code == 0, err
    assert json.loads(out)["metrics"] == pytest.approx(json.loads(out_file)["metrics"])


def test_a_run_directory_scores_with_its_own_classifier(saved, capsys, tmp_path):
    """kgan-train --metrics saves its classifier in the run dir; kgan-evaluate picks it up
    for the run (or its final.keras), so the scores are on the TensorBoard metrics' scale."""
    root, _ = saved
    shutil.copy(root / "gan.keras", tmp_path / "final.keras")
    shutil.copy(root / "clf.keras", tmp_path / "metrics_classifier.keras")
    flags = ["--data", root / "digits.npz", "--features", "classifier", "--num-samples", 64,
             "--batch-size", 32, "--json"]
    code, explicit, err = _run(capsys, tmp_path, *flags, "--classifier", root / "clf.keras")
    assert code == 0, err
    for model in (tmp_path, tmp_path / "final.keras"):
        code, out, err = _run(capsys, model, *flags)
        assert code == 0, err
        assert "features from the run's classifier" in err
        assert json.loads(out)["metrics"] == pytest.approx(json.loads(explicit)["metrics"])


def test_a_diverged_generator_stops_the_work_with_exit_1(saved, capsys, tmp_path):
    generator, discriminator = tiny_networks("dcgan", resolution=RES)
    generator.set_weights([np.full_like(w, np.nan) for w in generator.get_weights()])
    gan = kgan.GAN(generator, discriminator, latent_dim=8)
    gan.save(tmp_path / "nan.keras")
    code, out, err = _run(capsys, tmp_path / "nan.keras", *_classifier_flags(saved[0]))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "NaN or inf" in err and "EvaluationError" in err


@pytest.mark.parametrize("sig, status, said", [(signal.SIGINT, 130, "interrupted"),
                                              (signal.SIGTERM, 143, "stopped by SIGTERM")])
def test_ctrl_c_exits_130_and_sigterm_143(saved, capsys, monkeypatch, sig, status, said):
    def interrupted(count, seed):
        interrupt_with(sig)

    monkeypatch.setattr(evaluate, "load_sampler", lambda path: (interrupted, (RES, RES, 1)))
    code, out, err = _run(capsys, saved[0] / "gan.keras", *_classifier_flags(saved[0]))
    assert (code, out, err) == (status, "", f"kgan-evaluate: {said}\n")


PROBE = """
import sys
import time
from kgan.cli import evaluate
try:
    code = evaluate.main({argv!r})
except SystemExit as done:
    code = done.code
print("EXIT", code, "TF", "tensorflow" in sys.modules, "KERAS", "keras" in sys.modules)
"""


@pytest.mark.parametrize(("argv", "code"), [
    (["--help"], 0), (["m.keras"], 2), (["m.keras", "--data", "d", "--bogus"], 2),
    (["m.keras", "--data", "d", "--num-samples", "many"], 2),
    (["m.keras", "--data", "d", "--metrics", "fid,fidd"], 2),
    (["m.keras", "--data", "d", "--k", "0"], 2),
], ids=["help", "no_data", "unknown_flag", "not_a_number", "unknown_metric", "bad_k"])
def test_help_and_flag_errors_load_no_tensorflow(argv, code):
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert done.stdout.strip().splitlines()[-1] == f"EXIT {code} TF False KERAS False", done.stderr
    if code == 2:
        assert "kgan-evaluate: error:" in done.stderr and len(done.stderr.splitlines()) <= 2


def _digit_folder(root, per_class=8):
    """A labelled image folder (one subfolder per class) of 8x8 digits."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in range(10):
        (root / str(label)).mkdir(parents=True)
        for i, image in enumerate(digits.images[digits.target == label][:per_class]):
            pixels = (image * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels).save(root / str(label) / f"{i}.png")
    return root


@pytest.mark.slow  # a training run (~20 s on 2 CPUs)
def test_kgan_evaluate_prints_what_training_logged(tmp_path, capsys):
    """One quality routine: a mixed_float16 run's last QualityMetrics values equal what
    kgan-evaluate prints for the run directory with the same seeds, real images and the
    run's classifier (saved in float32 whatever the run's policy)."""
    from kgan.training import runner
    from kgan.training.config import TrainConfig

    data, run_dir, logged = _digit_folder(tmp_path / "data"), tmp_path / "run", []
    config = TrainConfig(
        dataset=str(data), resolution=RES, network_args={"base_filters": 4}, latent_dim=8,
        batch_size=16, steps_per_epoch=1, epochs=1, metrics=("fid", "pr"), metrics_every=1,
        metrics_samples=80, mixed_precision="mixed_float16", export=False,
        run_dir=str(run_dir), jit_compile="off", log_every_n_steps=0, num_samples=4)
    runner.run(config, verbose=0, callbacks=[keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: logged.append(dict(logs)))])
    keras.mixed_precision.set_global_policy("float32")
    capsys.readouterr()  # the run's own report
    classifier = keras.models.load_model(run_dir / "metrics_classifier.keras")
    assert {layer.compute_dtype for layer in classifier.layers} == {"float32"}
    code, out, err = _run(capsys, run_dir, "--data", data, "--features", "classifier",
                          "--classifier", run_dir / "metrics_classifier.keras",
                          "--num-samples", 80, "--batch-size", 16, "--seed", 2**30,
                          "--metrics", "fid,pr", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["num_real"] == report["num_fake"] == 80
    assert set(report["metrics"]) == {"fid", "precision", "recall"}
    for name, value in report["metrics"].items():
        assert logged[-1][name] == pytest.approx(value, rel=1e-3, abs=1e-3), name


def test_fewer_real_images_than_asked_are_scored_with_a_note(saved, capsys, tmp_path):
    root, _ = saved
    with np.load(root / "digits.npz") as full:
        np.savez(tmp_path / "few.npz", images=full["images"][:12], labels=full["labels"][:12])
    code, out, err = _run(capsys, root / "gan.keras", "--data", tmp_path / "few.npz",
                          "--features", "classifier", "--classifier", root / "clf.keras",
                          "--metrics", "fid", "--num-samples", 20, "--json")
    assert code == 0, err
    assert json.loads(out)["num_real"] == 12
    assert ("has 12 real images, fewer than --num-samples 20: the scores compare 12 real "
            "with 20 generated images") in err
