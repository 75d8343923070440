"""TF Serving export of a generator with a mapping network (stylegan2): the contract's two
signatures unchanged, plus `generate_truncated` / `latents_truncated` taking a truncation
psi per row; served over the loopback TF Serving stand-ins, the clients and the demo."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import assert_close_images
from serving_fakes import Backend, GrpcServer, RestServer
from test_export import assert_servable_graph

import kgan
from kgan.demo import backends, media
from kgan.gan.sampling import latents_from_seeds
from kgan.images import to_uint8_numpy
from kgan.serving.client import (
    GrpcClient,
    RestClient,
    ServingError,
    from_latents,
    generate,
    model_inputs,
)
from kgan.serving.export import ExportedGenerator, export_generator
from kgan.serving.warmup import read_warmup

LATENT, CLASSES = 8, 3
FAKES = os.path.join(os.path.dirname(__file__), "serving_fakes.py")
CLIENT_CLI = os.path.join(os.path.dirname(__file__), os.pardir, "serving", "client.py")
TRUNCATION_INFO = {"default": 0.7, "min": -1.0, "max": 2.0, "signature": "generate_truncated"}


def tiny_stylegan2(num_classes=None, noise=0.0, seed=0) -> kgan.GAN:
    """A 16 px stylegan2 GAN whose w_avg is the mean mapped w of 64 latents (not zero, so
    psi = 0 is a real image); `noise` sets every noise strength (they start at 0)."""
    keras.utils.set_random_seed(seed)
    g, d = kgan.networks.get("stylegan2")(16, 1, LATENT, num_classes=num_classes, cbase=256,
                                          cmax=16, mapping_layers=2, w_dim=16)
    z = np.random.default_rng(seed).standard_normal([64, LATENT]).astype(np.float32)
    labels = np.arange(64, dtype=np.int32) % num_classes if num_classes else None
    g.update_w_avg(g.mapping(z if labels is None else [z, labels]), beta=0.0)
    for weight in g.weights:
        if weight.path.endswith("noise_strength"):
            weight.assign(noise)
    return kgan.GAN(g, d, latent_dim=LATENT, num_classes=num_classes)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An unconditional stylegan2 (noise off), a conditional one with noise on, a dcgan."""
    root = tmp_path_factory.mktemp("exports")
    plain, cond = tiny_stylegan2(seed=1), tiny_stylegan2(CLASSES, noise=0.5, seed=2)
    keras.utils.set_random_seed(3)
    dcgan, _ = kgan.networks.dcgan(resolution=8, channels=1, latent_dim=LATENT, base_filters=4)
    return {"plain": (plain, export_generator(plain, root, model_name="plain")),
            "cond": (cond, export_generator(cond, root, model_name="cond")),
            "dcgan": (dcgan, export_generator(dcgan, root, model_name="dcgan"))}


def signature_inputs(path) -> dict[str, dict[str, tuple]]:
    signatures = tf.saved_model.load(path).signatures
    return {name: {key: (spec.dtype.name, tuple(spec.shape)) for key, spec in
                   function.structured_input_signature[1].items()}
            for name, function in signatures.items()}


def info(path) -> dict:
    with open(os.path.join(path, "assets.extra", "kgan.json")) as handle:
        return json.load(handle)


# ------------------------------------------------------------------ the export
def test_signatures_and_metadata(exported):
    seed, z = ("int64", (None,)), ("float32", (None, LATENT))
    psi, label = ("float32", (None,)), ("int32", (None,))
    assert signature_inputs(exported["plain"][1]) == {
        "serving_default": {"z": z}, "generate": {"seed": seed}, "generate_png": {"seed": seed},
        "generate_truncated": {"seed": seed, "truncation": psi},
        "generate_truncated_png": {"seed": seed, "truncation": psi},
        "latents_truncated": {"z": z, "truncation": psi}}
    assert signature_inputs(exported["cond"][1]) == {
        "serving_default": {"z": z, "label": label}, "generate": {"seed": seed, "label": label},
        "generate_png": {"seed": seed, "label": label},
        "generate_truncated": {"seed": seed, "label": label, "truncation": psi},
        "generate_truncated_png": {"seed": seed, "label": label, "truncation": psi},
        "latents_truncated": {"z": z, "label": label, "truncation": psi},
        "num_classes": {"seed": seed}}
    assert info(exported["plain"][1])["truncation"] == TRUNCATION_INFO
    assert info(exported["cond"][1])["num_classes"] == CLASSES
    # Other families: no change.
    assert set(signature_inputs(exported["dcgan"][1])) == {"serving_default", "generate",
                                                            "generate_png"}
    assert "truncation" not in info(exported["dcgan"][1])
    assert not ExportedGenerator(exported["dcgan"][1]).truncation


