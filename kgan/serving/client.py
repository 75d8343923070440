"""Clients for a generator served by TensorFlow Serving, over REST or gRPC.

Both clients speak the server's documented protocols (REST: tensorflow.org/tfx/serving/
api_rest; gRPC: tensorflow_serving.apis PredictionService) and return NumPy arrays, so
code above them does not care which one it holds. REST uses only the standard library
and NumPy (this module imports no TensorFlow); gRPC uses `tensorflow-serving-api`, a
kgan dependency, and TensorFlow's tensor protos.
`serving/client.py` is the command line over this module.

Generators with a mapping network (stylegan2) take a truncation psi per request:
`generate(client, seeds, truncation=0.7)` asks the export's `generate_truncated`
signature (`from_latents` its `latents_truncated`); a model without them refuses it.
`generate_png` asks for PNG files only (`generate_png`): REST sends every output of a
signature, and `generate`'s pixel arrays in JSON are several times the size of its PNGs.

Example:
    >>> client = RestClient("http://localhost:8501", model="digits")
    >>> samples = generate(client, range(16))            # seeds 0..15
    >>> save_grid(samples.images, "grid.png")
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np

from kgan.images import tile_grid
from kgan.serving.limits import (
    MAX_BATCH_SIZE,
    NUM_CLASSES_SIGNATURE,
    PNG_SIGNATURES,
    TRUNCATED_SIGNATURES,
    as_seeds,
    check_model_name,
    check_seeds,
    check_truncation,
    labels_from_seeds,
)

# JSON carries no dtypes; these are the dtypes of our signatures' outputs.
_OUTPUT_DTYPES = {"images": np.uint8, "z": np.float32, "num_classes": np.int32}
# The signatures that take a truncation (a model without a mapping network has none).
_TRUNCATED = {*TRUNCATED_SIGNATURES.values(), PNG_SIGNATURES[TRUNCATED_SIGNATURES["generate"]]}
# REST drops the output name when a signature has a single output.
_SINGLE_OUTPUT = {"serving_default": "images", TRUNCATED_SIGNATURES["serving_default"]: "images",
                  NUM_CLASSES_SIGNATURE: "num_classes",
                  **{png: "png_bytes" for png in PNG_SIGNATURES.values()}}


class ServingError(RuntimeError):
    """The server could not be reached, or it refused the request (message says why).

    `refused` is True when the server answered that the request itself is invalid
    (HTTP 400, gRPC INVALID_ARGUMENT), False for anything else (unreachable, timeout,
    unknown model, a 5xx or a proxy's error page).
    """

    def __init__(self, message: str, refused: bool = False):
        super().__init__(message)
        self.refused = refused


def kgan_message(text: str) -> str | None:
    """The export's own words in a server or TF error, without the 'kgan: ' prefix.

    The graph's checks prefix their messages with 'kgan: '; TF wraps them in node names,
    conditions and op names ('... [kgan: label must be < num_classes = 10] [Condition x <
    y ...]'). Brackets inside the message ('[-1, 2]', '[N, 8]') are kept. None when the
    text holds no kgan check.
    """
    found = re.search(r"kgan: ((?:\[[^\]\n]*\]|[^\[\]\n])+)", text)
    return found.group(1).strip() if found else None


def error_line(text: str) -> str:
    """A TF error's one meaningful line: the kgan check's words, else the op's own message
    ("indices[1] = 4 is not in [0, 3)") without TF's headers, node names and stack."""
    found = kgan_message(text)
    if found:
        return found
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(
        ("Graph execution error", "Detected at node", "<stack traces", "[[", "File "))]
    return (useful or lines or ["unknown error"])[0][:300]


@dataclass
class Samples:
    """Images from the server: uint8 [N, H, W, C], PNG files' bytes and latents (or None)."""

    images: np.ndarray
    png_bytes: list[bytes] | None = None
    z: np.ndarray | None = None


def model_path(model: str, version: int | None = None, label: str | None = None) -> str:
    """Returns `/v1/models/NAME[/versions/V | /labels/L]` (one of version and label)."""
    if version is not None and label is not None:
        raise ValueError("pass a version or a label, not both")
    path = f"/v1/models/{model}"
    if version is not None:
        path += f"/versions/{int(version)}"
    elif label is not None:
        path += f"/labels/{check_model_name(label, 'the version label')}"  # one URL segment
    return path


