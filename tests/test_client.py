"""Serving clients against loopback REST / gRPC servers that follow TF Serving's APIs."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest
import yaml
from harness import assert_close_images
from PIL import Image
from serving_fakes import Backend, FlakyProxy, GrpcServer, RestServer

import kgan
from kgan.serving import client as client_lib
from kgan.serving.client import (
    GrpcClient,
    RestClient,
    ServingError,
    checked_num_classes,
    from_latents,
    generate,
    generate_png,
    labels_for_seeds,
    parse_rest_response,
    rest_body,
    save_grid,
    save_pngs,
    served_num_classes,
)
from kgan.serving.export import MAX_BATCH_SIZE, ExportedGenerator, export_generator
from kgan.serving.limits import PNG_SIGNATURES, check_labels

LATENT = 8
CLIENT_CLI = os.path.join(os.path.dirname(__file__), os.pardir, "serving", "client.py")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A conditional export behind a REST and a gRPC loopback server."""
    keras.utils.set_random_seed(4)
    generator, _ = kgan.networks.dcgan(resolution=8, channels=1, latent_dim=LATENT,
                                       num_classes=3, base_filters=4)
    layer = generator.layers[-1]
    layer.kernel.assign(layer.kernel * 30.0)  # spread pixels over [0, 255]
    path = export_generator(generator, tmp_path_factory.mktemp("exports"), "digits",
                            num_classes=3)
    backend = Backend("digits", 1, path, labels={"stable": 1})
    with RestServer(backend) as rest, GrpcServer(backend) as grpc_server:
        yield {"rest": rest, "grpc": grpc_server, "local": ExportedGenerator(path)}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _LargeReplies:
    """The served model, answering `generate` with 64 images of 256 x 256 x 3 (12.6 MB),
    as a 256 px model does."""

    def __init__(self, backend):
        self.backend = backend

    def __getattr__(self, name):  # name, version, signature_defs, resolve: the model's
        return getattr(self.backend, name)

    def run(self, signature, inputs):
        outputs = self.backend.run(signature, inputs)
        outputs["images"] = np.full([64, 256, 256, 3], 7, np.uint8)
        return outputs


def test_grpc_takes_replies_past_grpcs_4_mb_default(served):
    with GrpcServer(_LargeReplies(served["grpc"].backend)) as big:
        outputs = GrpcClient(big.target, model="digits").predict(
            {"seed": np.arange(4, dtype=np.int64), "label": np.zeros(4, np.int32)}, "generate")
    assert outputs["images"].shape == (64, 256, 256, 3)


def test_rest_body_follows_the_documented_formats():
    inputs = {"seed": np.array([1, 2]), "label": np.array([0, 2], np.int32)}
    assert rest_body(inputs, "generate", "columnar") == {
        "signature_name": "generate", "inputs": {"seed": [1, 2], "label": [0, 2]}}
    assert rest_body(inputs, "generate", "row") == {
        "signature_name": "generate",
        "instances": [{"seed": 1, "label": 0}, {"seed": 2, "label": 2}]}
    binary = rest_body({"data_bytes": np.array([b"\x00\xff"], object)}, "s", "row")
    assert binary["instances"] == [{"data_bytes": {"b64": "AP8="}}]


def test_parse_rest_response_shapes_from_the_docs():
    b64 = base64.b64encode(b"png").decode()
    single = parse_rest_response({"predictions": [[[[1]]], [[[2]]]]}, "serving_default")
    assert single["images"].dtype == np.uint8 and single["images"].shape == (2, 1, 1, 1)
    rows = parse_rest_response({"predictions": [{"png_bytes": {"b64": b64}, "z": [0.5]}]},
                               "generate")
    assert rows["png_bytes"].tolist() == [b"png"] and rows["z"].dtype == np.float32
    columns = parse_rest_response({"outputs": {"png_bytes": [{"b64": b64}], "z": [[1.0]]}},
                                  "generate")
    assert columns["png_bytes"].tolist() == [b"png"]
    with pytest.raises(ServingError, match="server error: boom"):
        parse_rest_response({"error": "boom"}, "generate")


@pytest.mark.parametrize("fmt", ["row", "columnar"])
def test_rest_generate_matches_the_export(served, fmt):
    client = RestClient(served["rest"].url, model="digits", label="stable", fmt=fmt)
    seeds = [5, 6, 7, 5]
    samples = generate(client, seeds, labels_for_seeds(seeds, 3))
    expected = served["local"].generate(seeds, labels_for_seeds(seeds, 3))
    np.testing.assert_array_equal(samples.images, expected["images"])
    np.testing.assert_allclose(samples.z, expected["z"], rtol=1e-6)
    decoded = np.asarray(Image.open(io.BytesIO(samples.png_bytes[1])))
    np.testing.assert_array_equal(decoded, expected["images"][1][..., 0])
    body = served["rest"].requests[-1]
    assert ("instances" if fmt == "row" else "inputs") in body
    assert body["signature_name"] == "generate"


def test_rest_latents_status_and_metadata(served):
    client = RestClient(served["rest"].url, model="digits", version=1, fmt="row")
    z = np.random.default_rng(1).normal(size=[3, LATENT]).astype(np.float32)
    labels = [0, 1, 2]
    images = from_latents(client, z, labels).images
    np.testing.assert_array_equal(images, served["local"].images(z, labels))
    assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"
    signatures = client.metadata()["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "generate"} <= set(signatures)
    assert signatures["generate"]["inputs"]["seed"]["dtype"] == "DT_INT64"


def test_requests_are_split_at_max_batch_size(served):
    client = RestClient(served["rest"].url, model="digits")
    before = len(served["rest"].requests)
    seeds = range(MAX_BATCH_SIZE + 6)
    samples = generate(client, seeds, labels_for_seeds(seeds, 3))
    assert len(samples.images) == MAX_BATCH_SIZE + 6 == len(samples.png_bytes)
    assert len(served["rest"].requests) - before == 2


def test_grpc_predict_status_and_metadata(served):
    client = GrpcClient(served["grpc"].target, model="digits", label="stable")
    try:
        seeds = [9, 2]
        samples = generate(client, seeds, [1, 1])
        np.testing.assert_array_equal(samples.images,
                                      served["local"].generate(seeds, [1, 1])["images"])
        z = samples.z
        np.testing.assert_array_equal(from_latents(client, z, [1, 1]).images, samples.images)
        assert client.status()["model_version_status"][0]["state"] == "AVAILABLE"
        metadata = client.metadata()
        assert "generate" in metadata["metadata"]["signature_def"]["signature_def"]
    finally:
        client.close()


def rest_and_grpc(served, model="digits", **kwargs):
    return [RestClient(served["rest"].url, model=model, **kwargs),
            GrpcClient(served["grpc"].target, model=model, **kwargs)]


def test_clear_errors_for_unknown_model_and_signature(served):
    for client in rest_and_grpc(served, model="nope"):
        with pytest.raises(ServingError, match="model 'nope' not found"):
            client.status()
    for client in rest_and_grpc(served):
        with pytest.raises(ServingError, match="unknown signature 'paint'"):
            client.predict({"seed": np.array([1])}, "paint")


def test_server_error_bodies_are_surfaced(served):
    nan = np.full([1, LATENT], np.nan, np.float32)
    for client in rest_and_grpc(served):
        with pytest.raises(ServingError, match="kgan: z contains NaN or Inf"):
            client.predict({"z": nan, "label": np.array([0], np.int32)})
        with pytest.raises(ServingError, match="kgan: label must be < num_classes"):
            client.predict({"seed": np.array([1]), "label": np.array([7], np.int32)},
                           "generate")
    with pytest.raises(ServingError, match="to be float but double"):
        GrpcClient(served["grpc"].target, model="digits").predict(
            {"z": nan.astype(np.float64), "label": np.array([0], np.int32)})


def test_truncation_asked_of_a_model_without_one(served, tmp_path, capsys):
    for client in rest_and_grpc(served):
        with pytest.raises(ServingError, match="model 'digits' takes no truncation: its export "
                                               "has no 'generate_truncated' signature"):
            generate(client, [1], [0], truncation=0.7)
        with pytest.raises(ServingError, match="no 'latents_truncated' signature"):
            from_latents(client, np.zeros([1, LATENT]), [0], truncation=0.7)
        with pytest.raises(ServingError, match="takes no truncation: its export has no "
                                               "'generate_truncated_png' signature"):
            generate_png(client, [1], [0], truncation=0.7)
    spec = importlib.util.spec_from_file_location("serving_client_cli", CLIENT_CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--rest", served["rest"].url, "--model", "digits", "generate",
                        "--seeds", "1", "--num-classes", "3", "--truncation", "0.7"]) == 2
    assert "takes no truncation" in capsys.readouterr().err


def test_connection_refused_is_explained():
    port = closed_port()
    with pytest.raises(ServingError, match="cannot reach TF Serving.*--rest_api_port"):
        RestClient(f"http://127.0.0.1:{port}", model="digits", timeout=5).status()
    with pytest.raises(ServingError, match="cannot reach TF Serving.*--port"):
        GrpcClient(f"127.0.0.1:{port}", model="digits", timeout=5).status()


def test_client_side_checks():
    with pytest.raises(ValueError, match="empty batch"):
        generate(None, [])
    with pytest.raises(ValueError, match="NaN or Inf"):
        from_latents(None, np.full([1, LATENT], np.inf))
    with pytest.raises(ValueError, match="version or a label, not both"):
        RestClient(model="digits", version=1, label="stable")
    for labels in ([1.7, 2.2], np.array([1.0, 2.0])):  # never truncated to a class
        with pytest.raises(ValueError, match="labels must be integers .class indices., got "
                                             "dtype float"):
            generate(None, [3, 3], labels)
        with pytest.raises(ValueError, match="labels must be integers .class indices.,"):
            check_labels(labels, 2, 3)
    for label in ("a b", "", "x/../../digits"):  # one URL segment, as a model name
        with pytest.raises(ValueError, match="the version label must be letters, digits"):
            RestClient(model="digits", label=label)


def test_save_pngs_and_grid(served, tmp_path):
    samples = generate(RestClient(served["rest"].url, model="digits"), [0, 1, 2], [0, 1, 2])
    paths = save_pngs(samples, tmp_path / "pngs")
    assert [os.path.basename(p) for p in paths] == ["0000.png", "0001.png", "0002.png"]
    grid = np.asarray(Image.open(save_grid(samples.images, tmp_path / "grid.png", 2)))
    assert grid.shape == (16, 16)
    np.testing.assert_array_equal(grid[8:, :8], samples.images[2][..., 0])