def test_graph_is_float32_stateless_and_not_xla(exported):
    for tag in ("plain", "cond"):
        assert_servable_graph(exported[tag][1])


def keras_images(gan, seeds, labels=None, **options):
    """uint8 images of the Keras generator for the latents of `seeds`."""
    z = latents_from_seeds(np.asarray(seeds), LATENT).numpy()
    inputs = z if labels is None else [z, np.asarray(labels, np.int32)]
    return to_uint8_numpy(gan.generator(inputs, training=False, **options))


def test_generate_matches_the_keras_generator_with_noise_from_seeds(exported):
    for tag, labels in (("plain", None), ("cond", [0, 2, 1])):
        gan, path = exported[tag]
        seeds = np.array([4, 5, 6])
        served = ExportedGenerator(path).generate(seeds, labels)["images"]
        assert_close_images(served, keras_images(gan, seeds, labels, noise_seeds=seeds))
        assert served.std() > 20  # an image comparison that can fail


def test_psi_one_is_generate_exactly(exported):
    for tag, labels in (("plain", None), ("cond", [1, 1, 0, 2])):
        served = ExportedGenerator(exported[tag][1])
        seeds = [3, 0, 7, 2**40]
        plain = served.generate(seeds, labels)
        truncated = served.generate(seeds, labels, truncation=1.0)
        for key in ("images", "png_bytes", "z"):
            np.testing.assert_array_equal(truncated[key], plain[key])


def test_psi_zero_is_the_w_avg_image_for_every_seed(exported):
    gan, path = exported["plain"]
    served = ExportedGenerator(path)
    images = served.generate([1, 2, 3, 99], truncation=0.0)["images"]
    assert all(np.array_equal(image, images[0]) for image in images)
    g = gan.generator
    average = g.synthesis(g.broadcast(g.w_avg.numpy()[None]), noise_mode="none")
    assert_close_images(images[:1], to_uint8_numpy(average))
    assert np.abs(served.generate([1])["images"].astype(int) - images[0]).mean() > 5


def test_truncation_matches_the_keras_generator(exported):
    gan, path = exported["cond"]
    served = ExportedGenerator(path)
    seeds, labels = np.array([5, 6, 7]), [0, 1, 2]
    psi = np.array([0.5, 0.8, -0.5], np.float32)
    result = served.generate(seeds, labels, truncation=psi)
    assert_close_images(result["images"], keras_images(
        gan, seeds, labels, truncation_psi=psi, noise_seeds=seeds))
    # Latents alone: noise from a hash of z, as the generator's own default.
    assert_close_images(served.images(result["z"], labels, truncation=psi),
                        keras_images(gan, seeds, labels, truncation_psi=psi))


def test_a_seed_gives_the_same_image_alone_and_in_a_batch(exported):
    gan, path = exported["cond"]  # noise strengths are on here
    g = gan.generator
    z = latents_from_seeds(np.array([7]), LATENT).numpy()
    with_noise = g([z, np.array([1], np.int32)], training=False)
    without = g([z, np.array([1], np.int32)], training=False, noise_mode="none")
    assert np.abs(np.asarray(with_noise) - np.asarray(without)).max() > 0.05
    served = ExportedGenerator(path)
    alone = served.generate([7], [1], truncation=0.6)["images"][0]
    batch = served.generate([3, 7, 1, 7, 7], [0, 1, 2, 1, 1],
                            truncation=[1.0, 0.6, 0.2, 0.6, 0.3])["images"]
    assert_close_images(batch[1], alone)  # other batch size, other kernels: one grey level
    assert_close_images(batch[3], alone)
    assert np.abs(batch[4].astype(int) - alone.astype(int)).max() > 1  # another psi


