"""kgan.GAN: alternating updates, learning, saving, conditioning and clear errors.

Backend-neutral: the suite runs these on TensorFlow, and `tests/test_backends.py` runs them
again in a JAX process (the `backends` marker on the module)."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import (
    LATENT,
    adam,
    changed,
    dtype_policy,
    image_batches,
    in_step,
    max_difference,
    random_images,
    snapshot,
    tiny_gan,
)

import kgan
from kgan.gan import ema as gan_ema
from kgan.gan import randomness

pytestmark = pytest.mark.backends


@pytest.fixture
def compiled_gan():
    gan = tiny_gan()
    gan.compile(adam(), adam())
    gan.build_for_training()
    return gan


def test_discriminator_step_changes_only_discriminator(compiled_gan):
    gan = compiled_gan
    g_before = snapshot(gan.generator.trainable_variables)
    d_before = snapshot(gan.discriminator.trainable_variables)
    real = random_images(4, 8)
    in_step(gan, lambda: gan._discriminator_step(real, None, 0, 0))
    assert not any(changed(g_before, gan.generator.trainable_variables))
    assert all(changed(d_before, gan.discriminator.trainable_variables))


def test_generator_step_changes_only_generator(compiled_gan):
    gan = compiled_gan
    g_before = snapshot(gan.generator.trainable_variables)
    d_before = snapshot(gan.discriminator.weights)
    in_step(gan, lambda: gan._generator_step(random_images(4, 8), None, 0))
    assert all(changed(g_before, gan.generator.trainable_variables))
    assert not any(changed(d_before, gan.discriminator.weights))


def test_d_steps_runs_the_discriminator_optimizer_k_times_per_generator_step():
    gan = tiny_gan(d_steps=3)
    gan.compile(adam(), adam(), loss="wasserstein", gradient_penalty=10.0)
    history = gan.fit(image_batches(), epochs=1, verbose=0)
    assert int(gan.g_optimizer.iterations) == 4
    assert int(gan.d_optimizer.iterations) == 12
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake", "gp"}
    assert all(np.isfinite(v[-1]) for v in history.history.values())


def four_gaussians(n=8192, std=0.1, seed=0):
    modes = np.array([[2, 2], [2, -2], [-2, 2], [-2, -2]], np.float32)
    rng = np.random.default_rng(seed)
    points = modes[rng.integers(0, 4, n)] + std * rng.standard_normal((n, 2))
    return modes, points.astype(np.float32)


def mode_quality(samples, modes, radius=0.5):
    distances = np.linalg.norm(samples[:, None, :] - modes[None], axis=-1)
    near = distances.min(axis=1) < radius
    return near.mean(), len(set(distances.argmin(axis=1)[near]))


def test_gan_learns_a_two_dimensional_gaussian_mixture():
    keras.utils.set_random_seed(0)
    modes, points = four_gaussians()
    g, d = kgan.networks.mlp(data_dim=2, latent_dim=LATENT, hidden=(32, 32))
    gan = kgan.GAN(g, d, latent_dim=LATENT)
    gan.compile(adam(1e-3), adam(1e-3))
    untrained_near, _ = mode_quality(gan.generate(1000, seed=0), modes)
    data = tf.data.Dataset.from_tensor_slices(points).shuffle(8192, seed=0).batch(128)
    gan.fit(data, epochs=40, verbose=0)
    near, covered = mode_quality(gan.generate(1000, seed=0), modes)
    assert untrained_near < 0.05
    assert near > 0.7, f"only {near:.0%} of samples near a mode"
    assert covered == 4


def test_keras_save_and_load_round_trips_generation(tmp_path):
    gan = tiny_gan(ema_decay=0.9)
    gan.compile(adam(), adam(), loss="hinge", r1_gamma=1.0)
    gan.fit(image_batches(), epochs=1, verbose=0)
    gan.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert isinstance(loaded, kgan.GAN)
    np.testing.assert_allclose(loaded.generate(4, seed=7), gan.generate(4, seed=7), atol=1e-6)
    assert loaded.adversarial_loss.name == "hinge" and loaded.r1_gamma == 1.0
    assert int(loaded.d_optimizer.iterations) == int(gan.d_optimizer.iterations) == 4
    assert int(loaded.step_counter) == 4


def test_config_round_trip_rebuilds_the_same_gan():
    gan = tiny_gan(num_classes=3, d_steps=2, ema_decay=0.99, seed=5)
    clone = kgan.GAN.from_config(gan.get_config())
    for key in ("latent_dim", "num_classes", "d_steps", "ema_decay", "seed", "image_shape"):
        assert getattr(clone, key) == getattr(gan, key)
    assert clone.generator.count_params() == gan.generator.count_params()


def test_ema_generator_trails_the_generator_and_is_used_for_sampling():
    gan = tiny_gan(ema_decay=0.5)
    gan.compile(adam(1e-2), adam(1e-2))
    gan.fit(image_batches(), epochs=1, verbose=0)
    assert gan.sampling_generator is gan.ema_generator
    g_kernel, ema_kernel = gan.generator.weights[0].numpy(), gan.ema_generator.weights[0].numpy()
    assert not np.allclose(g_kernel, ema_kernel)
    z = kgan.gan.sampling.latents_from_seeds(np.arange(3), LATENT)
    np.testing.assert_allclose(gan.generate(3, seed=0), gan.ema_generator(z), atol=1e-6)


def test_conditional_gan_trains_and_generates_requested_classes():
    gan = tiny_gan(num_classes=3)
    gan.compile(adam(), adam())
    history = gan.fit(image_batches(labels=True), epochs=2, verbose=0)
    assert np.isfinite(history.history["g_loss"]).all()
    z = np.ones((3, LATENT), np.float32)
    by_label = gan.generate(z, labels=[0, 1, 2])
    assert by_label.shape == (3, 8, 8, 1)
    assert not np.allclose(by_label[0], by_label[1])


def test_generate_is_deterministic_per_seed(compiled_gan):
    """A seed gives the same image alone and in a batch: to float tolerance, because the
    batch size changes a convolution's last bits (exactly in the uint8 export)."""
    batch = compiled_gan.generate(5, seed=10)
    np.testing.assert_allclose(compiled_gan.generate(1, seed=12)[0], batch[2], atol=1e-5)
    np.testing.assert_array_equal(compiled_gan.generate(5, seed=10), batch)  # same computation
    assert batch.dtype == np.float32 and np.abs(batch).max() <= 1.0


# ---------------------------------------------------------------- bad input
def test_wrong_latent_dim_is_refused():
    g, d = kgan.networks.dcgan(8, 1, LATENT, base_filters=4)
    with pytest.raises(ValueError, match="latent_dim=16 does not match .* Pass latent_dim=8"):
        kgan.GAN(g, d, latent_dim=16)


def test_generate_with_wrong_latent_shape_is_refused(compiled_gan):
    with pytest.raises(ValueError, match=r"Latents must have shape \[N, 8\]"):
        compiled_gan.generate(np.zeros((2, 5)))


def test_mismatched_networks_are_refused():
    g, _ = kgan.networks.dcgan(8, 1, LATENT, base_filters=4)
    _, d = kgan.networks.dcgan(16, 1, LATENT, base_filters=4)
    with pytest.raises(ValueError, match=r"makes images of shape \(8, 8, 1\).*takes \(16, 16, 1\)"):
        kgan.GAN(g, d, latent_dim=LATENT)


def test_data_shape_mismatch_fails_at_first_step(compiled_gan):
    wrong = tf.data.Dataset.from_tensor_slices(np.zeros((8, 16, 16, 3), np.float32)).batch(4)
    with pytest.raises(ValueError, match=r"images of shape \(16, 16, 3\).*expect \(8, 8, 1\)"):
        compiled_gan.fit(wrong, epochs=1, verbose=0)


def test_conditional_gan_without_labels_fails_clearly():
    gan = tiny_gan(num_classes=3)
    gan.compile(adam(), adam())
    with pytest.raises(ValueError, match="conditional .* no labels"):
        gan.fit(image_batches(), epochs=1, verbose=0)


def test_unknown_loss_name_fails_at_compile():
    with pytest.raises(ValueError, match="Unknown loss 'wgan'. Valid names: non_saturating"):
        tiny_gan().compile(adam(), adam(), loss="wgan")


@pytest.mark.parametrize("d_steps", [0, -1, 1.5])
def test_d_steps_below_one_is_refused(d_steps):
    with pytest.raises(ValueError, match="d_steps must be an integer >= 1"):
        tiny_gan(d_steps=d_steps)


@pytest.mark.parametrize("options, words", [
    (dict(ema_decay=0.0), r"ema_decay must be in \(0, 1\), or None for no EMA"),  # as the config
    (dict(ema_decay=1.0), r"ema_decay must be in \(0, 1\)"),
    (dict(ema_decay=0.0, ema_half_life=10_000), r"ema_decay must be in"),
    (dict(ema_decay=0.9, ema_half_life=10_000), "Pass ema_decay or ema_half_life, not both"),
])
def test_ema_options_the_config_refuses_are_refused_by_the_gan_too(options, words):
    with pytest.raises(ValueError, match=words):
        tiny_gan(**options)


def test_negative_penalty_is_refused():
    with pytest.raises(ValueError, match="gradient_penalty must be a finite number >= 0"):
        tiny_gan().compile(adam(), adam(), gradient_penalty=-1.0)


def test_plain_import_kgan_is_enough_to_load_a_saved_gan(tmp_path):
    """A fresh process that only does `import kgan` finds the registered GAN class."""
    gan = tiny_gan(ema_decay=0.9)
    gan.compile(adam(), adam())
    gan.save(tmp_path / "gan.keras")
    script = (
        "import sys, kgan, keras\n"  # kgan first: its classes register when Keras loads
        "gan = keras.models.load_model(sys.argv[1])\n"
        "print(type(gan).__name__, gan.generate(2, seed=3).shape)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "gan.keras")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GAN (2, 8, 8, 1)" in done.stdout


def test_evaluate_scores_held_out_data_without_updating_anything(compiled_gan):
    before = snapshot(compiled_gan.weights)
    scores = compiled_gan.evaluate(image_batches(), verbose=0, return_dict=True)
    assert set(scores) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(value) for value in scores.values())
    assert not any(changed(before, compiled_gan.weights))


def test_data_of_unknown_length_runs_out_without_a_partial_step():
    def fit(dataset):
        keras.utils.set_random_seed(1)
        gan = tiny_gan()
        gan.compile(adam(), adam())
        gan.fit(dataset, epochs=1, verbose=0)
        return gan

    known = fit(image_batches(32, batch=8))
    ran_out = fit(image_batches(32, batch=8).filter(lambda _: True))  # length unknown
    assert int(ran_out.step_counter.numpy()) == int(known.step_counter.numpy()) == 4
    # Two fits without op determinism: equal to rounding; a partial fifth step (G's pass,
    # its batch-norm statistics) would move them by far more.
    for a, b in zip(known.get_weights(), ran_out.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------- EMA, penalties, one D pass
def test_ema_update_matches_a_hand_computation_at_decay_0_9():
    gan = tiny_gan(ema_decay=0.9)
    gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    pairs = [(w, e) for w, e in zip(gan.generator.weights, gan.ema_generator.weights,
                                    strict=True) if w.trainable]
    ema_before = snapshot(e for _, e in pairs)
    gan.fit(image_batches(n=8, batch=8), epochs=1, verbose=0)  # one step
    assert any(changed(ema_before, [e for _, e in pairs]))
    for before, (weight, ema) in zip(ema_before, pairs, strict=True):
        np.testing.assert_allclose(ema.numpy(), 0.9 * before + 0.1 * weight.numpy(), atol=1e-6)
    statistics = [(w, e) for w, e in zip(gan.generator.weights, gan.ema_generator.weights,
                                         strict=True) if not w.trainable]
    assert any(np.abs(w.numpy()).max() > 0 for w, _ in statistics if "mean" in w.path)
    for weight, ema in statistics:  # batch-norm statistics are copied, not averaged
        np.testing.assert_array_equal(ema.numpy(), weight.numpy())


def test_ema_half_life_gives_stylegan2_ada_beta_with_rampup():
    def beta(step):
        return float(gan_ema.beta(step, 16, half_life=10_000.0, rampup=0.05))

    # seen = 100 x 16 = 1600 images, half-life capped at 0.05 x 1600 = 80 images
    np.testing.assert_allclose(beta(99), 0.5 ** (16 / 80), rtol=1e-6)
    np.testing.assert_allclose(beta(10**6), 0.5 ** (16 / 10_000), rtol=1e-6)


def linear_critic_gan(**compile_options):
    """G: dense to 2x2x1; D(x) = sum(w * x): grad_x D = w, so R1 = R2 = ||w||^2."""
    g = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(4),
                          keras.layers.Reshape((2, 2, 1))])
    d = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(1, use_bias=False)])
    gan = kgan.GAN(g, d, latent_dim=LATENT)
    gan.compile(keras.optimizers.SGD(1.0), keras.optimizers.SGD(0.0), loss="wasserstein",
                **compile_options)
    return gan


