"""StyleGAN2 training in kgan.GAN (kgan/gan/style.py and the GAN's style hooks):
path-length regularisation against hand and Jacobian computations, style-mixing draws,
w_avg tracking, truncation and seeds in generate, serialisation, mixed precision, presets,
and (slow) train.py with exact resume.

Backend-neutral (marker `backends`: tests/test_backends.py runs them again on JAX), but
for train.py's TensorFlow run."""

import signal

import keras
import numpy as np
import pytest
from harness import (
    LATENT,
    checkpoint_state,
    dtype_policy,
    image_batches,
    in_step,
    on_backend,
    random_images,
    run_train_py,
    tiny_gan,
    tiny_networks,
)
from keras import ops

import kgan
from kgan.cli.train import build_parser, config_from_args
from kgan.gan import randomness as replicas
from kgan.gan import style as style_training
from kgan.training import runner
from kgan.training.config import ConfigError, TrainConfig

pytestmark = pytest.mark.backends
SLOW = pytest.mark.slow
STEP0 = 0


def compiled(fn):
    """`fn` compiled as this backend compiles a step: tf.function or jax.jit."""
    if on_backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    import jax

    return jax.jit(fn)


def value_and_grad_of(fn, x):
    """(fn(x), d fn(x)[0] / dx) for fn -> (scalar, aux), on this backend."""
    if on_backend() == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return value, tape.gradient(value[0], x)
    import jax

    return jax.value_and_grad(fn, has_aux=True)(x)


def set_noise_strength(model, value):
    """Noise strengths start at 0 (no effect); these tests turn the noise path on."""
    for weight in model.weights:
        if weight.path.endswith("noise_strength"):
            weight.assign(value)


def clipped(images):
    """What `generate` returns: images clipped to [-1, 1] (the outputs are linear)."""
    return np.clip(np.asarray(images), -1.0, 1.0)


def style_gan(style_mixing=0.0, pl_weight=0.0, pl_interval=4, optimizer=keras.optimizers.SGD,
              num_classes=None, **gan_options):
    keras.utils.set_random_seed(1)
    gan = tiny_gan("stylegan2", num_classes=num_classes, style_mixing=style_mixing,
                   **gan_options)
    set_noise_strength(gan.generator, 0.1)
    gan.compile(optimizer(1e-2), optimizer(1e-2), pl_weight=pl_weight, pl_interval=pl_interval)
    return gan


# --------------------------------------------------------------- path length
def test_path_lengths_and_their_weight_gradient_match_a_linear_synthesis_by_hand():
    # img = sum_k ws_k A_k, so J^T y for layer k is A_k y: a_i = sqrt(mean_k |A_k y_i|^2),
    # d a_i / d A_k = A_k y_i y_i^T / (K a_i) and the penalty's gradient follows.
    rng = np.random.default_rng(0)
    num_ws, w_dim, pixels, batch, pl_mean = 3, 4, 16, 5, 0.8
    a_value = rng.standard_normal((num_ws, w_dim, pixels)).astype("float32")
    y = rng.standard_normal((batch, pixels)).astype("float32")
    ws = ops.convert_to_tensor(rng.standard_normal((batch, num_ws, w_dim)).astype("float32"))

    def penalty_of(matrix):
        def synthesize(ws):
            return ops.reshape(ops.einsum("nkd,kdp->np", ws, matrix), [-1, 4, 4, 1])

        lengths = style_training.path_lengths(synthesize, ws, y.reshape(-1, 4, 4, 1))
        return style_training.path_length_penalty(lengths, pl_mean), lengths

    (penalty, lengths), grad = value_and_grad_of(penalty_of, a_value)
    projected = np.einsum("kdp,np->nkd", a_value, y)                       # A_k y_i
    expected = np.sqrt(np.mean(np.sum(projected**2, axis=2), axis=1))
    np.testing.assert_allclose(np.asarray(lengths), expected, rtol=1e-5)
    np.testing.assert_allclose(float(penalty), np.mean((expected - pl_mean) ** 2), rtol=1e-5)
    coefficient = 2 * (expected - pl_mean) / (batch * num_ws * expected)   # [N]
    expected_grad = np.einsum("n,nkd,np->kdp", coefficient, projected, y)
    np.testing.assert_allclose(np.asarray(grad), expected_grad, rtol=1e-4, atol=1e-6)


def jacobian_penalty(gan, size, step=STEP0):
    """pl_weight x pl_interval x mean((a - pl_mean)^2) with a from the full Jacobian
    d image / d ws (`batch_jacobian` / `jax.jacrev`, not a vector-Jacobian product), on the
    draws the GAN's stream layout gives the path-length pass; its lengths; and its
    gradient with respect to G's trainable variables."""
    g, variables = gan.generator, gan.generator.trainable_variables
    first = (gan.d_steps + 2) * 4
    z = replicas.global_normal(size, [LATENT], gan._style_seed(step, first))
    noise = np.asarray(style_training.path_length_noise(size, gan.image_shape,
                                                        gan._style_seed(step, first + 2)))
    seed = gan._style_seed(step, (gan.d_steps + 1) * 4)
    pl_mean = float(gan.pl_mean.numpy())

    def penalty_of(jacobian):                                        # [N, H, W, C, K, D]
        grads = ops.einsum("nhwckd,nhwc->nkd", jacobian, noise)
        lengths = ops.sqrt(ops.mean(ops.sum(grads**2, axis=2), axis=1))
        penalty = ops.mean((lengths - pl_mean) ** 2)
        return penalty * gan.pl_weight * gan.pl_interval, lengths

    if on_backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as outer:
            ws = g.map_ws(z)
            with tf.GradientTape() as tape:
                tape.watch(ws)
                images = g.synthesis(ws, seed=seed)
            penalty, lengths = penalty_of(tape.batch_jacobian(images, ws))
        return penalty, lengths, outer.gradient(penalty, variables)
    import jax
    import jax.numpy as jnp

    def loss(values):
        with keras.StatelessScope(list(zip(variables, values, strict=True))):
            ws = g.map_ws(z)
            full = jax.jacrev(lambda ws: g.synthesis(ws, seed=seed))(ws)  # [N, H, W, C, N, K, D]
            return penalty_of(jnp.einsum("nhwcmkd,nm->nhwckd", full, jnp.eye(size)))

    (penalty, lengths), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
        [v.value for v in variables])
    return penalty, lengths, grads


def test_gan_path_length_gradient_matches_a_full_jacobian_computation():
    # Finite differences cannot check this gradient: with leaky ReLUs the Jacobian jumps
    # where a pre-activation changes sign, so the penalty is only piecewise smooth.
    gan = style_gan(pl_weight=2.0, pl_interval=4)
    gan.pl_mean.assign(0.3)
    grads, mean_length, penalty = in_step(gan, lambda: gan._path_length_gradients(8, STEP0))
    variables = gan.generator.trainable_variables
    expected, lengths, expected_grads = jacobian_penalty(gan, 4)  # batch 8 / pl_batch_shrink 2
    np.testing.assert_allclose(float(mean_length), np.mean(lengths), rtol=1e-4)
    np.testing.assert_allclose(float(penalty) * 8.0, float(expected), rtol=1e-4)
    scale = max(float(np.max(np.abs(np.asarray(g)))) for g in grads)
    for variable, grad, reference in zip(variables, grads, expected_grads, strict=True):
        reference = np.zeros(variable.shape) if reference is None else reference  # toRGB bias
        np.testing.assert_allclose(np.asarray(grad), np.asarray(reference), atol=1e-4 * scale,
                                   err_msg=variable.path)
    assert sum(bool(np.any(np.asarray(g))) for g in grads) > len(variables) // 2


