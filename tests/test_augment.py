"""kgan.augment: gradients reach G, draws are seeded and global, ADA's p adapts, replicas
agree, translation and cutout equal keras-cv's and compile with XLA."""

import keras
import keras_cv
import numpy as np
import pytest
import tensorflow as tf
from harness import tiny_networks

from kgan import GAN, data
from kgan.gan.augment import Augment, cutout, translate
from kgan.gan.backends import tensorflow_random as stateless

SEED = tf.constant([3, 9], tf.int64)
FULL = "color,translation,cutout"


def _images(channels=3, batch=4, size=16):
    return tf.random.stateless_uniform([batch, size, size, channels], [0, 1], -1.0, 1.0)


def test_gradient_of_d_augment_g_reaches_generator_weights():
    generator, discriminator = tiny_networks("dcgan", channels=3, resolution=16,
                                             base_filters=8, max_filters=16)
    augment = Augment(initial_probability=1.0, adaptive=False)
    z = tf.random.stateless_normal([4, 8], [1, 2])
    with tf.GradientTape() as tape:
        logits = discriminator(augment(generator(z, training=True), seed=SEED), training=True)
        loss = tf.reduce_mean(logits)
    grads = tape.gradient(loss, generator.trainable_weights)
    assert all(g is not None for g in grads)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0.0


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "blit", "geom",
                                    "ada_color", "bgc"])
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
    np.testing.assert_allclose(eager, graph, atol=1e-6)  # a graph may fuse the arithmetic
    np.testing.assert_array_equal(eager, augment(images, seed=SEED).numpy())  # same run
    other = augment(images, seed=tf.constant([3, 10], tf.int64)).numpy()
    assert not np.allclose(eager, other)
    assert eager.shape == images.shape and eager.dtype == np.float32


@pytest.mark.parametrize("policy, hit_rate", [
    ("cutout", 0.6), ("cutout:0.5", 0.3),  # p times the group's multiplier
    ("color", 1 - 0.4 ** 3),  # brightness, saturation, contrast: one gate each
    ("translation", 0.6 * (1 - 1 / 25)),  # shifts in [-2, 2]^2 at 16 px; (0, 0) moves nothing
])
def test_each_image_is_augmented_with_probability_p(policy, hit_rate):
    augment = Augment(policy, initial_probability=0.6, adaptive=False)
    images = tf.random.stateless_uniform([2000, 16, 16, 3], [1, 2], 0.1, 1.0)  # no zeros
    out = augment(images, seed=SEED).numpy()
    hit = (out != images.numpy()).reshape(len(out), -1).any(axis=1).mean()
    assert hit == pytest.approx(hit_rate, abs=0.04)


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


@pytest.mark.parametrize("batch", [8, 32])
def test_ada_moves_p_by_images_seen_over_kimg_whatever_the_batch(batch):
    """stylegan2-ada-pytorch: adjust = sign(r_t - target) * batch * interval / (kimg * 1000)."""
    augment = Augment(initial_probability=0.5, interval=4, kimg=0.5)
    for _ in range(4):
        augment.update(tf.ones([batch, 1]))
    assert float(augment.probability) == pytest.approx(0.5 + batch * 4 / 500)
    default = Augment()
    for _ in range(8):  # two adjustments at batch 32: 2 x 128 / 500k
        default.update(tf.ones([32, 1]))
    assert float(default.probability) == pytest.approx(2 * 128 / 500_000)


def test_a_layer_saved_with_a_fixed_speed_keeps_it():
    """Augment layers saved by kgan 0.3.0 carry `speed=0.005` and no `kimg`."""
    config = Augment().get_config()
    del config["kimg"]
    old = Augment.from_config({**config, "speed": 0.005})
    for _ in range(4):
        old.update(tf.ones([64, 1]))
    assert float(old.probability) == pytest.approx(0.005)


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
    [{"policy": "colour"}, {"initial_probability": 1.5}, {"interval": 0}, {"cutout_ratio": 1.0},
     {"kimg": 0}],
)
def test_bad_arguments_are_clear_errors(kwargs):
    with pytest.raises(ValueError, match="colour|initial_probability|interval|cutout_ratio|kimg"):
        Augment(**kwargs)


def test_keras_file_round_trip_keeps_probability(tmp_path):
    model = keras.Sequential([keras.Input((8, 8, 3)), Augment(initial_probability=0.3)])
    model.layers[0].probability.assign(0.55)
    model.save(tmp_path / "augment.keras")
    reloaded = keras.models.load_model(tmp_path / "augment.keras")
    assert isinstance(reloaded.layers[0], Augment)
    assert float(reloaded.layers[0].probability) == pytest.approx(0.55)


