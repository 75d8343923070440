"""Loopback stand-ins for tensorflow_model_server, built on an exported SavedModel.

The real server is not installable here, so the tests reproduce the parts of it our
export and clients rely on:
- `run_session` (also `python serving_fakes.py SPEC.json`): the server's C++ path, a
  TF1 Session + SavedModel loader with tag "serve", feeding and fetching the tensor
  names listed in each signature_def, and replaying the warmup file. Run it in a fresh
  process so nothing from the exporting process (Keras objects, traced functions) helps.
- `RestServer` / `GrpcServer`: the REST API (status, metadata, :predict in row and
  columnar format with b64 binaries) and PredictionService/ModelService over gRPC, with
  the server's error shapes ({"error": ...}, 404 for unknown models, NOT_FOUND, ...).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import tensorflow as tf


def _signature_defs(path: str):
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as handle:
        saved.ParseFromString(handle.read())
    return saved.meta_graphs[0].signature_def


def _type_name(enum: int) -> str:
    """TF's DataTypeString ("float", "double"), the words the server's errors use."""
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(enum)[3:].lower()


class Backend:
    """One model version: runs signatures the way the server does and fails like it.
    `hide` names signatures to leave out, as an older export lacks them."""

    def __init__(self, name: str, version: int, path: str, labels: dict[str, int],
                 hide: tuple[str, ...] = ()):
        self.name, self.version, self.labels, self.path = name, version, labels, path
        self.signature_defs = {key: value for key, value in _signature_defs(path).items()
                               if key not in hide}
        self._loaded = tf.saved_model.load(path)

    def resolve(self, name: str, version: str | None, label: str | None) -> None:
        wanted = self.labels.get(label) if label else int(version or self.version)
        if name != self.name or wanted != self.version:
            what = f"label {label}" if label else f"version {version or 'Latest'}"
            raise LookupError(f"Servable not found for request: {what} of {name}")

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if signature not in self.signature_defs:
            raise ValueError(f'Serving signature name: "{signature}" not found in '
                             "signature def")
        spec = self.signature_defs[signature]
        if set(inputs) != set(spec.inputs):
            raise ValueError(f"input size does not match signature: {len(inputs)}!="
                             f"{len(spec.inputs)} len({sorted(inputs)}) != "
                             f"len({sorted(spec.inputs)})")
        for key, value in inputs.items():
            want = tf.dtypes.as_dtype(spec.inputs[key].dtype)
            if value.dtype != want.as_numpy_dtype:
                got = tf.dtypes.as_dtype(value.dtype).as_datatype_enum
                raise ValueError(f"Expects arg[{key}] to be {_type_name(want.as_datatype_enum)}"
                                 f" but {_type_name(got)} is provided")
        outputs = self._loaded.signatures[signature](
            **{key: tf.constant(value) for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}


# ------------------------------------------------------------------------------ REST
_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)"
                    r"|/labels/(?P<label>[^/:]+))?(?P<verb>/metadata|:predict)?$")


def _columns_from_request(body: dict, spec) -> dict[str, np.ndarray]:
    """Reads "instances" (row) or "inputs" (columnar), decoding {"b64": ...} values."""
    if ("instances" in body) == ("inputs" in body):
        raise ValueError("Missing 'inputs' or 'instances' key, or both given")
    if "instances" in body:
        rows = body["instances"]
        if not rows or not all(isinstance(row, dict) for row in rows):
            raise ValueError("instances must be a non-empty list of named objects")
        columns = {key: [row[key] for row in rows] for key in rows[0]}
    else:
        columns = body["inputs"]
        if not isinstance(columns, dict):
            raise ValueError("inputs must be an object of named tensors")
    arrays = {}
    for key, value in columns.items():
        if key not in spec.inputs:
            raise ValueError(f"JSON key {key} is not an input of the signature")
        if value and isinstance(value[0], dict):
            arrays[key] = np.array([base64.b64decode(v["b64"]) for v in value], dtype=object)
        else:
            dtype = tf.dtypes.as_dtype(spec.inputs[key].dtype)
            _check_json_numbers(value, dtype)
            arrays[key] = np.asarray(value, dtype.as_numpy_dtype)
    return arrays


def _check_json_numbers(value, dtype: tf.dtypes.DType) -> None:
    """Refuses what the server's JSON decoder refuses (tensorflow_serving/util/
    json_tensor.cc, AddValueToTensor): an integer input takes only JSON integers in its
    range (1.5, 1.0 and "3" are errors, never rounded), a float input only numbers."""
    if isinstance(value, list):
        for item in value:
            _check_json_numbers(item, dtype)
        return
    whole = isinstance(value, int) and not isinstance(value, bool)
    if dtype.is_integer:
        fits = whole and dtype.min <= value <= dtype.max
    else:
        fits = whole or isinstance(value, float)
    if not fits:
        kind = (str(value) if isinstance(value, bool) else "Number" if isinstance(
            value, int | float) else {str: "String", dict: "Object"}.get(type(value), "Null"))
        raise ValueError(f"JSON Value: {json.dumps(value)} Type: {kind} is not of expected "
                         f"type: {_type_name(dtype.as_datatype_enum)}")


def _json_value(name: str, value: np.ndarray):
    if name.endswith("_bytes"):
        return [{"b64": base64.b64encode(item).decode()} for item in value]
    return value.tolist()


def _response(outputs: dict[str, np.ndarray], row: bool) -> dict:
    encoded = {name: _json_value(name, value) for name, value in outputs.items()}
    if len(encoded) == 1:
        (value,) = encoded.values()
        return {"predictions": value} if row else {"outputs": value}
    if not row:
        return {"outputs": encoded}
    size = len(next(iter(encoded.values())))
    return {"predictions": [{k: v[i] for k, v in encoded.items()} for i in range(size)]}


class _Handler(BaseHTTPRequestHandler):
    backend: Backend
    requests: list
    replies: list

    def log_message(self, *args):  # keep pytest output quiet
        pass

    def do_GET(self):
        self._serve(None)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self._serve(self.rfile.read(length))

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        if self.command == "POST":
            self.replies.append(len(data))
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, raw: bytes | None):
        match = _ROUTE.match(self.path)
        if not match:
            return self._send(404, {"error": f"Malformed request: {self.path}"})
        try:
            self.backend.resolve(match["name"], match["version"], match["label"])
        except LookupError as error:
            return self._send(404, {"error": str(error)})
        try:
            self._send(200, self._answer(match["verb"], raw))
        except (ValueError, KeyError, tf.errors.OpError) as error:
            self._send(400, {"error": getattr(error, "message", None) or str(error)})

    def _answer(self, verb: str | None, raw: bytes | None) -> dict:
        backend = self.backend
        if verb is None:
            return {"model_version_status": [{"version": str(backend.version),
                                              "state": "AVAILABLE",
                                              "status": {"error_code": "OK",
                                                         "error_message": ""}}]}
        if verb == "/metadata":
            return _metadata_dict(backend)
        body = json.loads(raw)
        self.requests.append(body)
        signature = body.get("signature_name", "serving_default")
        spec = backend.signature_defs.get(signature)
        if spec is None:
            backend.run(signature, {})  # raises the server's "not found" message
        outputs = backend.run(signature, _columns_from_request(body, spec))
        return _response(outputs, row="instances" in body)


def _metadata_dict(backend: Backend) -> dict:
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2

    signatures = get_model_metadata_pb2.SignatureDefMap()
    for key, value in backend.signature_defs.items():
        signatures.signature_def[key].CopyFrom(value)
    return {"model_spec": {"name": backend.name, "signature_name": "",
                           "version": str(backend.version)},
            "metadata": {"signature_def": json_format.MessageToDict(
                signatures, preserving_proto_field_name=True)}}


class _LoopbackHTTP:
    """An HTTP server on 127.0.0.1 (random port) in a thread, as a context manager; `.url`."""

    def _serve(self, handler) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()


class RestServer(_LoopbackHTTP):
    """A TF Serving REST API; `.url`, `.requests` (bodies) and `.replies` (their sizes in
    bytes)."""

    def __init__(self, backend: Backend):
        self.requests: list = []
        self.replies: list = []
        self._serve(type("Handler", (_Handler,), {"backend": backend, "requests": self.requests,
                                                  "replies": self.replies}))


class FlakyProxy(_LoopbackHTTP):
    """A proxy in front of a REST server that fails its :predict calls, as an overloaded
    server or a gateway does: `status` answers with that HTTP status and a plain-text
    body (a proxy's error page), `delay` waits that many seconds first. GETs (status,
    metadata) pass through; `.url` is the proxy's root."""

    def __init__(self, upstream: str, status: int | None = None, delay: float = 0.0):
        import time
        import urllib.request

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                with urllib.request.urlopen(upstream + self.path) as answer:
                    self._send(200, answer.read(), "application/json")

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay)
                if status is not None:
                    self._send(status, b"<html>Bad Gateway</html>", "text/html")

            def _send(self, code, data, kind):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._serve(Handler)


