"""The TF Serving side: export (signatures, warmup records), request limits, clients.

`kgan.serving.client` and `kgan.serving.limits` use NumPy and the standard library only
(gRPC needs `tensorflow-serving-api`); the export modules need TensorFlow.
"""

from kgan import _lazy

_NAMES = {
    "export_generator": "kgan.serving.export:export_generator",
    "ExportedGenerator": "kgan.serving.export:ExportedGenerator",
    "RestClient": "kgan.serving.client:RestClient",
    "GrpcClient": "kgan.serving.client:GrpcClient",
}
__all__ = sorted(_NAMES)
__getattr__ = _lazy.attributes(__name__, _NAMES)