def test_command_line_client(served, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("serving_client_cli", CLIENT_CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    url = served["rest"].url
    assert module.main(["--rest", url, "--model", "digits", "generate", "--seeds", "3-6",
                        "--num-classes", "3", "--out", str(tmp_path / "out"),
                        "--grid", str(tmp_path / "grid.png")]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == [f"seed_{s}.png" for s in range(3, 7)]
    assert (tmp_path / "grid.png").exists()
    assert module.main(["--grpc", served["grpc"].target, "--model", "digits", "status"]) == 0
    assert "AVAILABLE" in capsys.readouterr().out
    assert module.main(["--rest", url, "--model", "nope", "metadata"]) == 1
    assert "model 'nope' not found" in capsys.readouterr().err


SERVING = os.path.join(os.path.dirname(__file__), os.pardir, "serving")


def test_deployment_files_agree_with_the_export():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(os.path.join(SERVING, "models.config")) as handle:
        config = text_format.Parse(handle.read(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert model.base_path == f"/models/{model.name}"
    assert model.model_version_policy.latest.num_versions >= 1
    assert dict(model.version_labels) == {"stable": 1}
    with open(os.path.join(SERVING, "batching_parameters.txt")) as handle:
        batching = handle.read()
    assert re.search(r"^max_batch_size \{ value: (\d+) \}", batching, re.M)[1] == str(
        MAX_BATCH_SIZE)
    for name, image in [("docker-compose.yml", "tensorflow/serving:latest"),
                        ("docker-compose.gpu.yml", "tensorflow/serving:latest-gpu")]:
        with open(os.path.join(SERVING, name)) as handle:
            service = yaml.safe_load(handle)["services"]["tfserving"]
        assert service["image"] == image
        assert any(volume.endswith(":/models:ro") for volume in service["volumes"])
        flags = dict(flag.lstrip("-").split("=", 1) for flag in service["command"])
        assert flags["model_config_file"] == "/config/models.config"
        assert flags["enable_batching"] == "true"
        assert flags["batching_parameters_file"] == "/config/batching_parameters.txt"
        assert (flags["port"], flags["rest_api_port"]) == ("8500", "8501")


def test_serving_readme_requests_work_on_the_conditional_digits_model(tmp_path):
    """serving/README's curl examples for `digits`, verbatim (a placeholder latent filled
    in), against the conditional 10-class model `python train.py` makes."""
    with open(os.path.join(SERVING, "README.md")) as handle:
        text = handle.read()
    calls = re.findall(r"curl (?:-s )?-d '([^']*)' \\\n\s+http://localhost:8501"
                       r"(/v1/models/digits\S*)", text)
    assert len(calls) == 4, calls
    (save_png,) = re.findall(r"\| python -c '([^']*)' > seed0\.png", text)
    keras.utils.set_random_seed(0)
    generator, _ = kgan.networks.dcgan(resolution=8, channels=1, latent_dim=LATENT,
                                       num_classes=10, base_filters=4)
    path = export_generator(generator, tmp_path, "digits", num_classes=10)
    with RestServer(Backend("digits", 1, path, labels={"stable": 1})) as rest:
        for body, route in calls:
            body = body.replace("[0.1, -0.3, ...]", json.dumps([0.1] * LATENT))
            with urllib.request.urlopen(rest.url + route, body.encode()) as answer:
                reply = json.load(answer)
            if '"seed": [0]' in body:  # the "save the first PNG" one-liner, run on it
                saved = subprocess.run([sys.executable, "-c", save_png], capture_output=True,
                                       input=json.dumps(reply).encode(), check=True)
                assert saved.stdout.startswith(b"\x89PNG")
            assert {"outputs", "predictions"} & set(reply)


# ------------------------------------------------------- REST without TensorFlow
NO_TENSORFLOW = """
import sys
sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
from kgan.serving.client import RestClient, generate, labels_for_seeds, rest_body, save_grid
from kgan.serving.limits import MAX_BATCH_SIZE
body = rest_body({"seed": [1, 2]}, "generate")
assert body == {"signature_name": "generate", "inputs": {"seed": [1, 2]}}, body
client = RestClient(sys.argv[1], model="digits")
samples = generate(client, [5, -6], labels_for_seeds([5, -6], 3))
save_grid(samples.images, sys.argv[2])
print(samples.images.shape, samples.images.dtype.name, "keras" in sys.modules)
"""


def test_rest_client_works_without_tensorflow(served, tmp_path):
    done = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, served["rest"].url,
                           str(tmp_path / "grid.png")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "(2, 8, 8, 1) uint8 False"
    expected = served["local"].generate([5, -6], [2, 0])["images"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "grid.png")),
                                  np.concatenate(expected[..., 0], axis=1))


# ------------------------------------------------------------ seeds and labels
def cli_module():
    spec = importlib.util.spec_from_file_location("serving_client_cli", CLIENT_CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("text, seeds", [
    ("-5", [-5]), ("-2--1,3", [-2, -1, 3]), ("0-3", [0, 1, 2, 3]), ("7, 9 - 10", [7, 9, 10]),
])
def test_seed_lists_take_negative_seeds(text, seeds):
    assert cli_module().parse_seeds(text) == seeds


def test_negative_seeds_from_the_command_line(served, tmp_path):
    module = cli_module()
    assert module.main(["--rest", served["rest"].url, "--model", "digits", "generate",
                        "--seeds", "-2--1", "--num-classes", "3", "--out",
                        str(tmp_path)]) == 0
    assert sorted(os.listdir(tmp_path)) == ["seed_-1.png", "seed_-2.png"]
    expected = served["local"].generate([-2], labels_for_seeds([-2], 3))["images"][0]
    assert_close_images(np.asarray(Image.open(tmp_path / "seed_-2.png")), expected[..., 0])


def test_seeds_beyond_int64_are_refused_clearly(served, capsys):
    with pytest.raises(ValueError, match=r"int64's range \[-2\*\*63, 2\*\*63 - 1\]; "
                                         "9223372036854775808 does not"):
        generate(RestClient(served["rest"].url, model="digits"), [1, 2**63], [0, 0])
    with pytest.raises(SystemExit) as done:
        cli_module().main(["--model", "digits", "generate", "--seeds", "9223372036854775808"])
    assert done.value.code == 2
    error = capsys.readouterr().err
    assert "error: argument --seeds: seeds must lie in int64's range" in error
    assert "Traceback" not in error


@pytest.mark.parametrize("argv, words", [
    (["--model", "a b", "status"], "--model must be letters, digits"),
    (["--model", "../x", "status"], "--model must be letters, digits"),
    (["--model", "digits", "--version", "0", "status"], "--version must be a positive integer"),
    (["--model", "digits", "--timeout", "inf", "status"], "--timeout must be in (0, 86400]"),
    (["--model", "digits", "--timeout", "0", "status"], "--timeout must be in (0, 86400]"),
    (["--model", "digits", "latents", "--count", "0"], "--count must be >= 1, got 0"),
    (["--model", "digits", "generate", "--num-classes", "0"], "--num-classes must be >= 1"),
    (["--model", "digits", "generate", "--truncation", "nan"], "truncation"),
])
def test_bad_arguments_exit_2_before_any_request(argv, words, monkeypatch, capsys):
    module = cli_module()
    monkeypatch.setattr(module, "_client", lambda args: pytest.fail("contacted a server"))
    assert module.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("client.py: error: ") and words in error and error.count("\n") == 1


def test_conditional_model_without_num_classes(served, tmp_path, capsys):
    module = cli_module()
    assert module.main(["--rest", served["rest"].url, "--model", "digits", "generate",
                        "--seeds", "4-5", "--out", str(tmp_path)]) == 0
    expected = served["local"].generate([4, 5], [1, 2])["images"]  # labels = seed % 3
    for seed, image in zip((4, 5), expected, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"seed_{seed}.png")),
                                      image[..., 0])


def test_library_calls_default_the_labels_as_the_cli_does(served, monkeypatch):
    """serving/README's `generate(client, range(16))` works on a conditional model."""
    for client in rest_and_grpc(served):
        samples = generate(client, [4, 5])  # labels seed % 3, as GAN.generate draws them
        np.testing.assert_array_equal(samples.images,
                                      served["local"].generate([4, 5], [1, 2])["images"])
        with monkeypatch.context() as patch:  # the class count is asked once per client
            patch.setattr(client_lib, "checked_num_classes", lambda *a: pytest.fail("asked"))
            generate(client, [7])
        z = np.random.default_rng(0).normal(size=[3, LATENT]).astype(np.float32)
        np.testing.assert_array_equal(from_latents(client, z).images,  # labels row % 3
                                      served["local"].images(z, [0, 1, 2]))
        with pytest.raises(ValueError, match=r"labels must be 3 integers, one per row of z, "
                                             r"got shape \[1\]"):
            from_latents(client, z, [1])


def test_num_classes_is_checked_against_the_server(served, capsys):
    url = served["rest"].url
    for given in ("2", "4"):  # too few would draw wrong classes, too many fail later
        assert cli_module().main(["--rest", url, "--model", "digits", "generate", "--seeds",
                                  "1", "--num-classes", given]) == 2
        assert capsys.readouterr().err == (
            f"client.py: error: --num-classes {given} does not match the served model, "
            "which has 3 classes; drop --num-classes (the server says it)\n")


class _SilentServer:
    """A conditional model whose server accepts any label, so it never names its count."""

    def metadata(self):
        dims = {"dim": [{"size": "-1"}, {"size": str(LATENT)}]}
        return {"metadata": {"signature_def": {"signature_def": {
            "generate": {"inputs": {"seed": {}, "label": {}}},
            "serving_default": {"inputs": {"z": {"tensor_shape": dims}}}}}}}

    def predict(self, inputs, signature):
        return {"images": np.zeros([1, 8, 8, 1], np.uint8)}


def test_unknown_class_count_asks_for_num_classes(monkeypatch, capsys):
    module = cli_module()
    monkeypatch.setattr(module, "_client", lambda args: _SilentServer())
    assert module.main(["--model", "digits", "generate", "--seeds", "1"]) == 2
    assert capsys.readouterr().err == ("client.py: error: this model is conditional: pass "
                                       "--num-classes N (its class count; labels= in "
                                       "Python)\n")


class _BeforeTheClassCountSignature(_LargeReplies):
    """The served model as exported before it had the `num_classes` signature."""

    @property
    def signature_defs(self):
        return {k: v for k, v in self.backend.signature_defs.items() if k != "num_classes"}

    def run(self, signature, inputs):
        return self.backend.run(signature, inputs)


def test_the_class_count_is_asked_without_an_invalid_request(served):
    """Under server-side batching an invalid row fails every request merged with it, so
    a client learns the class count from the `num_classes` signature; an export without
    it is still probed with an out-of-range label (the only way it can answer)."""
    with RestServer(served["grpc"].backend) as rest:
        assert checked_num_classes(RestClient(rest.url, model="digits")) == 3
        asked = [body.get("signature_name") for body in rest.requests]
        assert asked == ["num_classes"] and rest.requests[0]["inputs"] == {"seed": [0]}
    assert checked_num_classes(GrpcClient(served["grpc"].target, model="digits")) == 3
    with RestServer(_BeforeTheClassCountSignature(served["grpc"].backend)) as old:
        assert checked_num_classes(RestClient(old.url, model="digits")) == 3
        assert old.requests[0]["inputs"]["label"] == [2**31 - 1]


def test_generate_png_sends_the_png_files_only(served, tmp_path):
    """REST returns every output of a signature; `generate_png` has no pixel arrays, so
    its replies are a fraction of `generate`'s. An older export (no such signature) is
    asked `generate`, whose PNGs are the same bytes."""
    seeds, labels = [5, 6, 7], [2, 0, 1]  # seed % 3, the default
    expected = [bytes(p) for p in served["local"].generate(seeds, labels)["png_bytes"]]
    backend = served["grpc"].backend
    with RestServer(backend) as rest:
        client = RestClient(rest.url, model="digits")
        assert generate_png(client, seeds) == expected
        assert generate(client, seeds).png_bytes == expected
        asked = [body.get("signature_name") for body in rest.requests]
        assert asked == ["num_classes", "generate_png", "generate"]
        assert rest.replies[1] < rest.replies[2] / 2  # without images and z
        for fmt in ("row", "columnar"):  # REST drops the name of a signature's only output
            assert generate_png(RestClient(rest.url, model="digits", fmt=fmt), seeds,
                                labels) == expected
    assert generate_png(GrpcClient(served["grpc"].target, model="digits"), seeds) == expected
    older = Backend("digits", 1, backend.path, labels={}, hide=tuple(PNG_SIGNATURES.values()))
    with RestServer(older) as rest:
        assert generate_png(RestClient(rest.url, model="digits"), seeds) == expected
        assert [body.get("signature_name") for body in rest.requests][-1] == "generate"
    module = cli_module()
    with RestServer(backend) as rest:
        assert module.main(["--rest", rest.url, "--model", "digits", "generate", "--seeds",
                            "5-7", "--out", str(tmp_path)]) == 0
        assert rest.requests[-1]["signature_name"] == "generate_png"
    assert (tmp_path / "seed_7.png").read_bytes() == expected[2]


def test_a_failing_server_is_reported_as_such_not_as_a_missing_flag(served, capsys):
    """A 502 from a gateway while asking for the class count: the real cause, exit 1."""
    with FlakyProxy(served["rest"].url, status=502) as proxy:
        assert cli_module().main(["--rest", proxy.url, "--model", "digits", "generate",
                                  "--seeds", "1"]) == 1
        error = capsys.readouterr().err
        assert f"server error (HTTP 502 from {proxy.url})" in error
        assert "--num-classes" not in error
        with pytest.raises(ServingError, match="HTTP 502"):
            served_num_classes(RestClient(proxy.url, model="digits"))


def test_a_slow_server_is_named_a_timeout(served, capsys):
    with FlakyProxy(served["rest"].url, delay=2) as proxy:
        with pytest.raises(ServingError, match=re.escape(
                f"no answer from TF Serving at {proxy.url} within 0.5 s; raise --timeout")):
            generate(RestClient(proxy.url, model="digits", timeout=0.5), [1], [0])
        assert cli_module().main(["--rest", proxy.url, "--model", "digits", "--timeout",
                                  "0.5", "generate", "--seeds", "1"]) == 1
        assert "within 0.5 s; raise --timeout" in capsys.readouterr().err
    with pytest.raises(ServingError, match="within 0.001 s; raise --timeout"):
        GrpcClient(served["grpc"].target, model="digits", timeout=0.001).predict(
            {"seed": np.arange(64), "label": np.zeros(64, np.int32)}, "generate")


def test_server_errors_are_trimmed_to_the_exports_words(served):
    for client in rest_and_grpc(served):
        with pytest.raises(ServingError) as caught:
            client.predict({"seed": np.array([1]), "label": np.array([7], np.int32)},
                           "generate")
        assert re.fullmatch(r"the server refused the request \((HTTP 400|gRPC "
                            r"INVALID_ARGUMENT) from \S+\): kgan: label must be < "
                            r"num_classes = 3", str(caught.value))
        assert caught.value.refused


def test_rest_url_without_scheme_is_bad_input(capsys):
    with pytest.raises(ValueError, match="must start with http:// or https://"):
        RestClient("localhost:8501", model="digits")
    assert cli_module().main(["--rest", "localhost:8501", "--model", "digits",
                              "status"]) == 2
    assert capsys.readouterr().err == (
        "client.py: error: the REST URL must start with http:// or https://, got "
        "'localhost:8501' (e.g. http://localhost:8501)\n")


def test_fake_server_refuses_non_integer_seeds_as_tf_serving_does(served):
    for seed in (1.5, 1.0, "3"):
        body = json.dumps({"signature_name": "generate",
                           "inputs": {"seed": [seed], "label": [0]}}).encode()
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(served["rest"].url + "/v1/models/digits:predict", body)
        assert caught.value.code == 400
        assert "is not of expected type: int64" in json.load(caught.value)["error"]


def test_columnar_rest_with_one_latent_vector_is_named(served):
    client = RestClient(served["rest"].url, model="digits", fmt="columnar")
    with pytest.raises(ServingError, match=r"kgan: z must be a matrix \[N, 8\]"):
        client.predict({"z": np.zeros(LATENT, np.float32), "label": np.zeros(1, np.int32)})
    with pytest.raises(ServingError, match=r"kgan: seed must be a list \[N\]"):
        client.predict({"seed": np.array([[3]]), "label": np.zeros(1, np.int32)}, "generate")
