"""TF Serving warmup records: `assets.extra/tf_serving_warmup_requests`.

The server replays these `PredictionLog` records when it loads a version, before it
marks the version AVAILABLE, so the first user request does not pay for graph
initialisation. Each record is a real `PredictRequest` for one of our signatures.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from kgan.serving.limits import NUM_CLASSES_SIGNATURE, PNG_SIGNATURES, TRUNCATED_SIGNATURES
from kgan.serving.signatures import TRUNCATION_INFO, GeneratorSpec

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# One small and one larger batch: TF Serving caches per-shape work, and batching merges
# requests into sizes between these.
_WARMUP_BATCH_SIZES = (1, 8)


def warmup_requests(spec: GeneratorSpec, model_name: str) -> list:
    """Builds one PredictRequest per (signature, batch size), with valid inputs (the
    truncated signatures at the default truncation, when the export has them)."""
    from tensorflow_serving.apis import predict_pb2

    requests = []
    for batch in _WARMUP_BATCH_SIZES:
        seeds = np.arange(batch, dtype=np.int64)
        inputs = {
            "serving_default": {"z": np.zeros([batch, spec.latent_dim], np.float32)},
            "generate": {"seed": seeds},
        }
        if spec.style_based:
            psi = np.full(batch, TRUNCATION_INFO["default"], np.float32)
            inputs.update({TRUNCATED_SIGNATURES[name]: {**inputs[name], "truncation": psi}
                           for name in ("serving_default", "generate")})
        if spec.conditional:
            for tensors in inputs.values():
                tensors["label"] = (seeds % spec.num_classes).astype(np.int32)
            inputs[NUM_CLASSES_SIGNATURE] = {"seed": seeds}
        inputs.update({png: dict(inputs[name]) for name, png in PNG_SIGNATURES.items()
                       if name in inputs})
        for signature, tensors in inputs.items():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            for key, value in tensors.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            requests.append(request)
    return requests


def write_warmup(version_dir: str, spec: GeneratorSpec, model_name: str) -> str:
    """Writes the warmup TFRecord into a SavedModel directory; returns its path."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(version_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for request in warmup_requests(spec, model_name):
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def read_warmup(version_dir: str) -> list:
    """Parses the warmup file back into PredictionLog messages (what the server does)."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(os.path.join(version_dir, WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs
