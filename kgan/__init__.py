"""kgan: train GANs with Keras 3 on TensorFlow; serve the generator with TF Serving.

Example:
    >>> import keras, kgan
    >>> g, d = kgan.networks.dcgan(resolution=32, channels=1, latent_dim=64)
    >>> gan = kgan.GAN(g, d, latent_dim=64)
    >>> gan.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4), loss="hinge")
    >>> gan.fit(kgan.data.load("digits", resolution=32, channels=1, batch_size=64), epochs=10)
    >>> kgan.export_generator(gan, "exports", model_name="digits")

Importing kgan registers its Keras serializables (`kgan>GAN`, `kgan>Augment`), so
`keras.models.load_model("gan.keras")` works after a plain `import kgan`.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kgan import (  # noqa: E402
    augment,
    callbacks,
    data,
    distribute,
    features,
    losses,
    metrics,
    networks,
    sampling,
)
from kgan.export import export_generator  # noqa: E402
from kgan.gan import GAN  # noqa: E402

__all__ = [
    "GAN",
    "augment",
    "callbacks",
    "data",
    "distribute",
    "export_generator",
    "features",
    "losses",
    "metrics",
    "networks",
    "sampling",
]
__version__ = "0.1.0"
