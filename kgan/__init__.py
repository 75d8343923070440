"""kgan: train GANs with Keras 3 on TensorFlow; serve the generator with TF Serving.

Example:
    >>> import keras, kgan
    >>> g, d = kgan.networks.dcgan(resolution=32, channels=1, latent_dim=64)
    >>> gan = kgan.GAN(g, d, latent_dim=64)
    >>> gan.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4), loss="hinge")
    >>> gan.fit(kgan.data.load("digits", resolution=32, channels=1, batch_size=64), epochs=10)
    >>> kgan.export_generator(gan, "exports", model_name="digits")

Submodules load on first use (PEP 562), so `import kgan` is quick and command lines can
configure TensorFlow's logging before TensorFlow starts.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_SUBMODULES = (
    "augment", "callbacks", "data", "distribute", "features", "losses", "metrics",
    "networks", "sampling",
)
_ATTRIBUTES = {"GAN": "kgan.gan", "export_generator": "kgan.export"}

__all__ = ["GAN", "export_generator", *_SUBMODULES]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _SUBMODULES:
        value = importlib.import_module(f"kgan.{name}")
    elif name in _ATTRIBUTES:
        value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
    else:
        raise AttributeError(f"module 'kgan' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