def rest_body(inputs: dict[str, np.ndarray], signature: str, fmt: str = "columnar") -> dict:
    """Builds a :predict body in row ("instances") or columnar ("inputs") format.

    Row format repeats each input name per example; columnar sends one list per input.
    Byte strings become `{"b64": ...}` objects as the REST API requires.
    """
    columns = {name: _to_json(np.asarray(value)) for name, value in inputs.items()}
    if fmt == "columnar":
        return {"signature_name": signature, "inputs": columns}
    if fmt == "row":
        size = len(next(iter(columns.values())))
        rows = [{name: column[i] for name, column in columns.items()} for i in range(size)]
        return {"signature_name": signature, "instances": rows}
    raise ValueError(f"format must be 'row' or 'columnar', got {fmt!r}")


def _to_json(array: np.ndarray):
    if array.dtype.kind in "SO":
        return [{"b64": base64.b64encode(bytes(item)).decode("ascii")} for item in array]
    return array.tolist()


def parse_rest_response(body: dict, signature: str) -> dict[str, np.ndarray]:
    """Turns a :predict response ("predictions" or "outputs") into named NumPy arrays."""
    if "error" in body:
        raise ServingError(f"server error: {body['error']}")
    if "predictions" in body:
        rows = body["predictions"]
        if rows and all(isinstance(row, dict) and not _is_b64(row) for row in rows):
            named = {name: [row[name] for row in rows] for name in rows[0]}
        else:
            named = {_SINGLE_OUTPUT.get(signature, "output"): rows}
    elif "outputs" in body:
        outputs = body["outputs"]
        if isinstance(outputs, dict) and not _is_b64(outputs):
            named = outputs
        else:
            named = {_SINGLE_OUTPUT.get(signature, "output"): outputs}
    else:
        raise ServingError(f"unexpected response without predictions/outputs: {body!r:.200}")
    return {name: _to_array(name, value) for name, value in named.items()}


def _is_b64(value) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _to_array(name: str, value) -> np.ndarray:
    if name.endswith("_bytes"):
        return np.array([base64.b64decode(item["b64"]) for item in value], dtype=object)
    return np.asarray(value, dtype=_OUTPUT_DTYPES.get(name))


class RestClient:
    """Talks to TF Serving's REST API (`--rest_api_port`, 8501 by default).

    Args:
        url: server root, e.g. "http://localhost:8501".
        model: model name from models.config.
        version: a version number to pin, or `label` (e.g. "stable"); neither = latest.
        fmt: request format for predict, "columnar" (compact) or "row".
        timeout: seconds per request.
    """

    def __init__(self, url: str = "http://localhost:8501", model: str = "kgan",
                 version: int | None = None, label: str | None = None,
                 fmt: str = "columnar", timeout: float = 30.0):
        if not re.match(r"https?://[^/]", url):
            raise ValueError(f"the REST URL must start with http:// or https://, got {url!r} "
                             f"(e.g. http://{url.split('://')[-1] or 'localhost:8501'})")
        self.url = url.rstrip("/")
        self.model, self.fmt, self.timeout = model, fmt, timeout
        self.path = model_path(model, version, label)

    def status(self) -> dict:
        """GET /v1/models/NAME: the state of each version (AVAILABLE, LOADING, ...)."""
        return self._request(self.path)

    def metadata(self) -> dict:
        """GET /v1/models/NAME/metadata: signatures with their input/output specs."""
        return self._request(self.path + "/metadata")

    def predict(self, inputs: dict[str, np.ndarray], signature: str = "serving_default"
                ) -> dict[str, np.ndarray]:
        """POSTs one :predict request and returns the outputs by name."""
        body = rest_body(inputs, signature, self.fmt)
        return parse_rest_response(self._request(self.path + ":predict", body, signature),
                                   signature)

    def _request(self, path: str, body: dict | None = None, signature: str = "") -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise self._http_error(error, signature) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise timed_out(self.url, self.timeout) from None
            raise ServingError(f"cannot reach TF Serving at {self.url}: {reason} (is "
                               "tensorflow_model_server running with --rest_api_port?)"
                               ) from None

    def _http_error(self, error: urllib.error.HTTPError, signature: str) -> ServingError:
        raw = error.read().decode(errors="replace")
        try:
            message = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            message = raw.strip() or error.reason
        return _describe(error.code == 404, message, self.model, signature,
                         f"HTTP {error.code} from {self.url}", refused=error.code == 400)


def timed_out(where: str, timeout: float) -> ServingError:
    """A request that got no answer in time, named as such (not as a server that is down)."""
    return ServingError(f"no answer from TF Serving at {where} within {timeout:g} s; raise "
                        "--timeout (timeout= in Python) if the server is busy or the "
                        "model slow")