def test_path_length_is_added_every_interval_and_pl_mean_follows_the_mean_length():
    batch = ops.convert_to_tensor(random_images(8, 16))
    reference = style_gan(pl_weight=0.0)
    gan = style_gan(pl_weight=2.0, pl_interval=2)
    pl_grads, mean_length, penalty = in_step(gan, lambda: gan._path_length_gradients(8, STEP0))
    in_step(gan, lambda: gan._train_step(batch))
    in_step(reference, lambda: reference._train_step(batch))
    # Step 0 is due: the update holds the interval-weighted gradient (SGD, lr 1e-2), and
    # pl_mean moved from 0 by pl_decay toward the mean length.
    for g, r, p in zip(gan.generator.trainable_variables,
                       reference.generator.trainable_variables, pl_grads, strict=True):
        resolution = 2 * np.spacing(np.abs(r.numpy()).max())  # mapping weights are ~100
        np.testing.assert_allclose(g.numpy() - r.numpy(), -1e-2 * np.asarray(p),
                                   atol=resolution + 1e-7, err_msg=g.path)
    assert float(mean_length) > 0
    np.testing.assert_allclose(float(gan.pl_mean), 0.01 * float(mean_length), rtol=1e-5)
    # Step 1 is not due: pl_mean stays, and the tracker still reports step 0's penalty.
    first_mean = float(gan.pl_mean)
    logs = in_step(gan, lambda: gan._train_step(batch))
    assert float(gan.pl_mean) == first_mean
    np.testing.assert_allclose(float(logs["pl"]), float(penalty), rtol=1e-5)


# ---------------------------------------------------------------- style mixing
def test_mixing_cutoff_is_one_draw_per_batch_with_the_given_probability():
    num_ws, draws = 6, 300

    def cutoffs(probability):
        # One compiled draw per probability, the batch's counter traced (as in a step).
        draw = compiled(lambda i: style_training.mixing_cutoff(
            num_ws, probability, replicas.seed(7, 2 * i), replicas.seed(7, 2 * i + 1)))
        return np.array([int(draw(np.int32(i))) for i in range(draws)])

    mixed = cutoffs(0.9)
    assert abs(np.mean(mixed < num_ws) - 0.9) < 0.06
    assert set(mixed[mixed < num_ws]) == set(range(1, num_ws))
    assert set(cutoffs(0.0)) == {num_ws} and num_ws not in set(cutoffs(1.0))


def test_style_mixing_takes_the_ws_after_the_cutoff_from_a_second_latent():
    gan = style_gan(style_mixing=1.0, num_classes=3)
    g, step = gan.generator, 5
    z = np.random.default_rng(3).standard_normal((4, LATENT)).astype("float32")
    labels = np.array([0, 1, 2, 0], "int32")
    pass_index = 1  # the G step's pass (d_steps = 1)
    w, ws, synthesize = gan._styles(z, labels, step, pass_index)
    cutoff = int(style_training.mixing_cutoff(
        g.num_ws, 1.0, gan._style_seed(step, 5), gan._style_seed(step, 6)))
    assert 1 <= cutoff < g.num_ws
    z_b = replicas.global_normal(4, [LATENT], gan._style_seed(step, 7))
    np.testing.assert_allclose(w, g.mapping([z, labels]), atol=1e-6)
    np.testing.assert_allclose(ws[:, :cutoff], g.broadcast(w)[:, :cutoff], atol=1e-6)
    np.testing.assert_allclose(ws[:, cutoff:], g.map_ws([z_b, labels])[:, cutoff:], atol=1e-6)
    np.testing.assert_allclose(synthesize(ws), g.synthesis(ws, seed=gan._style_seed(step, 4)),
                               atol=1e-6)


def test_w_avg_follows_the_mean_w_of_each_generator_step():
    gan = style_gan(ema_decay=0.9)
    batch = ops.convert_to_tensor(random_images(8, 16))
    z = replicas.global_normal(8, [LATENT], gan._seed(STEP0, gan.d_steps * 4))
    mean_w = np.mean(np.asarray(gan.generator.mapping(z)), axis=0)  # G's weights before the step
    in_step(gan, lambda: gan._train_step(batch))
    np.testing.assert_allclose(gan.generator.w_avg.numpy(), 0.005 * mean_w, atol=1e-6)
    np.testing.assert_allclose(gan.ema_generator.w_avg.numpy(), gan.generator.w_avg.numpy())