def test_warmup_records_cover_the_truncated_signatures(exported):
    for tag in ("plain", "cond"):
        requests = [log.predict_log.request for log in read_warmup(exported[tag][1])]
        by_signature = {}
        for request in requests:
            by_signature.setdefault(request.model_spec.signature_name, []).append(request)
        assert set(by_signature) == {
            "serving_default", "generate", "generate_png", "generate_truncated",
            "generate_truncated_png", "latents_truncated"} | (
                {"num_classes"} if tag == "cond" else set())
        for request in by_signature["generate_truncated"] + by_signature[
                "generate_truncated_png"]:
            psi = tf.make_ndarray(request.inputs["truncation"])
            assert psi.dtype == np.float32 and np.all(psi == np.float32(0.7))
            assert len(psi) == len(tf.make_ndarray(request.inputs["seed"]))
            assert ("label" in request.inputs) == (tag == "cond")


def bad_truncations() -> dict:
    """Requests a server would pass to the graph as they are (it checks only dtypes)."""
    def request(seeds, psi, signature="generate_truncated"):
        return {"signature": signature, "inputs": {
            "seed": [seeds, "int64"], "truncation": [psi, "float32"]}}

    return {"nan": request([1, 2], [0.5, float("nan")]),
            "range": request([1], [2.5]),
            "count": request([1, 2, 3], [0.5, 0.5]),
            "latents": {"signature": "latents_truncated", "inputs": {
                "z": [np.zeros([1, LATENT]).tolist(), "float32"],
                "truncation": [[-1.5], "float32"]}}}


def test_server_session_runs_signatures_warmup_and_checks(exported, tmp_path):
    """The server's own path (TF1 Session, tensor names, warmup replay) in a fresh process."""
    seeds = np.array([3, 0, 7], np.int64)
    psi = np.array([1.0, 1.0, 0.0], np.float32)
    inputs = {"plain/generate/seed": seeds, "plain/generate_truncated/seed": seeds,
              "plain/generate_truncated/truncation": psi, "plain/generate_png/seed": seeds,
              "plain/generate_truncated_png/seed": seeds,
              "plain/generate_truncated_png/truncation": psi,
              "plain/serving_default/z": np.zeros([1, LATENT], np.float32),
              "plain/latents_truncated/z": np.zeros([1, LATENT], np.float32),
              "plain/latents_truncated/truncation": np.ones(1, np.float32)}
    np.savez(tmp_path / "inputs.npz", **inputs)
    spec = {"exports": {"plain": exported["plain"][1]}, "inputs": str(tmp_path / "inputs.npz"),
            "outputs": str(tmp_path / "outputs.npz"), "bad": {"plain": bad_truncations()}}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, FAKES, str(tmp_path / "spec.json")],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])["plain"]
    outputs = dict(np.load(tmp_path / "outputs.npz", allow_pickle=True))
    assert set(results["warmup"]) == {"serving_default", "generate", "generate_png",
                                      "generate_truncated", "generate_truncated_png",
                                      "latents_truncated"}
    for name in ("generate", "generate_truncated"):  # the PNG-only twins: the same files
        assert list(outputs[f"plain/{name}_png/png_bytes"]) == list(
            outputs[f"plain/{name}/png_bytes"])
    assert set(outputs) >= {"plain/generate_png/png_bytes"} and not any(
        key.startswith("plain/generate_png/") and not key.endswith("png_bytes")
        for key in outputs)
    truncated = outputs["plain/generate_truncated/images"]
    np.testing.assert_array_equal(truncated[:2], outputs["plain/generate/images"][:2])
    local = ExportedGenerator(exported["plain"][1]).generate([7], truncation=0.0)
    assert_close_images(truncated[2], local["images"][0])  # batch 1 here, 3 there
    errors = results["errors"]
    assert "kgan: truncation contains NaN or Inf" in errors["nan"]
    assert "kgan: truncation must lie in [-1, 2]" in errors["range"]
    assert "kgan: truncation must lie in [-1, 2]" in errors["latents"]
    assert "kgan: truncation needs one value per row" in errors["count"]


