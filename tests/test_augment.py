"""kgan.augment: gradients reach G, draws are seeded, ADA's p adapts and replicas agree."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgan import GAN, data, networks
from kgan.augment import Augment

SEED = tf.constant([3, 9], tf.int64)


def _images(channels=3, batch=4, size=16):
    return tf.random.stateless_uniform([batch, size, size, channels], [0, 1], -1.0, 1.0)


def test_gradient_of_d_augment_g_reaches_generator_weights():
    generator, discriminator = networks.dcgan(
        resolution=16, channels=3, latent_dim=8, base_filters=8, max_filters=16
    )
    augment = Augment(initial_probability=1.0, adaptive=False)
    z = tf.random.stateless_normal([4, 8], [1, 2])
    with tf.GradientTape() as tape:
        logits = discriminator(augment(generator(z, training=True), seed=SEED), training=True)
        loss = tf.reduce_mean(logits)
    grads = tape.gradient(loss, generator.trainable_weights)
    assert all(g is not None for g in grads)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0.0


@pytest.mark.parametrize("policy", ["color", "translation", "cutout"])
def test_each_op_passes_finite_gradients(policy):
    augment = Augment(policy=policy, initial_probability=1.0, adaptive=False)
    images = _images()
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = augment(images, seed=SEED)
        loss = tf.reduce_sum(out * tf.random.stateless_normal(out.shape, [5, 5]))
    grad = tape.gradient(loss, images).numpy()
    assert np.isfinite(grad).all() and (grad != 0).mean() > 0.5
    assert not np.allclose(out.numpy(), images.numpy())


def test_seeded_eager_and_graph_agree_and_seeds_differ():
    augment = Augment(initial_probability=1.0, adaptive=False)
    images = _images()
    eager = augment(images, seed=SEED).numpy()
    graph = tf.function(lambda x, s: augment(x, seed=s))(images, SEED).numpy()
    np.testing.assert_array_equal(eager, graph)
    np.testing.assert_array_equal(eager, augment(images, seed=SEED).numpy())
    other = augment(images, seed=tf.constant([3, 10], tf.int64)).numpy()
    assert not np.allclose(eager, other)
    assert eager.shape == images.shape and eager.dtype == np.float32


def test_zero_probability_and_inference_are_identity():
    images = _images(channels=1)
    augment = Augment()  # ADA starts at p = 0
    np.testing.assert_array_equal(augment(images, seed=SEED).numpy(), images.numpy())
    full = Augment(initial_probability=1.0, adaptive=False)
    np.testing.assert_array_equal(full(images, training=False).numpy(), images.numpy())
    assert full(images).shape == images.shape  # unseeded standalone call, grayscale


def test_p_rises_when_d_is_overconfident_on_real_and_falls_otherwise():
    augment = Augment(initial_probability=0.5, interval=2, speed=0.1)
    augment.update(tf.ones([8, 1]))
    assert float(augment.probability) == pytest.approx(0.5)  # waits for `interval` calls
    augment.update(tf.ones([8, 1]))
    assert float(augment.probability) == pytest.approx(0.6)
    assert float(augment.real_sign) == pytest.approx(1.0)
    for _ in range(4):  # r_t = 0: D is unsure on real -> less augmentation
        augment.update(tf.constant([[1.0], [-1.0]]))
    assert float(augment.probability) == pytest.approx(0.4)
    for _ in range(40):
        augment.update(-tf.ones([4, 1]))
    assert float(augment.probability) == 0.0  # clipped
    assert Augment(adaptive=False).update(tf.ones([4, 1])).numpy() == 0.0


def test_replicas_agree_on_p_from_all_reduced_statistics(two_replicas):
    strategy = two_replicas
    with strategy.scope():
        augment = Augment(initial_probability=0.5, interval=1, speed=0.1)

    @tf.function
    def step():
        def replica_fn():
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            # Replica 0 alone would say r_t = 1 (raise p); globally r_t = 0.25 (lower p).
            mixed = tf.constant([[-1.0], [-1.0], [-1.0], [1.0]])
            return augment.update(tf.where(replica == 0, tf.ones([4, 1]), mixed))

        return strategy.run(replica_fn)

    per_replica = strategy.experimental_local_results(step())
    assert [float(p) for p in per_replica] == pytest.approx([0.4, 0.4])
    assert [float(v) for v in augment.probability.value.values] == pytest.approx([0.4, 0.4])


def test_config_round_trip_and_probability_is_saved_state(tmp_path):
    augment = Augment(policy="color,cutout", initial_probability=0.25, target=0.7, seed=3)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(augment))
    assert isinstance(clone, Augment)
    assert clone.get_config() == augment.get_config()
    assert clone.policy == ("color", "cutout")
    augment.probability.assign(0.8)
    path = tf.train.Checkpoint(augment=augment).save(str(tmp_path / "ckpt"))
    restored = Augment()
    tf.train.Checkpoint(augment=restored).restore(path).assert_existing_objects_matched()
    assert float(restored.probability) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "kwargs",
    [{"policy": "colour"}, {"initial_probability": 1.5}, {"interval": 0}, {"cutout_ratio": 1.0}],
)
def test_bad_arguments_are_clear_errors(kwargs):
    with pytest.raises(ValueError, match="colour|initial_probability|interval|cutout_ratio"):
        Augment(**kwargs)


def test_keras_file_round_trip_keeps_probability(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)), Augment(initial_probability=0.3)])
    model.layers[0].probability.assign(0.55)
    model.save(tmp_path / "augment.keras")
    reloaded = keras.models.load_model(tmp_path / "augment.keras")
    assert isinstance(reloaded.layers[0], Augment)
    assert float(reloaded.layers[0].probability) == pytest.approx(0.55)


def test_gan_fit_with_augment_logs_aug_p():
    generator, discriminator = networks.dcgan(
        resolution=8, channels=1, latent_dim=8, base_filters=8, max_filters=16
    )
    augment = Augment(interval=1, speed=0.1)
    gan = GAN(generator, discriminator, latent_dim=8, augment=augment)
    gan.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4))
    dataset = data.load("digits", resolution=8, channels=1, batch_size=64).take(2)
    history = gan.fit(dataset, epochs=1, verbose=0).history
    assert history["aug_p"][-1] == pytest.approx(float(augment.probability))
    assert 0.0 <= float(augment.probability) <= 0.2 + 1e-6  # two adjustments of 0.1


def test_gan_with_augment_trains_under_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    g, d = networks.dcgan(8, 1, latent_dim=8, base_filters=4)
    gan = GAN(g, d, latent_dim=8, augment=Augment(initial_probability=0.5))
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    history = gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1]) and "aug_p" in history.history


def test_gan_with_augment_fits_under_a_mirrored_strategy(two_replicas):
    with two_replicas.scope():
        g, d = networks.dcgan(8, 1, latent_dim=8, base_filters=4)
        gan = GAN(g, d, latent_dim=8, augment=Augment(initial_probability=0.5))
        gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(8, drop_remainder=True)
    history = gan.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1])


def test_xla_refuses_translation_clearly_and_compiles_the_other_ops():
    g, d = networks.dcgan(8, 1, latent_dim=8, base_filters=4)
    translating = GAN(g, d, latent_dim=8, augment=Augment(("translation",)))
    with pytest.raises(ValueError, match="no XLA kernel"):
        translating.compile(keras.optimizers.Adam(), keras.optimizers.Adam(), jit_compile=True)
    g, d = networks.dcgan(8, 1, latent_dim=8, base_filters=4)
    gan = GAN(g, d, latent_dim=8, augment=Augment(("color", "cutout"), initial_probability=1.0))
    assert gan.augment.xla_compatible
    gan.compile(keras.optimizers.Adam(), keras.optimizers.Adam(), jit_compile=True)
    images = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype("float32")
    history = gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1])