@pytest.mark.parametrize("penalty", ["r1_gamma", "r2_gamma"])
def test_each_penalty_adds_its_analytic_gradient_to_the_discriminator_update(penalty):
    """gamma/2 ||w||^2 adds gamma * w to D's gradient: the SGD(1) steps with and
    without the penalty differ by exactly that."""
    real = random_images(4, 2, seed=1)
    updates = {}
    for gamma in (0.0, 3.0):
        keras.utils.set_random_seed(0)  # the same G, so the same fakes
        gan = linear_critic_gan(**{penalty: gamma})
        w0 = np.full((4, 1), 0.5, np.float32)
        gan.discriminator.set_weights([w0])
        in_step(gan, lambda gan=gan: gan._discriminator_step(real, None, 0, 0))
        updates[gamma] = gan.discriminator.get_weights()[0] - w0
    np.testing.assert_allclose(updates[3.0] - updates[0.0], -3.0 * w0, atol=1e-5)


D_WEIGHTS = np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32)


def _linear_gan(augment, generator=None, **compile_options):
    """G: z -> Dense(4) -> 2x2x1 images; D: their flattened pixels . D_WEIGHTS. Every
    pass is easy to redo by hand; SGD(0), so a step changes no weight."""
    g = generator or keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(4),
                                       keras.layers.Reshape((2, 2, 1))])
    d = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(1, use_bias=False)])
    gan = kgan.GAN(g, d, latent_dim=LATENT, augment=augment)
    gan.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0), **compile_options)
    d.set_weights([D_WEIGHTS])
    return gan, g, d


def _penalty_through(d, augment, seed, images):
    grads = kgan.losses.input_gradients(lambda x: d(augment(x, seed=seed)),
                                        keras.ops.convert_to_tensor(images))
    return float(kgan.losses.squared_gradient_norm(grads))


def test_r1_and_r2_are_taken_through_the_augmentation_at_real_and_fake_images():
    """With T(x) = c (x - mean) + mean (contrast), grad_x D(T(x)) differs from grad_x D(x),
    and real and fake images get their own draws of c: R1 is the penalty at T(real), R2
    at T(G(z)), each through its own T."""
    augment = kgan.augment.Augment("color", initial_probability=1.0, adaptive=False)
    gan, g, d = _linear_gan(augment, r1_gamma=1.0, r2_gamma=1.0)
    real = random_images(8, 2, seed=2)
    in_step(gan, lambda: gan._discriminator_step(real, None, 0, 0))
    streams = randomness.StreamLayout(gan.d_steps)
    fake = g(randomness.global_normal(8, [LATENT], gan._seed(0, streams.d_step(0, "z"))))
    r1 = _penalty_through(d, augment, gan._seed(0, streams.d_step(0, "real")), real)
    r2 = _penalty_through(d, augment, gan._seed(0, streams.d_step(0, "fake")), fake)
    tracked = {name: float(gan._trackers[name].result()) for name in ("r1", "r2")}
    np.testing.assert_allclose([tracked["r1"], tracked["r2"]], [r1, r2], rtol=1e-5)
    without_t = float(np.sum(D_WEIGHTS ** 2))
    assert abs(r1 - without_t) > 1e-3 and abs(r2 - r1) > 1e-3