@pytest.mark.parametrize("build, compile_args, message", [
    (dict(style_mixing=1.5), {}, r"style_mixing must be a number in \[0, 1\]"),
    (dict(network="dcgan", style_mixing=0.9), {}, "style_mixing needs a style-based generator"),
    (dict(network="dcgan"), dict(pl_weight=2.0), "pl_weight needs a style-based generator"),
    ({}, dict(pl_weight=2.0, pl_interval=0), "pl_interval must be an integer >= 1"),
    ({}, dict(pl_weight=-1.0), "pl_weight must be a number"),
])
def test_bad_style_options_are_refused(build, compile_args, message):
    build = dict(build)
    with pytest.raises(ValueError, match=message):
        gan = tiny_gan(build.pop("network", "stylegan2"), **build)
        gan.compile(keras.optimizers.SGD(), keras.optimizers.SGD(), **compile_args)


# ------------------------------------------------------------------- sampling
@pytest.fixture(scope="module")
def sampler():
    """A tiny style GAN whose EMA generator has noise and a w_avg away from zero."""
    gan = tiny_gan("stylegan2", ema_decay=0.9)
    set_noise_strength(gan.ema_generator, 0.5)
    gan.ema_generator.w_avg.assign(np.random.default_rng(4).standard_normal(16))
    return gan


def test_truncation_psi_zero_gives_the_w_avg_image_and_one_the_untruncated_image(sampler):
    ema, seeds = sampler.ema_generator, np.arange(3, 7)
    w_avg = np.broadcast_to(ema.w_avg.numpy(), (4, ema.num_ws, ema.w_avg.shape[0]))
    at_mean = clipped(ema.synthesis(w_avg, noise_seeds=seeds))
    np.testing.assert_allclose(sampler.generate(4, seed=3, truncation=0.0), at_mean, atol=1e-5)
    full = sampler.generate(4, seed=3)
    z = kgan.gan.sampling.latents_from_seeds(seeds, LATENT)
    np.testing.assert_allclose(full, clipped(ema(z, noise_seeds=seeds)), atol=1e-5)
    np.testing.assert_allclose(sampler.generate(4, seed=3, truncation=1.0), full, atol=1e-6)
    half = sampler.generate(4, seed=3, truncation=0.5)
    assert not np.allclose(half, full, atol=1e-3) and not np.allclose(half, at_mean, atol=1e-3)
    mixed = sampler.generate(4, seed=3, truncation=[0.0, 1.0, 0.5, 0.5])
    np.testing.assert_allclose(mixed, [at_mean[0], full[1], half[2], half[3]], atol=1e-5)


def test_a_seed_gives_the_same_image_in_any_batch(sampler):
    alone = sampler.generate(1, seed=13, truncation=0.7)[0]
    np.testing.assert_allclose(sampler.generate(6, seed=10, truncation=0.7)[3], alone, atol=1e-5)
    np.testing.assert_allclose(sampler.generate(3, seed=11, truncation=0.7, batch_size=2)[2],
                               alone, atol=1e-5)
    assert not np.allclose(sampler.generate(1, seed=14, truncation=0.7)[0], alone)


def test_style_mix_takes_coarse_styles_from_a_and_the_rest_from_b(sampler):
    g = sampler.ema_generator
    a, b = [1, 2], [5, 6]
    np.testing.assert_allclose(sampler.style_mix(a, b, g.num_ws), sampler.generate(2, seed=1),
                               atol=1e-5)
    ws_b = g.map_ws(kgan.gan.sampling.latents_from_seeds(np.array(b), LATENT))
    np.testing.assert_allclose(sampler.style_mix(a, b, 0),
                               clipped(g.synthesis(ws_b, noise_seeds=a)), atol=1e-5)
    middle = sampler.style_mix(a, b, 2)
    assert not np.allclose(middle, sampler.generate(2, seed=1), atol=1e-3)
    assert sampler.style_mix([1], b, 2).shape == (2, 16, 16, 1)
    with pytest.raises(ValueError, match="cutoff must be an integer in"):
        sampler.style_mix(a, b, g.num_ws + 1)