def test_gan_fit_with_augment_logs_aug_p():
    generator, discriminator = tiny_networks("dcgan", resolution=8, base_filters=8,
                                             max_filters=16)
    augment = Augment(interval=1, speed=0.1)
    gan = GAN(generator, discriminator, latent_dim=8, augment=augment)
    gan.compile(keras.optimizers.Adam(2e-4), keras.optimizers.Adam(2e-4))
    dataset = data.load("digits", resolution=8, channels=1, batch_size=64).take(2)
    history = gan.fit(dataset, epochs=1, verbose=0).history
    assert history["aug_p"][-1] == pytest.approx(float(augment.probability))
    assert 0.0 <= float(augment.probability) <= 0.2 + 1e-6  # two adjustments of 0.1


@pytest.mark.backends
@pytest.mark.parametrize(("real_sign", "direction"), [(1.0, 1), (-1.0, -1)])
def test_ada_raises_p_when_d_overfits_and_lowers_it_when_not(real_sign, direction):
    """r_t = E[sign D(real)] above the target (D sure of the reals: overfitting) raises p;
    below it lowers p, by `speed` per `interval` updates."""
    augment = Augment(initial_probability=0.5, target=0.6, interval=2, speed=0.1)
    logits = np.full((8, 1), real_sign, np.float32)
    augment.update(logits)
    assert float(augment.probability) == pytest.approx(0.5)  # one update: not due yet
    augment.update(logits)
    assert float(augment.probability) == pytest.approx(0.5 + direction * 0.1)
    for _ in range(4):
        augment.update(logits)
    assert float(augment.probability) == pytest.approx(0.5 + direction * 0.3)


def test_gan_with_augment_trains_under_mixed_float16():
    keras.mixed_precision.set_global_policy("mixed_float16")
    g, d = tiny_networks("dcgan", resolution=8)
    gan = GAN(g, d, latent_dim=8, augment=Augment(initial_probability=0.5))
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    history = gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1]) and "aug_p" in history.history


@pytest.mark.slow  # heavy: run with -m slow
def test_gan_with_augment_fits_under_a_mirrored_strategy(two_replicas):
    with two_replicas.scope():
        g, d = tiny_networks("dcgan", resolution=8)
        gan = GAN(g, d, latent_dim=8, augment=Augment(initial_probability=0.5))
        gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    images = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(8, drop_remainder=True)
    history = gan.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1])


# R1 differentiates D's gradient, taken through the augmentation, once more. ADA's
# pipeline under XLA: the gradient-tape test below (a GAN step compiles for ~15 s more).
@pytest.mark.parametrize(("policy", "r1_gamma", "jit"), [(FULL, 0.0, True),
                                                         ("bgc,cutout", 1.0, False)])
def test_gan_trains_with_the_full_policies(policy, r1_gamma, jit):
    g, d = tiny_networks("dcgan", resolution=8)
    gan = GAN(g, d, latent_dim=8, augment=Augment(policy, initial_probability=1.0))
    gan.compile(keras.optimizers.Adam(), keras.optimizers.Adam(), r1_gamma=r1_gamma,
                jit_compile=jit)
    images = np.random.default_rng(0).uniform(-1, 1, (8, 8, 8, 1)).astype("float32")
    history = gan.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1])


# ------------------------------------------------ keras-cv is the reference for geometry
SHAPES = [(16, 16), (7, 12), (24, 5)]


def _keras_cv_translation(images, shift_y, shift_x):
    layer = keras_cv.layers.RandomTranslation(
        0.4, 0.4, fill_mode="constant", interpolation="nearest", dtype="float32"
    )
    height, width = images.shape[1:3]
    return layer.augment_images(images, {
        "height_translations": tf.cast(shift_y[:, None], tf.float32) / height,
        "width_translations": tf.cast(shift_x[:, None], tf.float32) / width,
    })


def _keras_cv_cutout(images, centre_y, centre_x, height, width):
    layer = keras_cv.layers.RandomCutout(0.5, 0.5, dtype="float32")
    return layer.augment_images(images, {
        "centers_y": centre_y, "centers_x": centre_x,
        "rectangles_height": height, "rectangles_width": width,
    })


def _value_and_input_gradient(op, images, *args):
    weights = tf.random.stateless_normal(images.shape, [4, 2])
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = op(images, *args)
        loss = tf.reduce_sum(out * weights)
    return out.numpy(), tape.gradient(loss, images).numpy()