def _describe(not_found: bool, message: str, model: str, signature: str,
              where: str, refused: bool = False) -> ServingError:
    """Names the usual causes (unknown model / signature) in front of the server's text;
    a refusal by the export's own checks is trimmed to their 'kgan: ...' words."""
    lowered = message.lower()
    check = kgan_message(message)
    if check is not None:
        return ServingError(f"the server refused the request ({where}): kgan: {check}",
                            refused=refused)
    if "input size does not match signature" in lowered:
        return ServingError(f"the request's inputs do not match the signature {signature!r}: "
                            "a conditional model takes a label per seed (labels_for_seeds, "
                            "or client.py --num-classes N), an unconditional one none "
                            f"({where}: {message})")
    if "signature" in lowered and "not found" in lowered and signature in _TRUNCATED:
        return ServingError(f"model {model!r} takes no truncation: its export has no "
                            f"{signature!r} signature (only generators with a mapping network, "
                            "e.g. stylegan2, have one); leave truncation out "
                            f"({where}: {message})")
    if "signature" in lowered and "not found" in lowered:
        return ServingError(f"unknown signature {signature!r} for model {model!r} "
                            f"(ours are serving_default and generate): {message}")
    if not_found:
        return ServingError(f"model {model!r} not found ({where}); check the name in "
                            f"models.config and that a version is loaded: {message}")
    return ServingError(f"server error ({where}): {message}", refused=refused)


MAX_MESSAGE_BYTES = 2**31 - 1  # TF Serving's own gRPC limit