def test_the_generator_is_scored_on_augmented_fakes():
    """G's loss is D's verdict on T(G(z)) with the G step's own draws, not on G(z)."""
    augment = kgan.augment.Augment("color", initial_probability=1.0, adaptive=False)
    gan, g, d = _linear_gan(augment)  # the non-saturating loss: mean softplus(-D)
    real = random_images(8, 2, seed=2)
    in_step(gan, lambda: gan._generator_step(real, None, 0))
    streams = randomness.StreamLayout(gan.d_steps)
    fake = g(randomness.global_normal(8, [LATENT], gan._seed(0, streams.g_step("z"))))

    def loss(logits):
        return float(np.mean(np.logaddexp(0.0, -keras.ops.convert_to_numpy(logits))))

    expected = loss(d(augment(fake, seed=gan._seed(0, streams.g_step("fake")))))
    np.testing.assert_allclose(float(gan._trackers["g_loss"].result()), expected, rtol=1e-5)
    assert abs(expected - loss(d(fake))) > 1e-3


@pytest.mark.parametrize("real_pixels, p_after", [(0.9, 0.6), (-0.9, 0.4)])
def test_ada_moves_p_by_the_sign_of_d_on_the_real_images(real_pixels, p_after):
    """ADA's heuristic r_t = E[sign(D(real))]: D here is the mean pixel and the fakes sit
    at -real, so feeding it the fakes' logits would move p the other way."""
    augment = kgan.augment.Augment("translation", initial_probability=0.5, interval=1,
                                   speed=0.1, target=0.6)  # 2x2 images: no shift happens
    g = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(
        4, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(
            -real_pixels)), keras.layers.Reshape((2, 2, 1))])
    gan, _, d = _linear_gan(augment, generator=g)
    d.set_weights([np.full((4, 1), 0.25, np.float32)])
    real = np.full((8, 2, 2, 1), real_pixels, np.float32)
    in_step(gan, lambda: gan._discriminator_step(real, None, 0, 0))
    probability = float(keras.ops.convert_to_numpy(augment.probability))
    assert probability == pytest.approx(p_after, abs=1e-6)


@pytest.mark.parametrize("loss", ["non_saturating", "relativistic"])
def test_one_discriminator_pass_gives_the_two_pass_update(loss):
    results = []
    for single in (True, False):
        keras.utils.set_random_seed(3)
        gan = tiny_gan(d_steps=2)
        gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), loss=loss,
                    r1_gamma=1.0, r2_gamma=0.5, single_d_pass=single)
        gan.fit(image_batches(n=16, batch=8), epochs=1, verbose=0)
        results.append(snapshot(gan.weights))
    assert max_difference(*results) < 1e-4


def test_single_pass_is_chosen_only_without_cross_sample_layers():
    gan = tiny_gan()
    gan.compile(adam(), adam())
    assert gan.single_d_pass  # DCGAN's D has no batch norm
    g, _ = kgan.networks.get("dcgan")(8, 1, LATENT, base_filters=4)
    bn_d = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.BatchNormalization(),
                             keras.layers.Flatten(), keras.layers.Dense(1)])
    gan = kgan.GAN(g, bn_d, latent_dim=LATENT)
    gan.compile(adam(), adam())
    assert not gan.single_d_pass
    with pytest.raises(ValueError, match="without cross-sample layers"):
        gan.compile(adam(), adam(), single_d_pass=True)


def test_relativistic_loss_with_r1_r2_trains_and_round_trips(tmp_path):
    gan = tiny_gan(ema_half_life=kgan.schedules.Cosine(0.0, 500.0, 10), ema_rampup=0.5)
    gan.compile(kgan.schedules.ScheduledAdam(kgan.schedules.Cosine(2e-4, 5e-5, 8), beta_1=0.0,
                                             beta_2=kgan.schedules.Cosine(0.9, 0.99, 8)),
                adam(), loss="relativistic", r1_gamma=kgan.schedules.Cosine(0.1, 0.01, 4),
                r2_gamma=0.1)
    history = gan.fit(image_batches(), epochs=2, verbose=0)
    assert {"r1", "r2"} <= set(history.history)
    assert all(np.isfinite(v).all() for v in history.history.values())
    gan.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert isinstance(loaded.r1_gamma, kgan.schedules.Cosine)
    assert loaded.get_compile_config() == gan.get_compile_config()
    own = ("generator", "discriminator", "name")  # networks' auto-numbered layer names differ
    assert ({k: v for k, v in loaded.get_config().items() if k not in own}
            == {k: v for k, v in gan.get_config().items() if k not in own})
    np.testing.assert_allclose(float(loaded.d_optimizer.beta_2), float(gan.d_optimizer.beta_2))


