"""Layers shared by the network families."""

from __future__ import annotations

import keras
from keras import layers, ops


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


def class_affine(x, labels, gain, bias):
    """`gain[labels] * x + bias[labels]` per channel of NHWC `x`, from [classes, channels]
    tables: conditional batch norm's affine, and R3GAN's per-class block gains."""
    labels = ops.cast(labels, "int32")
    return (x * ops.take(gain, labels, axis=0)[:, None, None, :]
            + ops.take(bias, labels, axis=0)[:, None, None, :])


@keras.saving.register_keras_serializable(package="kgan")
class ConditionalBatchNormalization(layers.Layer):
    """Class-conditional batch norm: `gamma[y] * BN(x) + beta[y]`.

    The normalisation has no affine part of its own and is synchronized (global batch
    statistics across replicas); each class has its own gain (init 1) and bias (init 0).
    Call it on `[x, labels]` with int labels of shape [N].

    Args:
        num_classes: number of classes.
        momentum, epsilon: as `keras.layers.BatchNormalization`.
    """

    cross_sample = True  # batch statistics mix examples (kgan.gan.options)

    def __init__(self, num_classes: int, momentum: float = 0.99, epsilon: float = 1e-3,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        shape = input_shape[0]
        channels = shape[-1]
        self.norm = SyncBatchNormalization(
            momentum=self.momentum, epsilon=self.epsilon, center=False, scale=False,
            dtype=self.dtype_policy, name="norm")
        self.norm.build(shape)
        self.gamma = self.add_weight(shape=(self.num_classes, channels), initializer="ones",
                                     name="gamma")
        self.beta = self.add_weight(shape=(self.num_classes, channels), initializer="zeros",
                                    name="beta")

    def call(self, inputs, training=None):
        x, labels = inputs
        return class_affine(self.norm(x, training=training), labels, self.gamma, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "momentum": self.momentum, "epsilon": self.epsilon}