class GrpcClient:
    """Talks to TF Serving's gRPC API (`--port`, 8500 by default); same methods as RestClient.

    Args:
        target: "host:port" of the gRPC endpoint.
        model, version, label: which model and version to ask (see RestClient).
        timeout: seconds per call.
    """

    def __init__(self, target: str = "localhost:8500", model: str = "kgan",
                 version: int | None = None, label: str | None = None,
                 timeout: float = 30.0):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        model_path(model, version, label)  # same version/label check as REST
        self.target, self.model, self.timeout = target, model, timeout
        self.version, self.label = version, label
        # gRPC's 4 MB default would refuse 64 images at 256 px (15 MB with their PNGs);
        # TF Serving itself sends up to 2 GB.
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _spec(self, spec, signature: str | None = None) -> None:
        spec.name = self.model
        if self.version is not None:
            spec.version.value = int(self.version)
        elif self.label is not None:
            spec.version_label = self.label
        if signature:
            spec.signature_name = signature

    def status(self) -> dict:
        """ModelService.GetModelStatus, as the same dict the REST status returns."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request, "")
        return json_format.MessageToDict(response, preserving_proto_field_name=True)

    def metadata(self) -> dict:
        """PredictionService.GetModelMetadata(signature_def), in the REST layout."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(
            metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self._predict.GetModelMetadata, request, "")
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        return {
            "model_spec": json_format.MessageToDict(response.model_spec,
                                                    preserving_proto_field_name=True),
            "metadata": {"signature_def": json_format.MessageToDict(
                signatures, preserving_proto_field_name=True)},
        }

    def predict(self, inputs: dict[str, np.ndarray], signature: str = "serving_default"
                ) -> dict[str, np.ndarray]:
        """Sends one PredictRequest and returns the outputs by name."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature)
        for name, value in inputs.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
        response = self._call(self._predict.Predict, request, signature)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def _call(self, method, request, signature: str):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE:
                raise ServingError(f"cannot reach TF Serving at {self.target}: {details} "
                                   "(is tensorflow_model_server running with --port?)"
                                   ) from None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise timed_out(self.target, self.timeout) from None
            raise _describe(code == grpc.StatusCode.NOT_FOUND, details, self.model,
                            signature, f"gRPC {code.name} from {self.target}",
                            refused=code == grpc.StatusCode.INVALID_ARGUMENT) from None


@dataclass(frozen=True)
class ModelInputs:
    """What the served model takes, read from its metadata: latent size, whether its
    signatures have a `label` input (a conditional model), whether it has the truncated
    signatures (a generator with a mapping network), the class-count signature and the
    PNG-only ones (older exports lack the last two)."""

    latent_dim: int
    conditional: bool
    truncation: bool = False
    tells_num_classes: bool = False
    png_only: bool = False


def model_inputs(client) -> ModelInputs:
    """Reads the signatures' inputs from GET /v1/models/NAME/metadata (or gRPC's
    GetModelMetadata, which both clients return in the REST layout)."""
    try:
        signatures = client.metadata()["metadata"]["signature_def"]["signature_def"]
        generate_inputs = signatures["generate"]["inputs"]
        dims = signatures["serving_default"]["inputs"]["z"]["tensor_shape"]["dim"]
        latent_dim = int(dims[-1]["size"])
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise ServingError(f"the model's metadata does not describe a kgan export "
                           f"(missing {error}); is it one?") from None
    return ModelInputs(latent_dim, "label" in generate_inputs,
                       TRUNCATED_SIGNATURES["generate"] in signatures,
                       NUM_CLASSES_SIGNATURE in signatures,
                       PNG_SIGNATURES["generate"] in signatures)


def served_num_classes(client, inputs: ModelInputs | None = None) -> int | None:
    """Asks a conditional model how many classes it has; None if it does not say.

    An export has a `num_classes` signature that answers it. Exports from before it
    (no such signature in the metadata) are probed instead with one request whose label
    is past any real class count, which the export's check refuses with "kgan: label
    must be < num_classes = K"; only that refusal is an answer. (Under server-side
    batching that invalid request fails the requests merged with it: export again.)

    Raises:
        ServingError: the probe failed for another reason (unreachable, timeout, a 5xx,
            another refusal); the message is the real cause.
    """
    inputs = inputs or model_inputs(client)
    if inputs.tells_num_classes:
        answer = client.predict({"seed": np.zeros(1, np.int64)}, NUM_CLASSES_SIGNATURE)
        return int(np.asarray(answer["num_classes"]).reshape(-1)[0])
    probe = {"seed": np.zeros(1, np.int64), "label": np.full(1, 2**31 - 1, np.int32)}
    try:
        client.predict(probe, "generate")
    except ServingError as error:
        found = re.search(r"num_classes = (\d+)", str(error))
        if found and getattr(error, "refused", False):
            return int(found.group(1))
        raise
    return None


def checked_num_classes(client, given: int | None = None) -> int | None:
    """The served model's class count (None: unconditional), checked against `given`
    (a count the caller was told, e.g. --num-classes).

    Raises:
        ValueError: `given` for an unconditional model, `given` unlike the served
            count, or a conditional model that does not say its count and none given.
        ServingError: the server could not be asked (see `served_num_classes`).
    """
    inputs = _model_inputs(client)  # the metadata `generate_png` reads too: asked once
    if not inputs.conditional:
        if given is not None:
            raise ValueError("this model is unconditional (its signatures take no label); "
                             "drop --num-classes")
        return None
    found = served_num_classes(client, inputs)
    if found is None and given is None:
        raise ValueError("this model is conditional: pass --num-classes N (its class count; "
                         "labels= in Python)")
    if found is not None and given is not None and given != found:
        raise ValueError(f"--num-classes {given} does not match the served model, which "
                         f"has {found} classes; drop --num-classes (the server says it)")
    return found if found is not None else given


def generate(client, seeds, labels=None, truncation=None) -> Samples:
    """Asks the `generate` signature for one image per seed, MAX_BATCH_SIZE per request.

    Seeds map to the same images as `GAN.generate(n, seed=s)` for seeds s..s+n-1. A
    conditional model takes one label per seed; without `labels` they are the GAN's
    defaults, seed % num_classes (the class count is asked of the server once per call).
    `truncation` (psi: one number, or one per seed) asks `generate_truncated` instead,
    which only generators with a mapping network have; a (seed, psi) pair gives the
    same image in any request.
    """
    parts = [client.predict(inputs, signature)
             for inputs, signature in _seed_requests(client, seeds, labels, truncation)]
    return Samples(images=np.concatenate([p["images"] for p in parts]).astype(np.uint8),
                   png_bytes=[bytes(b) for p in parts for b in p["png_bytes"]],
                   z=np.concatenate([p["z"] for p in parts]).astype(np.float32))


def generate_png(client, seeds, labels=None, truncation=None) -> list[bytes]:
    """The PNG files of `generate(client, seeds, labels, truncation)`, without its pixel
    arrays and latents: the export's `generate_png` (`generate_truncated_png`) answers
    PNG bytes only. Over REST, 64 RGB images of 128 px are 1-2.4 MB of base64 PNGs
    instead of 19 MB of JSON. An older export without these signatures is asked
    `generate`, whose PNGs are the same bytes.
    """
    if not _model_inputs(client).png_only:
        return generate(client, seeds, labels, truncation).png_bytes
    return [bytes(png) for inputs, signature in _seed_requests(client, seeds, labels, truncation)
            for png in client.predict(inputs, PNG_SIGNATURES[signature])["png_bytes"]]


def _seed_requests(client, seeds, labels, truncation):
    """(inputs, signature) of `generate` (or `generate_truncated`) per request."""
    seeds = as_seeds(seeds)
    if seeds.size == 0:
        raise ValueError("empty batch: ask for at least one seed")
    labels = _labels(client, labels, seeds, "seed")
    for rows in _chunks(seeds, labels, truncation):
        yield _request({"seed": check_seeds(rows[0])}, "generate", *rows[1:])


def from_latents(client, z, labels=None, truncation=None) -> Samples:
    """Asks `serving_default` for the images of latents z [N, latent_dim]
    (`latents_truncated` with a `truncation`, as in `generate`). A conditional model's
    labels default to row % num_classes, as `serving/client.py latents` draws them."""
    z = np.asarray(z, dtype=np.float32)
    if z.ndim != 2 or len(z) == 0:
        raise ValueError(f"z must be a non-empty [N, latent_dim] array, got {list(z.shape)}")
    if not np.isfinite(z).all():
        raise ValueError("z contains NaN or Inf; the server would reject it")
    labels = _labels(client, labels, np.arange(len(z)), "row of z")
    parts = [client.predict(*_request({"z": rows[0]}, "serving_default", *rows[1:]))
             for rows in _chunks(z, labels, truncation)]
    return Samples(images=np.concatenate([p["images"] for p in parts]).astype(np.uint8), z=z)


def _labels(client, labels, rows: np.ndarray, what: str) -> np.ndarray | None:
    """`labels` checked to be one per row, or the defaults (row % K) of a conditional model."""
    if labels is None:
        k = _class_count(client)
        return None if k is None else labels_for_seeds(rows, k)
    labels = np.asarray(labels)
    if labels.shape != (len(rows),):
        raise ValueError(f"labels must be {len(rows)} integers, one per {what}, got shape "
                         f"{list(labels.shape)}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):  # 1.7 is no class
        raise ValueError(f"labels must be integers (class indices), got dtype {labels.dtype}")
    return labels.astype(np.int32)


def _model_inputs(client) -> ModelInputs:
    """`model_inputs`, asked once per client object."""
    if not hasattr(client, "_kgan_model_inputs"):
        client._kgan_model_inputs = model_inputs(client)
    return client._kgan_model_inputs


def _class_count(client) -> int | None:
    """`checked_num_classes`, asked once per client object (a metadata request and, for a
    conditional model, the probe), not before every request."""
    if not hasattr(client, "_kgan_num_classes"):
        client._kgan_num_classes = checked_num_classes(client)
    return client._kgan_num_classes


def _chunks(rows: np.ndarray, labels, truncation):
    """(rows, labels, truncation) per request of at most MAX_BATCH_SIZE rows; truncation
    is checked for the whole batch first (one number becomes one per row)."""
    if truncation is not None:
        truncation = check_truncation(truncation, len(rows))
    for start in range(0, len(rows), MAX_BATCH_SIZE):
        part = slice(start, start + MAX_BATCH_SIZE)
        yield (rows[part], None if labels is None else labels[part],
               None if truncation is None else truncation[part])


def _request(inputs: dict, signature: str, labels, truncation) -> tuple[dict, str]:
    """Adds the optional inputs; a truncation moves the request to the truncated signature."""
    if labels is not None:
        inputs["label"] = labels
    if truncation is not None:
        inputs["truncation"] = truncation
        signature = TRUNCATED_SIGNATURES[signature]
    return inputs, signature


def labels_for_seeds(seeds, num_classes: int) -> np.ndarray:
    """The GAN's default labels for seeds (seed % num_classes), as `generate` uses."""
    return labels_from_seeds(seeds, num_classes)


def save_pngs(samples: Samples | list[bytes], out_dir: str, names: list[str] | None = None
              ) -> list[str]:
    """Writes one PNG per image (the server's PNG bytes when present; `samples` may be
    the list `generate_png` returns); returns the paths."""
    pngs = samples if isinstance(samples, list) else samples.png_bytes
    count = len(pngs) if pngs is not None else len(samples.images)
    os.makedirs(out_dir, exist_ok=True)
    names = names or [f"{i:04d}.png" for i in range(count)]
    paths = []
    for i, name in enumerate(names):
        path = os.path.join(out_dir, name)
        if pngs is not None:
            with open(path, "wb") as handle:
                handle.write(pngs[i])
        else:
            _pil_image(samples.images[i]).save(path)
        paths.append(path)
    return paths


def save_grid(images: np.ndarray, path: str, columns: int | None = None,
              padding: int = 0) -> str:
    """Tiles uint8 images [N, H, W, C] into one PNG, row-major (`padding` black pixels
    between and around them), and writes it."""
    grid = tile_grid(images, columns, padding)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _pil_image(grid).save(path)
    return path


def _pil_image(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
