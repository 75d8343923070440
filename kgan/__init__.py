"""kgan: train GANs with Keras 3 on TensorFlow; serve the generator with TF Serving."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from kgan import distribute, losses, networks, sampling  # noqa: E402
from kgan.gan import GAN  # noqa: E402

__all__ = ["GAN", "distribute", "losses", "networks", "sampling"]
__version__ = "0.1.0"