def test_learning_rate_callbacks_that_would_change_nothing_are_refused(compiled_gan):
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    with pytest.raises(ValueError, match="LearningRateScheduler changes model.optimizer"):
        compiled_gan.fit(image_batches(), epochs=1, verbose=0, callbacks=[schedule])


@pytest.mark.parametrize(("iteration", "factor"), [(0, 2.0), (1, 0.0)])
def test_lazy_regularisation_applies_the_penalty_every_interval_weighted_by_it(iteration,
                                                                               factor):
    """reg_interval=2: D steps 0, 2, ... add 2 x gamma w to the gradient, the others none.
    The count is the GAN's own D steps (step x d_steps + index), which skipped float16
    steps advance too, not the optimizer's iterations."""
    real = random_images(4, 2, seed=1)
    updates = {}
    for gamma in (0.0, 3.0):
        keras.utils.set_random_seed(0)
        gan = linear_critic_gan(r1_gamma=gamma, reg_interval=2)
        gan.d_optimizer.iterations.assign(5)  # not what lazy regularisation counts
        w0 = np.full((4, 1), 0.5, np.float32)
        gan.discriminator.set_weights([w0])
        in_step(gan, lambda gan=gan: gan._discriminator_step(real, None, iteration, 0))
        updates[gamma] = gan.discriminator.get_weights()[0] - w0
    np.testing.assert_allclose(updates[3.0] - updates[0.0], -factor * 3.0 * w0, atol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_relativistic_r1_r2_trains_under_mixed_precision(policy):
    with dtype_policy(policy):
        gan = tiny_gan()
        gan.compile(adam(), adam(), loss="relativistic", r1_gamma=1.0, r2_gamma=1.0)
        history = gan.fit(image_batches(n=16), epochs=1, verbose=0).history
    assert all(np.isfinite(v).all() for v in history.values())
    assert ("d_loss_scale" in history) == (policy == "mixed_float16")
    assert gan.generate(2, seed=0).dtype == np.float32


def test_generate_clips_a_linear_output_generator_to_the_image_range():
    g = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(4),
                          keras.layers.Lambda(lambda x: 10.0 * x),
                          keras.layers.Reshape((2, 2, 1))])
    d = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
    images = kgan.GAN(g, d, latent_dim=LATENT).generate(16, seed=0)
    assert images.min() == -1.0 and images.max() == 1.0


def test_style_streams_count_below_zero_so_other_runs_keep_their_noise():
    # The layout every earlier run used: 4 streams per D step and 4 for G, per train step.
    gan = tiny_gan(d_steps=2, seed=5)
    np.testing.assert_array_equal(gan._seed(3, 9), randomness.seed(5, 3 * 12 + 9))
    # A style-based generator's extra draws: (d_steps + 3) x 4 per step, all distinct, < 0.
    style = tiny_gan("stylegan2", d_steps=2, seed=5)
    for step in range(3):
        for k in range(20):
            counter = -1 - (step * 20 + k)
            np.testing.assert_array_equal(style._style_seed(step, k),
                                          randomness.seed(5, counter))
    assert not hasattr(gan, "pl_mean") and hasattr(style, "pl_mean")


