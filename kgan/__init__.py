"""kgan: train GANs with Keras 3 on TensorFlow or JAX; serve the generator with TF Serving.

Example:
    >>> import keras, kgan
    >>> g, d = kgan.networks.get("dcgan")(resolution=32, channels=1, latent_dim=64)
    >>> gan = kgan.GAN(g, d, latent_dim=64)
    >>> gan.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4), loss="hinge")
    >>> gan.fit(kgan.data.load("digits", resolution=32, channels=1, batch_size=64), epochs=10)
    >>> kgan.export_generator(gan, "exports", model_name="digits")

Submodules load on first use (PEP 562), so `kgan-train --help`, config validation and
the REST client import neither TensorFlow nor JAX. The Keras backend is the user's
(`KERAS_BACKEND`, TensorFlow when unset). kgan's Keras serializables (`kgan>GAN`, the
networks' layers, schedules) are registered as soon as Keras is loaded, so
`keras.models.load_model("gan.keras")` works after a plain `import kgan`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
if os.environ["KERAS_BACKEND"] == "jax":
    # On JAX, kgan runs TensorFlow beside it on the CPU (tf.data, the checkpoint mirror,
    # summaries); a CUDA build of TensorFlow would map most of each GPU's memory at its
    # first op, next to JAX's own 75 %. kgan-train also hides the GPUs from it.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

from kgan import _lazy, _serializables  # noqa: E402

__version__ = "0.4.0"

# Public name -> "module:attribute", or "module" for the module itself.
_NAMES = {
    "GAN": "kgan.gan.model:GAN",
    "export_generator": "kgan.serving.export:export_generator",
    "augment": "kgan.gan.augment",
    "callbacks": "kgan.training.callbacks",
    "data": "kgan.data",
    "distribute": "kgan.training.distribute",
    "evaluation": "kgan.evaluation",
    "features": "kgan.evaluation.features",
    "gan": "kgan.gan",
    "losses": "kgan.gan.losses",
    "metrics": "kgan.evaluation.metrics",
    "networks": "kgan.networks",
    "sampling": "kgan.gan.sampling",
    "schedules": "kgan.gan.schedules",
    "serving": "kgan.serving",
    "training": "kgan.training",
}
__all__ = sorted(_NAMES)
__getattr__ = _lazy.attributes(__name__, _NAMES)


def __dir__():
    return sorted([*globals(), *_NAMES])


_serializables.register_when_keras_loads()