@pytest.mark.parametrize("truncation, message", [
    ([0.5, 0.5], "truncation must be a finite number or 3 finite numbers"),
    (float("nan"), "truncation must be a finite number"),
])
def test_bad_truncation_is_refused(sampler, truncation, message):
    with pytest.raises(ValueError, match=message):
        sampler.generate(3, seed=0, truncation=truncation)


def test_generators_without_a_mapping_network_refuse_truncation_and_mixing():
    gan = tiny_gan("dcgan")
    with pytest.raises(ValueError, match="truncation needs a style-based generator"):
        gan.generate(2, seed=0, truncation=0.7)
    with pytest.raises(ValueError, match="style mixing needs a style-based generator"):
        gan.style_mix([0], [1], 2)


# ------------------------------------------------------------- serialisation
def test_keras_round_trip_keeps_style_options_pl_mean_and_w_avg(tmp_path):
    gan = tiny_gan("stylegan2", ema_decay=0.9, style_mixing=0.9)
    gan.compile(keras.optimizers.Adam(), keras.optimizers.Adam(), r1_gamma=0.1,
                reg_interval=4, pl_weight=2.0, pl_interval=2, pl_decay=0.02)
    gan.pl_mean.assign(0.37)
    gan.ema_generator.w_avg.assign(np.full(16, 0.25, "float32"))
    assert gan.training_state()["pl_mean"] is gan.pl_mean
    gan.save(tmp_path / "gan.keras")
    loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert loaded.style_mixing == 0.9
    assert (loaded.pl_weight, loaded.pl_interval, loaded.pl_decay, loaded.reg_interval) == (
        2.0, 2, 0.02, 4)
    assert float(loaded.pl_mean) == pytest.approx(0.37)
    np.testing.assert_allclose(loaded.generate(2, seed=0, truncation=0.5),
                               gan.generate(2, seed=0, truncation=0.5), atol=1e-6)


# ----------------------------------------------------------- mixed precision
def test_mixed_float16_with_fp16_blocks_keeps_the_loss_scale_and_finite_losses():
    with dtype_policy("mixed_float16"):
        keras.utils.set_random_seed(2)
        g, d = tiny_networks("stylegan2", num_fp16_res=2, conv_clamp=256)
        gan = kgan.GAN(g, d, latent_dim=LATENT, style_mixing=0.9)
        adam = keras.optimizers.Adam
        gan.compile(adam(2.5e-3, beta_1=0.0, beta_2=0.99), adam(2.5e-3, beta_1=0.0, beta_2=0.99),
                    r1_gamma=0.1, reg_interval=2, pl_weight=2.0, pl_interval=2)
        logs = gan.fit(image_batches(48, batch=8, resolution=16), epochs=1, verbose=0).history
    assert g.synthesis.blocks[-1].compute_dtype == "float16"
    assert all(np.isfinite(values).all() for values in logs.values())
    # 32768 at the start; a skipped step halves it. A few halvings at most in 6 steps.
    assert logs["g_loss_scale"][-1] >= 8192 and logs["d_loss_scale"][-1] >= 8192
    assert np.isfinite(float(gan.pl_mean)) and float(gan.pl_mean) > 0


# ------------------------------------------------------ presets and the CLI
@pytest.mark.parametrize("name, resolution, gamma", [
    ("faces64", 64, 0.0256), ("faces128", 128, 0.1024), ("stylegan2_digits", 16, 0.0016)])