def test_conditional_fakes_take_the_batch_labels_in_both_steps():
    """One convention (stylegan2-ada-pytorch's): the fakes of the D step and of the G step
    are generated for the real batch's labels, so they follow the data's class mix."""
    gan = tiny_gan(num_classes=3)
    gan.compile(adam(), adam())
    seen = []
    generator_call = gan.generator.call

    def recording(inputs, *args, **kwargs):
        seen.append(np.asarray(keras.ops.convert_to_numpy(inputs[1])))
        return generator_call(inputs, *args, **kwargs)

    gan.generator.call = recording
    labels = keras.ops.convert_to_tensor(np.array([2, 2, 0, 1], np.int32))
    real = keras.ops.convert_to_tensor(random_images(4, 8))
    in_step(gan, lambda: gan._discriminator_step(real, labels, 0, 0))
    in_step(gan, lambda: gan._generator_step(real, labels, 0))
    assert len(seen) == 2
    for drawn in seen:
        np.testing.assert_array_equal(drawn, [2, 2, 0, 1])


def _one_step(policy: str):
    """One SGD step of a tiny relativistic + R1/R2 GAN from a fixed start under `policy`:
    the updates of G and D (flattened) and the logged values."""
    with dtype_policy(policy):
        keras.utils.set_random_seed(4)
        gan = tiny_gan()
        gan.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1), loss="relativistic",
                    r1_gamma=1.0, r2_gamma=1.0)
        networks = (gan.generator.trainable_variables, gan.discriminator.trainable_variables)
        before = [snapshot(variables) for variables in networks]
        logs = gan.fit(image_batches(n=8, batch=8), epochs=1, verbose=0).history
        updates = [np.concatenate([(np.asarray(keras.ops.convert_to_numpy(v), np.float64)
                                    - b).ravel() for v, b in zip(variables, old, strict=True)])
                   for variables, old in zip(networks, before, strict=True)]
    return updates, {name: values[-1] for name, values in logs.items()}


# Stated tolerances: an update's relative error vs float32 (float16 keeps 11 significant
# bits, bfloat16 8; measured 0.022 and 0.081 on one step) and the same for the logged
# R1 / R2 values. A scale not undone, or a penalty not unscaled, is off by orders more.
@pytest.mark.parametrize(("policy", "tolerance"), [("mixed_float16", 0.05),
                                                   ("mixed_bfloat16", 0.15)])
def test_a_mixed_precision_step_agrees_with_float32_within_a_stated_tolerance(policy,
                                                                              tolerance):
    reference, reference_logs = _one_step("float32")
    updates, logs = _one_step(policy)
    for name, update, expected in zip(("G", "D"), updates, reference, strict=True):
        assert np.linalg.norm(expected) > 0, name
        error = np.linalg.norm(update - expected) / np.linalg.norm(expected)
        assert error <= tolerance, f"{name} update off by {error:.3f} under {policy}"
    for name in ("r1", "r2", "d_loss", "g_loss"):
        np.testing.assert_allclose(logs[name], reference_logs[name], rtol=tolerance,
                                   atol=1e-3, err_msg=name)


def test_steps_per_execution_trains_as_one_step_per_call():
    def fit(steps_per_execution):
        keras.utils.set_random_seed(2)
        gan = tiny_gan(ema_decay=0.9)
        gan.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05), r1_gamma=1.0,
                    steps_per_execution=steps_per_execution)
        gan.fit(image_batches(n=32, batch=8), epochs=1, verbose=0)
        return gan

    one, two = fit(1), fit(2)
    assert int(two.step_counter.numpy()) == int(one.step_counter.numpy()) == 4
    for a, b in zip(one.get_weights(), two.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_non_finite_loss_stops_fit_with_the_loss_named():
    from kgan.training.checkpointing import NonFiniteLossError
    from kgan.training.guards import NonFiniteGuard

    gan = tiny_gan()
    gan.compile(adam(), adam())
    bad = random_images(16, 8)
    bad[3, 0, 0, 0] = np.nan

    class _State:  # what NonFiniteGuard reads of a run's state
        step, steps_per_epoch, latest = 1, 2, None

    # NaN in arrays is refused before fit starts; streamed data reaches the guard.
    batches = tf.data.Dataset.from_tensor_slices(bad).batch(8)
    with pytest.raises(NonFiniteLossError, match="d_loss"):
        gan.fit(batches, epochs=1, verbose=0, callbacks=[NonFiniteGuard(_State())])