@pytest.mark.parametrize("shape", SHAPES)
def test_translate_equals_keras_cv_with_its_gradient(shape):
    rng = np.random.default_rng(sum(shape))
    images = tf.constant(rng.uniform(-1, 1, (8, *shape, 3)), tf.float32)
    # up to a whole side and beyond: everything shifted out is zero
    shift_y = tf.constant(rng.integers(-shape[0] - 1, shape[0] + 2, 8), tf.int32)
    shift_x = tf.constant(rng.integers(-shape[1] - 1, shape[1] + 2, 8), tf.int32)
    ours, our_grad = _value_and_input_gradient(translate, images, shift_y, shift_x)
    ref, ref_grad = _value_and_input_gradient(_keras_cv_translation, images, shift_y, shift_x)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    np.testing.assert_allclose(our_grad, ref_grad, atol=1e-6)
    row = int(np.argmax(np.abs(shift_y.numpy()) < shape[0] // 2))  # a partly kept image
    assert (ours[row] != 0).any() and (ours[row] == 0).any()


@pytest.mark.parametrize("shape", SHAPES)
def test_cutout_equals_keras_cv_and_holes_get_no_gradient(shape):
    rng = np.random.default_rng(sum(shape) + 1)
    images = tf.constant(rng.uniform(0.1, 1, (8, *shape, 3)), tf.float32)
    centres = [tf.constant(rng.integers(0, n, 8), tf.int32) for n in shape]
    # odd, even, zero and whole-side sizes, centres at the borders: clipping is compared
    sizes = [tf.constant(rng.integers(0, n + 1, 8), tf.int32) for n in shape]
    args = (*centres, *sizes)
    ours, our_grad = _value_and_input_gradient(cutout, images, *args)
    ref, ref_grad = _value_and_input_gradient(_keras_cv_cutout, images, *args)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    np.testing.assert_allclose(our_grad, ref_grad, atol=1e-6)
    hole = ours == 0
    assert hole.any() and not hole.all()
    assert (our_grad[hole] == 0).all() and (our_grad[~hole] != 0).all()


def _old_geometry_draws(name, seed, images, ratio):
    """The draws the layer made before (and must still make): op seed -> (y, x) seeds."""
    op_seed = tf.random.experimental.stateless_split(seed, 2)[1]  # [gate, op] of the only op
    seed_y, seed_x = tf.unstack(tf.random.experimental.stateless_split(op_seed, 2))
    batch, height, width = images.shape[:3]
    if name == "translation":
        limits = [int(n * ratio + 0.5) for n in (height, width)]
        return [tf.random.stateless_uniform([batch], s, -m, m + 1, tf.int32)
                for s, m in zip((seed_y, seed_x), limits, strict=True)]
    return [tf.random.stateless_uniform([batch], s, 0, n, tf.int32)
            for s, n in zip((seed_y, seed_x), (height, width), strict=True)]


@pytest.mark.parametrize("seed", [[3, 9], [0, 1], [11, 5]])
@pytest.mark.parametrize("shape", [(16, 16), (12, 20)])
def test_layer_translation_and_cutout_equal_keras_cv_on_the_same_draws(seed, shape):
    images = tf.random.stateless_uniform([6, *shape, 3], [seed[1], 4], 0.1, 1.0)
    seed = tf.constant(seed, tf.int64)
    moved = Augment("translation", initial_probability=1.0, translation_ratio=0.25)
    shifts = _old_geometry_draws("translation", seed, images, 0.25)
    np.testing.assert_allclose(
        moved(images, seed=seed), _keras_cv_translation(images, *shifts), atol=1e-6
    )
    holed = Augment("cutout", initial_probability=1.0, cutout_ratio=0.3)
    centres = _old_geometry_draws("cutout", seed, images, 0.3)
    sizes = [tf.fill([6], int(n * 0.3 + 0.5)) for n in shape]
    np.testing.assert_allclose(
        holed(images, seed=seed), _keras_cv_cutout(images, *centres, *sizes), atol=1e-6
    )


# ------------------------------------------------------ replicas: one global draw, sliced
@pytest.mark.parametrize(("policy", "probability", "jit"),
                         [(FULL, 1.0, False),
                          # slow: p = 0.5's two sides of the gate run in the XLA case
                          pytest.param(FULL, 0.5, False, marks=pytest.mark.slow),
                          (FULL, 0.5, True), ("bgc:0.8,translation", 0.5, True)])
def test_two_replicas_augment_their_rows_as_one_device_does(policy, probability, jit,
                                                            two_replicas):
    strategy = two_replicas
    options = dict(policy=policy, initial_probability=probability, adaptive=False)
    with strategy.scope():
        mirrored = Augment(**options)
    images = tf.random.stateless_uniform([8, 16, 16, 3], [2, 2], -1.0, 1.0)
    halves = tf.split(images, 2)
    inputs = strategy.experimental_distribute_values_from_function(
        lambda context: halves[context.replica_id_in_sync_group]
    )

    def replica_fn(x):  # one tf.function per replica: a shared one captures replica 0's p
        return tf.function(lambda y: mirrored(y, seed=SEED), jit_compile=jit)(x)

    per_replica = tf.function(lambda x: strategy.run(replica_fn, (x,)))
    parts = [t.numpy() for t in strategy.experimental_local_results(per_replica(inputs))]
    single = Augment(**options)(images, seed=SEED).numpy()
    # ADA's resampling convolves: its last bits depend on the batch size
    np.testing.assert_allclose(np.concatenate(parts), single, atol=1e-6 if policy == FULL else 3e-5)
    # what a draw for the local batch alone would give: the test can tell the two apart
    local = Augment(**options)(halves[1], seed=SEED).numpy()
    assert not np.allclose(parts[1], local, atol=1e-3)


# ---------------------------------------------------------------------------------- XLA
@pytest.mark.parametrize("policy", [FULL, "bgc"])
def test_full_policy_jit_compiles_with_a_gradient_tape_and_equals_the_plain_graph(policy):
    augment = Augment(policy, initial_probability=0.5, adaptive=False)  # both gate sides
    images = _images(batch=6)
    weights = tf.random.stateless_normal(images.shape, [6, 1])

    def step(x, seed):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = augment(x, seed=seed)
            loss = tf.reduce_sum(out * weights)
        return out, tape.gradient(loss, x)


    compiled = tf.function(step, jit_compile=True)(images, SEED)
    plain = tf.function(step)(images, SEED)
    for ours, reference in zip(compiled, plain, strict=True):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-5, rtol=1e-4)
    assert not np.allclose(compiled[0].numpy(), images.numpy())
    assert np.isfinite(compiled[1].numpy()).all() and (compiled[1].numpy() != 0).mean() > 0.3


def test_checkpoints_written_with_keras_cv_sublayers_still_restore(tmp_path):
    """Runs saved before translation moved off keras-cv hold its seed-generator state too."""
    old = tf.Module()
    old.probability, old.real_sign = tf.Variable(0.7), tf.Variable(0.65)
    old.accumulator = tf.Variable([3.0, 8.0, 1.0])
    old._keras_cv_translation = tf.Module()
    old._keras_cv_translation._random_generator = tf.Module()
    old._keras_cv_translation._random_generator._state_var = tf.Variable([1, 2, 3])
    path = tf.train.Checkpoint(augment=old).save(str(tmp_path / "old"))
    restored = Augment()
    tf.train.Checkpoint(augment=restored).restore(path).assert_existing_objects_matched()
    assert float(restored.probability) == pytest.approx(0.7)
    assert float(restored.real_sign) == pytest.approx(0.65)
    np.testing.assert_allclose(restored.accumulator.numpy(), [3.0, 8.0, 1.0])


@pytest.mark.parametrize("seed", [[3, 9], [-1, -2], [5, 2**33 + 7], [-9113420347412291006, 17]])
def test_draws_equal_tensorflows_and_survive_xla(seed):
    """Seeds from stateless_split use all 64 bits; XLA's own ops would drop some."""
    seed = tf.constant(seed, tf.int64)

    def ours(s):
        return (stateless.split(s, 3), stateless.uniform([257, 3], s),
                stateless.integers([100], s, -4, 5))

    def plain(s):
        return (tf.random.experimental.stateless_split(s, 3),
                tf.random.stateless_uniform([257, 3], s),
                tf.random.stateless_uniform([100], s, -4, 5, tf.int32))

    reference = [t.numpy() for t in plain(seed)]
    for draws in (ours(seed), tf.function(ours, jit_compile=True)(seed)):
        for got, want in zip(draws, reference, strict=True):
            np.testing.assert_array_equal(got.numpy(), want)
    assert reference[1].min() >= 0.0 and reference[1].max() < 1.0
    assert set(np.unique(reference[2])) <= set(range(-4, 5)) and len(np.unique(reference[2])) > 5
    # Normals: TensorFlow's to float32 rounding, compiled or not (XLA's own differ wholly).
    expected = tf.random.stateless_normal([33, 5], seed).numpy()
    normal = tf.function(lambda s: stateless.normal([33, 5], s), jit_compile=True)
    for got in (stateless.normal([33, 5], seed), normal(seed)):
        np.testing.assert_allclose(got.numpy(), expected, atol=5e-6)