# ------------------------------------------------------------------------------ gRPC
class GrpcServer:
    """PredictionService + ModelService on 127.0.0.1 (random port); `.target`."""

    def __init__(self, backend: Backend):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc as model_grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc as predict_grpc

        self.backend = backend
        servicer = _make_servicer(backend, predict_grpc, model_grpc, grpc)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        predict_grpc.add_PredictionServiceServicer_to_server(servicer, self._server)
        model_grpc.add_ModelServiceServicer_to_server(servicer, self._server)
        self.target = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"

    def __enter__(self):
        self._server.start()
        return self

    def __exit__(self, *exc):
        self._server.stop(grace=None)


def _make_servicer(backend, predict_grpc, model_grpc, grpc):
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        predict_pb2,
    )

    def resolve(spec, context):
        version = str(spec.version.value) if spec.HasField("version") else None
        try:
            backend.resolve(spec.name, version, spec.version_label or None)
        except LookupError as error:
            context.abort(grpc.StatusCode.NOT_FOUND, str(error))

    class Servicer(predict_grpc.PredictionServiceServicer, model_grpc.ModelServiceServicer):
        def Predict(self, request, context):
            resolve(request.model_spec, context)
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            try:
                outputs = backend.run(request.model_spec.signature_name or "serving_default",
                                      inputs)
            except (ValueError, tf.errors.OpError) as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              getattr(error, "message", None) or str(error))
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            response.model_spec.version.value = backend.version
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

        def GetModelMetadata(self, request, context):
            resolve(request.model_spec, context)
            signatures = get_model_metadata_pb2.SignatureDefMap()
            for key, value in backend.signature_defs.items():
                signatures.signature_def[key].CopyFrom(value)
            response = get_model_metadata_pb2.GetModelMetadataResponse()
            response.model_spec.name = backend.name
            response.model_spec.version.value = backend.version
            response.metadata["signature_def"].Pack(signatures)
            return response

        def GetModelStatus(self, request, context):
            resolve(request.model_spec, context)
            response = get_model_status_pb2.GetModelStatusResponse()
            status = response.model_version_status.add()
            status.version = backend.version
            status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
            return response

    return Servicer()