def test_graph_checks_the_rank_of_truncation(exported):
    """A TF1 session refuses a wrong-rank feed itself; TF Serving and a loaded signature
    pass it on (e.g. columnar REST `"truncation": 0.7`), so the graph checks it."""
    function = ExportedGenerator(exported["plain"][1])._loaded.signatures["generate_truncated"]
    for psi in (0.5, [[0.5]]):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"kgan: truncation must be a list \[N\] of numbers"):
            function(seed=tf.constant([1], tf.int64), truncation=tf.constant(psi))


@pytest.mark.parametrize("kwargs, message", [
    ({"truncation": [0.5, float("nan")]}, "truncation contains NaN or Inf"),
    ({"truncation": 3.0}, r"must lie in \[-1, 2\].*got \[3.0\]"),
    ({"truncation": [0.5, 0.5, 0.5]}, r"one number or one per row \(2\)"),
    ({"truncation": "high"}, "a number or a list of numbers"),
])
def test_python_callers_get_clear_truncation_messages(exported, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExportedGenerator(exported["plain"][1]).generate([1, 2], **kwargs)


def test_models_without_truncation_refuse_it(exported):
    with pytest.raises(ValueError, match="takes no truncation: only generators with a "
                                         "mapping network"):
        ExportedGenerator(exported["dcgan"][1]).generate([1], truncation=0.7)


# ------------------------------------------------------------ clients and demo
@pytest.fixture(scope="module")
def served(exported):
    """The conditional stylegan2 export behind a REST and a gRPC loopback server."""
    backend = Backend("cond", 1, exported["cond"][1], labels={})
    with RestServer(backend) as rest, GrpcServer(backend) as grpc_server:
        yield {"rest": rest, "grpc": grpc_server, "local": ExportedGenerator(exported["cond"][1])}


@pytest.mark.parametrize("protocol", ["rest-row", "rest-columnar", "grpc"])
def test_clients_ask_for_a_truncation(served, protocol):
    if protocol == "grpc":
        client = GrpcClient(served["grpc"].target, model="cond")
    else:
        client = RestClient(served["rest"].url, model="cond", fmt=protocol.split("-")[1])
    seeds, labels, psi = [5, 9, 5], np.array([1, 0, 1], np.int32), [0.7, 0.7, 0.2]
    try:
        assert model_inputs(client).truncation
        samples = generate(client, seeds, labels, truncation=psi)
        expected = served["local"].generate(seeds, labels, truncation=psi)
        np.testing.assert_array_equal(samples.images, expected["images"])
        assert samples.png_bytes == [bytes(b) for b in expected["png_bytes"]]
        np.testing.assert_array_equal(
            generate(client, seeds, labels, truncation=0.7).images[:2],
            expected["images"][:2])
        np.testing.assert_array_equal(  # latents: noise from a hash of z, not the seed
            from_latents(client, samples.z, labels, truncation=psi).images,
            served["local"].images(samples.z, labels, truncation=psi))
        bad = {"seed": np.array([1]), "label": np.array([0], np.int32),
               "truncation": np.array([5.0], np.float32)}
        with pytest.raises(ServingError, match="kgan: truncation must lie in"):
            client.predict(bad, "generate_truncated")
    finally:
        getattr(client, "close", lambda: None)()
    if protocol == "rest-columnar":
        body = served["rest"].requests[-1]
        assert body["signature_name"] == "generate_truncated"
        assert body["inputs"]["truncation"] == [5.0]


def test_client_checks_truncation_before_sending(served):
    client = RestClient(served["rest"].url, model="cond")
    before = len(served["rest"].requests)
    with pytest.raises(ValueError, match=r"one number or one per row \(2\)"):
        generate(client, [1, 2], [0, 0], truncation=[0.5])
    with pytest.raises(ValueError, match="NaN or Inf"):
        generate(client, [1], [0], truncation=float("inf"))
    assert len(served["rest"].requests) == before


def test_command_line_truncation(served, tmp_path):
    spec = importlib.util.spec_from_file_location("serving_client_cli", CLIENT_CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    url = served["rest"].url
    assert module.main(["--rest", url, "--model", "cond", "generate", "--seeds", "3-4",
                        "--truncation", "0.5", "--out", str(tmp_path / "out")]) == 0
    body = served["rest"].requests[-1]
    assert body["signature_name"] == "generate_truncated_png"  # --out only: PNGs only
    assert body["inputs"]["truncation"] == [0.5, 0.5]
    expected = served["local"].generate([3, 4], [0, 1], truncation=0.5)["png_bytes"]
    assert (tmp_path / "out" / "seed_4.png").read_bytes() == bytes(expected[1])
    assert module.main(["--grpc", served["grpc"].target, "--model", "cond", "latents",
                        "--count", "2", "--truncation", "0.9"]) == 0
    assert module.main(["--rest", url, "--model", "cond", "generate", "--seeds", "1",
                        "--truncation", "nan"]) == 2


def test_demo_finds_the_truncated_signature(exported, served):
    embedded = backends.EmbeddedBackend(exported["cond"][1])
    assert embedded.info.truncation == backends.Truncation(
        0.7, -1.0, 2.0, rank=1, signature="generate_truncated",
        latents_signature="latents_truncated")
    local = served["local"]
    np.testing.assert_array_equal(embedded.generate([4, 5]).images,  # the default, 0.7
                                  local.generate([4, 5], [1, 2], truncation=0.7)["images"])
    frames = embedded.interpolate(4, 8, 4, truncation=0.3)
    # The ends are the seeds' own images (generate_truncated: noise from the seed); the
    # frames between come from latents (latents_truncated: noise from a hash of z).
    ends = local.generate([4, 8], [1, 1], truncation=0.3)
    np.testing.assert_array_equal(frames[[0, -1]], ends["images"])
    assert not np.array_equal(frames[0], local.generate([4], [1])["images"][0])  # psi 1
    middle = media.interpolation_latents(ends["z"][0], ends["z"][1], 4)[1:2]
    assert_close_images(frames[1:2], local.images(middle, [1], truncation=0.3))
    remote = backends.ServingBackend(RestClient(served["rest"].url, model="cond"),
                                     info_dir=os.path.dirname(exported["cond"][1]))
    assert remote.info.truncation == embedded.info.truncation
    assert remote.generate([6, 7], truncation=0.0).png == embedded.generate(
        [6, 7], truncation=0.0).png
    assert remote.pngs([6, 7], truncation=0.0) == embedded.generate([6, 7], truncation=0.0).png
    assert served["rest"].requests[-1]["signature_name"] == "generate_truncated_png"
    assert embedded.pngs([6]) == embedded.generate([6]).png  # psi 0.7, the default
    assert backends.EmbeddedBackend(exported["dcgan"][1]).info.truncation is None


def test_a_saved_gan_samples_as_its_export_does(exported, tmp_path):
    """kgan-generate on a StyleGAN2 .keras file: the export's seeds, noise and truncation."""
    gan, version = exported["cond"]
    gan.save(tmp_path / "gan.keras")
    saved = backends.KerasBackend(str(tmp_path / "gan.keras"))
    embedded = backends.EmbeddedBackend(version)
    assert saved.info.truncation == embedded.info.truncation  # psi 0.7 unless asked
    for truncation in (None, 1.0, 0.0, -0.5):
        assert_close_images(saved.generate([4, 90, 5], truncation=truncation).images,
                            embedded.generate([4, 90, 5], truncation=truncation).images)
    assert_close_images(saved.interpolate(4, 8, 3, truncation=0.3),
                        embedded.interpolate(4, 8, 3, truncation=0.3))