def test_presets_follow_the_reference_auto_config(name, resolution, gamma):
    config = TrainConfig.from_preset(name)
    assert (config.network, config.resolution, config.batch_size) == ("stylegan2", resolution, 32)
    assert config.r1_gamma == pytest.approx(gamma)  # 0.0002 res^2 / batch
    assert (config.reg_interval, config.pl_weight, config.pl_interval) == (16, 2.0, 4)
    assert (config.style_mixing, config.ema_kimg, config.ema_rampup) == (0.9, 10.0, 0.05)
    assert (config.lr_g, config.lr_d, config.beta1, config.beta2) == (0.0025, 0.0025, 0.0, 0.99)
    assert config.network_args["mapping_layers"] == 2
    assert (config.network_args["conv_clamp"], config.network_args["num_fp16_res"]) == (256, 4)
    if name.startswith("faces"):
        assert (config.dataset, config.channels, config.ada_target) == ("images", 3, 0.6)
        assert (config.network_args["cbase"], config.network_args["cmax"]) == (16384, 512)


def test_flags_set_the_style_options():
    args = build_parser().parse_args(["--network", "stylegan2", "--style-mixing", "0.5",
                                      "--pl-weight", "1", "--pl-interval", "8",
                                      "--reg-interval", "4"])
    config = config_from_args(args)
    assert (config.style_mixing, config.pl_weight, config.pl_interval, config.reg_interval) == (
        0.5, 1.0, 8, 4)
    with pytest.raises(ConfigError, match="style_mixing must be in"):
        TrainConfig(network="stylegan2", resolution=16, style_mixing=2.0)


def test_build_gan_passes_the_style_options_and_refuses_them_without_a_mapping():
    options = dict(resolution=16, latent_dim=8, network="stylegan2",
                   network_args=dict(cbase=256, cmax=16, mapping_layers=1, w_dim=8))
    gan = runner.build_gan(TrainConfig(**options, style_mixing=0.9, pl_weight=2.0,
                                       pl_interval=8, reg_interval=16), None)
    assert (gan.style_mixing, gan.pl_weight, gan.pl_interval, gan.reg_interval) == (
        0.9, 2.0, 8, 16)
    with pytest.raises(ConfigError, match="pl_weight needs a style-based generator"):
        runner.build_gan(TrainConfig(resolution=8, latent_dim=8, pl_weight=2.0,
                                     network_args=dict(base_filters=4)), None)


# ------------------------------------------------- train.py and exact resume
TINY = ["--preset", "stylegan2_digits", "--network-args", "cbase=256,cmax=16,w_dim=16",
        "--latent-dim", "8", "--batch-size", "8", "--steps-per-epoch", "3", "--epochs", "2",
        "--checkpoint-every", "2", "--pl-interval", "2", "--reg-interval", "2",
        "--num-samples", "4", "--log-every-n-steps", "2", "--deterministic"]


def _train(cwd, *flags, kill_at=None):
    return run_train_py(cwd, [*TINY, *flags], kill_at and ("SIGKILL", kill_at), timeout=600)


@SLOW
@pytest.mark.tensorflow_only  # train.py on TensorFlow, whatever this process's backend
def test_train_py_preset_runs_and_a_killed_run_resumes_exactly(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = _train(tmp_path / "a", "--run-dir", "run", "--export-dir", "exp")
    assert full.returncode == 0, full.stderr[-3000:]
    assert (tmp_path / "a/exp/stylegan2_digits/1/saved_model.pb").is_file()
    assert (tmp_path / "a/run/final.keras").is_file() and "pl:" in full.stdout
    # Killed after step 5; the newest backup holds step 4, so steps 4 (path length due)
    # and 5 are trained again after the restore.
    killed = _train(tmp_path / "b", "--run-dir", "run", "--no-export", kill_at=5)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    resumed = _train(tmp_path / "b", "--run-dir", "run", "--no-export")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at epoch 2, batch 1 (step 4)" in resumed.stdout
    expected, actual = checkpoint_state(tmp_path / "a/run"), checkpoint_state(tmp_path / "b/run")
    assert sorted(actual) == sorted(expected)
    pl_mean = "pl_mean/.ATTRIBUTES/VARIABLE_VALUE"
    assert actual[pl_mean] > 0 and any("w_avg" in k for k in actual)
    assert [k for k in expected if not np.array_equal(expected[k], actual[k])] == []
