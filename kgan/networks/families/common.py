"""Layers shared by the network families."""

from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="kgan")
class SyncBatchNormalization(layers.BatchNormalization):
    """Batch norm over the *global* batch (design.md rule 2) on every backend.

    On TensorFlow the statistics are all-reduced across `tf.distribute` replicas
    (`synchronized=True`); on JAX the data-parallel step is one SPMD program over the global
    batch, so plain batch norm already sees it (Keras's `synchronized` exists only on
    TensorFlow). The choice is made when the layer is built, so a `.keras` file saved on
    one backend loads on the other.
    """

    def __init__(self, **kwargs):
        kwargs.pop("synchronized", None)
        super().__init__(synchronized=keras.backend.backend() == "tensorflow", **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("synchronized", None)
        return config
