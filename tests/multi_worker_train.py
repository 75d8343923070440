"""One worker of the two-process MultiWorkerMirroredStrategy test (run by test_distribute).

Reads TF_CONFIG from the environment, trains a tiny GAN for a few steps through
`kgan.distribute.setup(strategy="multi_worker")` and saves its final weights to argv[1].
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kgan  # noqa: E402


def main(out_path: str) -> None:
    env = kgan.distribute.setup(strategy="multi_worker", mixed_precision="float32")
    with env.strategy.scope():
        keras.utils.set_random_seed(0)
        g, d = kgan.networks.dcgan(8, 1, latent_dim=8, base_filters=4)
        gan = kgan.GAN(g, d, latent_dim=8, ema_decay=0.9)
        gan.compile(keras.optimizers.Adam(1e-2), keras.optimizers.Adam(1e-2), loss="hinge")
    images = np.random.default_rng(0).uniform(-1, 1, (32, 8, 8, 1)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices(images).batch(8, drop_remainder=True)
    history = gan.fit(data, epochs=2, verbose=0)
    weights = {f"weight_{i}": w for i, w in enumerate(gan.get_weights())}
    np.savez(
        out_path,
        replicas=env.num_replicas,
        g_steps=int(gan.g_optimizer.iterations.numpy()),
        d_loss=history.history["d_loss"][-1],
        **weights,
    )


if __name__ == "__main__":
    main(sys.argv[1])
