"""kgan: train GANs with Keras 3 on TensorFlow; serve the generator with TF Serving.

Example:
    >>> import keras, kgan
    >>> g, d = kgan.networks.get("dcgan")(resolution=32, channels=1, latent_dim=64)
    >>> gan = kgan.GAN(g, d, latent_dim=64)
    >>> gan.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4), loss="hinge")
    >>> gan.fit(kgan.data.load("digits", resolution=32, channels=1, batch_size=64), epochs=10)
    >>> kgan.export_generator(gan, "exports", model_name="digits")

Submodules load on first use (PEP 562), so `kgan-train --help`, config validation and
the REST client never import TensorFlow. kgan's Keras serializables (`kgan>GAN`, the
networks' layers, schedules) are registered as soon as Keras is loaded, so
`keras.models.load_model("gan.keras")` works after a plain `import kgan`.
"""

import importlib
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kgan import _serializables  # noqa: E402

__version__ = "0.2.0"

# Public name -> (module, attribute or None for the module itself).
_LAZY = {
    "GAN": ("kgan.gan", "GAN"),
    "export_generator": ("kgan.serving.export", "export_generator"),
    "augment": ("kgan.augment", None),
    "callbacks": ("kgan.training.callbacks", None),
    "data": ("kgan.data", None),
    "distribute": ("kgan.training.distribute", None),
    "evaluation": ("kgan.evaluation", None),
    "features": ("kgan.evaluation.features", None),
    "losses": ("kgan.losses", None),
    "metrics": ("kgan.evaluation.metrics", None),
    "networks": ("kgan.networks", None),
    "sampling": ("kgan.sampling", None),
    "schedules": ("kgan.schedules", None),
    "serving": ("kgan.serving", None),
    "training": ("kgan.training", None),
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'kgan' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    value = importlib.import_module(module_name)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])


_serializables.register_when_keras_loads()
