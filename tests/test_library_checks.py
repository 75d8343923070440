"""What a Keras user gets wrong with `kgan.GAN` in a plain `fit`, and the one clear error (or
warning) that says how to fix it, before any step runs; plus logs that stay true."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import LATENT, adam, image_batches, random_images, tiny_gan, tiny_networks

import kgan
from kgan.gan.backends import check_batch_split
from kgan.training.callbacks import NonFiniteGuard
from kgan.training.checkpointing import NonFiniteLossError


def _compiled(**gan_options) -> kgan.GAN:
    gan = tiny_gan(**gan_options)
    gan.compile(adam(), adam())
    return gan


@pytest.mark.parametrize("images, message", [
    (np.zeros([16, 8, 8, 1], np.uint8), "images of dtype uint8"),
    (random_images(16) * 127.5 + 127.5, "; the GAN trains on [-1, 1]"),
    (np.full([16, 8, 8, 1], np.nan, np.float32), "NaN or infinite"),
])
@pytest.mark.backends
def test_fit_refuses_arrays_outside_the_generators_range(images, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _compiled().fit(images, batch_size=8, epochs=1, verbose=0)


@pytest.mark.backends
def test_fit_warns_about_images_in_zero_one():
    with pytest.warns(UserWarning, match=r"scale them to \[-1, 1\] \(x \* 2 - 1\)"):
        _compiled().fit(random_images(16) * 0.5 + 0.5, batch_size=8, epochs=1, verbose=0)


@pytest.mark.parametrize("labels, message", [
    (np.array([0, 1, 2, 3] * 4), r"labels \[0, 3\]; a GAN with num_classes=3"),
    (np.array([-1, 0, 1, 2] * 4), r"labels \[-1, 2\]"),
    (np.eye(3, dtype=np.int32)[np.arange(16) % 3], "one-hot"),
    (np.linspace(0, 2, 16), r"labels \[0.0, 2.0\]; .* integer class indices"),
])
@pytest.mark.backends
def test_fit_refuses_labels_that_are_not_class_indices_in_range(labels, message):
    gan = _compiled(num_classes=3)
    with pytest.raises(ValueError, match=message):
        gan.fit(random_images(16), labels, batch_size=8, epochs=1, verbose=0)


@pytest.mark.backends
def test_evaluate_refuses_what_fit_refuses():
    """evaluate's out-of-range labels were an opaque graph error on TensorFlow and NaN
    losses on JAX; labels given to an unconditional GAN were silently ignored."""
    conditional = _compiled(num_classes=3)
    with pytest.raises(ValueError, match=r"evaluate\(\) got labels \[5, 7\]; a GAN with "
                                         "num_classes=3"):
        conditional.evaluate(random_images(16), np.arange(16) % 3 + 5, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"evaluate\(\) got images of dtype uint8"):
        conditional.evaluate(np.zeros([16, 8, 8, 1], np.uint8), np.zeros(16, int), verbose=0)
    for method in ("fit", "evaluate"):
        with pytest.raises(ValueError, match=rf"{method}\(\) got labels, but this GAN is "
                                             "unconditional"):
            getattr(_compiled(), method)(random_images(16), np.zeros(16, int), batch_size=8,
                                         verbose=0)


@pytest.mark.backends
def test_whole_float_labels_are_class_indices():
    gan = _compiled(num_classes=3)
    gan.fit(random_images(16), (np.arange(16) % 3).astype("float32"), batch_size=8, epochs=1,
            verbose=0)


@pytest.mark.backends
def test_common_mistakes_get_one_clear_error():
    gan = _compiled()
    with pytest.raises(ValueError, match="got a tuple or list as x"):
        gan.fit((random_images(16), np.zeros(16, int)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="single images of shape"):
        gan.fit(tf.data.Dataset.from_tensor_slices(random_images(16)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="sample_weight, which a GAN's losses do not take"):
        gan.fit(random_images(16), sample_weight=np.ones(16), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="generate\\(\\) takes a number of images"):
        gan.generate(4.0)
    optimizer = adam()
    with pytest.raises(ValueError, match="the same optimizer object"):
        tiny_gan().compile(optimizer, optimizer)
    generator, _ = tiny_networks()
    two_logits = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                   keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"outputs shape \(2,\) per image"):
        kgan.GAN(generator, two_logits, latent_dim=LATENT)
    no_input = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="has no known inputs"):
        kgan.GAN(generator, no_input, latent_dim=LATENT)


@pytest.mark.backends
def test_recompiling_drops_penalties_and_evaluate_logs_only_what_it_computes():
    gan = tiny_gan()
    gan.compile(adam(), adam(), r1_gamma=1.0)
    gan.compile(adam(), adam())
    history = gan.fit(image_batches(16), epochs=1, verbose=0,
                      validation_data=image_batches(16))
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake", "val_d_loss",
                                    "val_g_loss", "val_d_real", "val_d_fake"}


@pytest.mark.backends
def test_last_values_survive_validation():
    """aug_p is the augmentation's p at the epoch's end, also when validation runs
    (TensorFlow logged the tracker's variable itself, which validation reset to 0)."""
    gan = tiny_gan(augment=kgan.augment.Augment("translation", initial_probability=0.4,
                                                 adaptive=False))
    gan.compile(adam(), adam())
    history = gan.fit(image_batches(16), epochs=1, verbose=0,
                      validation_data=image_batches(16))
    assert history.history["aug_p"] == [pytest.approx(0.4)]


@pytest.mark.backends
def test_non_finite_guard_stops_a_plain_fit_before_checkpoints(tmp_path):
    images = random_images(16)
    images[9] = np.nan  # the second batch of 8
    gan = _compiled()
    checkpoint = keras.callbacks.ModelCheckpoint(str(tmp_path / "gan.keras"))
    with warnings.catch_warnings(), pytest.raises(NonFiniteLossError, match="at step 2;"):
        warnings.simplefilter("ignore")
        gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=2, verbose=0,
                callbacks=[NonFiniteGuard(), checkpoint])
    assert not (tmp_path / "gan.keras").exists()


def test_arrays_whose_last_batch_cannot_split_across_replicas_are_refused():
    with pytest.raises(ValueError, match="leave a last batch of 1, which does not split "
                                         r"across 2 replicas: drop the remainder \(x\[:48\]\)"):
        check_batch_split(random_images(49), 16, 2, "replicas")
    check_batch_split(random_images(50), 16, 2, "replicas")  # a last batch of 2 splits


def test_plain_batch_norm_under_two_replicas_warns(two_replicas):
    with two_replicas.scope():
        generator, _ = tiny_networks()
        plain = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3),
                                  keras.layers.BatchNormalization(name="plain_bn"),
                                  keras.layers.Flatten(), keras.layers.Dense(1)])
        gan = kgan.GAN(generator, plain, latent_dim=LATENT)
        with pytest.warns(UserWarning, match="plain_bn: batch norm without synchronized=True"):
            gan.compile(adam(), adam())


@pytest.mark.backends
def test_training_warns_nothing_about_int64():
    """JAX without x64 stores int64 as int32 and warns at every read: the step counter
    is int32 there (2**31 steps are out of reach), so a plain fit prints no warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gan = _compiled()
        gan.fit(image_batches(16), epochs=1, verbose=0)
        gan.generate(2, seed=2**33)
    assert not [w for w in caught if "int64" in str(w.message)]