# ------------------------------------------------------------------- a run in progress
def run_in_progress(root, steps_done: int = 3, steps_per_epoch: int = 5):
    """A kgan-train run directory stopped mid-way, as a long run is while it trains:
    `config.json` (a tiny conditional digits run) and a backup checkpoint at step
    `steps_done`, no final.keras. Returns (the GAN as saved, the run directory); its
    generator's weights are perturbed, so only a restored checkpoint reproduces them."""
    import keras

    from kgan.training.checkpointing import RunState
    from kgan.training.config import TrainConfig
    from kgan.training.recipe import build_gan
    from kgan.training.rundir import RunPaths, write_run_dir

    run_dir = os.path.join(str(root), "digits")
    config = TrainConfig.from_preset(
        "digits", resolution=8, latent_dim=8, network_args={"base_filters": 4}, epochs=2,
        mixed_precision="float32", backend=keras.backend.backend(), run_dir=run_dir)
    write_run_dir(config, RunPaths(run_dir))
    gan = build_gan(config, 10, steps_per_epoch=steps_per_epoch)
    state = RunState(gan, run_dir, steps_per_epoch)
    noise = np.random.default_rng(0)
    for variable in gan.sampling_generator.trainable_variables:  # away from a fresh init
        variable.assign(variable + noise.normal(0, 0.1, variable.shape).astype("float32"))
    gan.step_counter.assign(steps_done)
    state.save()
    return gan, run_dir


# ------------------------------------------------------------------------ TF1 session
def run_session(spec: dict) -> dict:
    """Loads each export with tf.compat.v1 and runs its requests by tensor name.

    `spec`: {"exports": {tag: path}, "inputs": npz path with "<tag>/<signature>/<input>"
    arrays, "outputs": npz path to write "<tag>/<signature>/<output>" arrays,
    "bad": {tag: {case: {"signature": s, "inputs": {...}}}}}. Returns
    {tag: {"warmup": [signatures run], "errors": {case: message}}}.
    """
    from tensorflow_serving.apis import prediction_log_pb2

    given = dict(np.load(spec["inputs"], allow_pickle=True))
    results, fetched = {}, {}
    for tag, path in spec["exports"].items():
        with tf.Graph().as_default(), tf.compat.v1.Session() as session:
            meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
            signatures = meta.signature_def

            def run(signature, inputs, signatures=signatures, session=session):
                sig = signatures[signature]
                feed = {sig.inputs[k].name: v for k, v in inputs.items()}
                fetch = {k: v.name for k, v in sig.outputs.items()}
                return session.run(fetch, feed)

            for signature in signatures:
                prefix = f"{tag}/{signature}/"
                inputs = {k[len(prefix):]: v for k, v in given.items() if k.startswith(prefix)}
                for key, value in run(signature, inputs).items():
                    fetched[prefix + key] = value
            warmed = []
            warmup = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
            for record in tf.compat.v1.io.tf_record_iterator(warmup):
                request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
                run(request.model_spec.signature_name,
                    {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
                warmed.append(request.model_spec.signature_name)
            errors = {}
            for case, bad in spec.get("bad", {}).get(tag, {}).items():
                try:
                    run(bad["signature"], {k: np.asarray(v[0], v[1])
                                           for k, v in bad["inputs"].items()})
                    errors[case] = None
                except tf.errors.InvalidArgumentError as error:
                    errors[case] = error.message
            results[tag] = {"warmup": warmed, "errors": errors}
    np.savez(spec["outputs"], **fetched)
    return results


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        print(json.dumps(run_session(json.load(handle))))
