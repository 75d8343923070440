"""`GAN`: a keras.Model whose `train_step` alternates discriminator and generator updates,
written once in `keras.ops`; `kgan.gan.backends` runs it on TensorFlow or JAX."""

from __future__ import annotations

import numpy as np
from keras import Model, metrics, ops, optimizers, saving

from kgan.gan import backends, ema, losses, randomness, regularizers, schedules, style
from kgan.gan import options as gan_options
from kgan.gan.options import LastValue
from kgan.gan.sampling import sample_images
from kgan.gan.style import StyleHooks

# What every step logs; `test_step` logs only these (it computes no penalty).
_LOSS_LOGS = ("d_loss", "g_loss", "d_real", "d_fake")


@saving.register_keras_serializable(package="kgan")
class GAN(StyleHooks, Model):
    """A generator and a discriminator trained against each other with `fit()`.

    Each train step runs `d_steps` discriminator updates on real and generated batches,
    then one generator update. The `d_steps` updates share the step's real batch, each
    with fresh fakes and penalty draws (WGAN-GP's paper draws a new real batch per critic
    update), and a relativistic G loss pairs its fakes with that batch too (R3GAN's
    reference fetches a second one). Latent noise, penalty weights and augmentation draws are
    stateless functions of (seed, step, stream), drawn for the global batch, so a run on N
    replicas computes the same update as one device with the same global batch, and a
    resumed run continues the same random stream.

    Where D has no cross-sample layers (batch norm, minibatch statistics), real and fake
    are scored in one call on their concatenation, and R1 / R2 are the input gradients of
    that same forward pass, taken through the augmentation (design.md, rule 4).

    The step is the same code on TensorFlow and JAX: it reads and assigns variables and
    takes gradients through `kgan.gan.backends` (a tape, or `jax.value_and_grad` inside
    Keras's stateless `train_step(state, data)`).

    Conditional runs: the fakes of both the D and the G step take the real batch's labels
    (as R3GAN does; stylegan2-ada-pytorch draws other labels from the training set's), so
    fakes follow the data's class frequencies and relativistic pairs share a class.

    A style-based generator (with `mapping` and `synthesis`, e.g. StyleGAN2) trains as
    Karras et al. 2020 do (`kgan.gan.style`): noise drawn per pass from the step's
    seed, optional style mixing, w_avg following the mean w, and path-length
    regularisation (`compile(pl_weight=...)`); `generate(..., truncation=psi)` and
    `style_mix` sample it.

    Args:
        generator: maps z [N, latent_dim] (and labels [N] if conditional) to images.
        discriminator: maps images (and labels) to logits [N, 1].
        latent_dim: length of z; must match the generator's first input.
        num_classes: classes of a conditional pair, None for unconditional.
        d_steps: discriminator updates per generator update (>= 1).
        ema_decay: keep an exponential moving average of G with this constant decay
            (Karras et al., 2018), used by `generate()` and the export.
        ema_half_life: or keep it with a half-life in images (StyleGAN2-ADA's
            `ema_kimg` x 1000), a float or a schedule of the step (R3GAN ramps it up).
        ema_rampup: with `ema_half_life`, cap the half-life at `ema_rampup` x images
            seen so far (StyleGAN2-ADA's 0.05), so short runs do not average in their
            random start.
        augment: optional differentiable augmentation applied to everything D sees.
        seed: base seed of the training noise.
        style_mixing: style-based generators only: probability per batch of mixing the
            ws of two z at a random layer (StyleGAN2: 0.9); 0 disables it.

    Example:
        >>> g, d = kgan.networks.get("dcgan")(resolution=32, channels=1, latent_dim=64)
        >>> gan = kgan.GAN(g, d, latent_dim=64, ema_half_life=10_000, ema_rampup=0.05)
        >>> gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...             keras.optimizers.Adam(2e-4, beta_1=0.5), loss="hinge")
        >>> gan.fit(dataset, epochs=10)
        >>> images = gan.generate(16, seed=0)
    """

    def __init__(
        self,
        generator: Model,
        discriminator: Model,
        latent_dim: int,
        num_classes: int | None = None,
        d_steps: int = 1,
        ema_decay: float | None = None,
        augment=None,
        seed: int = 0,
        ema_half_life=None,
        ema_rampup: float | None = None,
        style_mixing: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # The backend is resolved here, eagerly: never first inside a traced step.
        self._built_distribution = backends.current().build_distribution()
        gan_options.check_networks(generator, discriminator, latent_dim, num_classes)
        ema_half_life = gan_options.check_options(d_steps, ema_decay, ema_half_life, ema_rampup)
        self.style_mixing = style.check_style_mixing(style_mixing, generator)
        self.style_based = style.is_style_based(generator)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes) if num_classes else None
        self.d_steps = int(d_steps)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_half_life = ema_half_life
        self.ema_rampup = float(ema_rampup) if ema_rampup else None
        self.augment = augment
        self.seed = int(seed)
        self.image_shape = tuple(generator.output_shape[1:])
        has_ema = self.ema_decay is not None or self.ema_half_life is not None
        self.ema_generator = ema.clone(generator) if has_ema else None
        if augment is not None and not augment.built:
            augment.build((None, *self.image_shape))
        self.step_counter = self.add_weight(
            shape=(), dtype=backends.current().counter_dtype(), initializer="zeros",
            trainable=False, aggregation="only_first_replica", name="step_counter",
        )
        if self.style_based:  # the path lengths' running mean (checkpointed)
            self.pl_mean = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           aggregation="only_first_replica", name="pl_mean")
        self._trackers = {n: metrics.Mean(name=n) for n in _LOSS_LOGS}
        self.built = True

    # ----------------------------------------------------------------- compile
    def compile(
        self,
        d_optimizer,
        g_optimizer,
        loss: str = "non_saturating",
        gradient_penalty: float = 0.0,
        r1_gamma=0.0,
        r2_gamma=0.0,
        augment_probability=None,
        single_d_pass: str | bool = "auto",
        reg_interval: int = 1,
        pl_weight: float = 0.0,
        pl_interval: int = 4,
        pl_batch_shrink: int = 2,
        pl_decay: float = 0.01,
        **kwargs,
    ):
        """Configures both optimizers, the adversarial loss and the regularisers.

        Args:
            d_optimizer: discriminator optimizer (instance, name or config).
            g_optimizer: generator optimizer.
            loss: a loss family name from `kgan.losses.NAMES`.
            gradient_penalty: WGAN-GP weight (lambda, 10 in the paper); 0 disables it.
            r1_gamma: R1 weight gamma, a float or a schedule of the step; the penalty is
                gamma / 2 * E||grad D(T(x))||^2 on real x.
            r2_gamma: R2 weight, the same on generated images (R3GAN uses both).
            augment_probability: a schedule of the step for the augmentation's p (R3GAN
                ramps it 0 -> 0.55) instead of ADA's feedback; None leaves p to `augment`.
            single_d_pass: score real and fake in one D call: "auto" (when D has no
                cross-sample layers), True or False.
            reg_interval: lazy regularisation (StyleGAN2): R1/R2 only every this many D
                steps, weighted by the interval (16 in the paper); 1 is every step.
            pl_weight: path-length regularisation weight (StyleGAN2: 2) for style-based
                generators; 0 disables it (`kgan.gan.style`).
            pl_interval: the path-length penalty every this many G steps, weighted by
                the interval (4 in the paper).
            pl_batch_shrink: its pass uses global batch / pl_batch_shrink images (2).
            pl_decay: the rate at which pl_mean follows the mean path length (0.01).
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, `steps_per_execution`).
        """
        if d_optimizer is g_optimizer and gan_options.is_keras_object(d_optimizer):
            raise ValueError("d_optimizer and g_optimizer are the same optimizer object; each "
                             "network needs its own (its moments are per variable): pass two, "
                             "e.g. keras.optimizers.Adam(2e-4, beta_1=0.5) twice.")
        self.adversarial_loss = losses.get(loss)
        if not np.isfinite(gradient_penalty) or gradient_penalty < 0:
            raise ValueError(f"gradient_penalty must be a finite number >= 0, got "
                             f"{gradient_penalty!r}.")
        self.gradient_penalty_weight = float(gradient_penalty)
        self.r1_gamma = schedules.check_weight("r1_gamma", r1_gamma)
        self.r2_gamma = schedules.check_weight("r2_gamma", r2_gamma)
        self.augment_probability = gan_options.check_augment_schedule(augment_probability,
                                                                      self.augment)
        self.single_d_pass = gan_options.choose_single_pass(single_d_pass, self.discriminator)
        self.reg_interval = gan_options.check_interval("reg_interval", reg_interval)
        self.pl_weight, self.pl_interval, self.pl_batch_shrink, self.pl_decay = (
            style.check_path_length(pl_weight, pl_interval, pl_batch_shrink, pl_decay,
                                             self.generator))
        self.d_optimizer = gan_options.with_loss_scaling(optimizers.get(d_optimizer))
        self.g_optimizer = gan_options.with_loss_scaling(optimizers.get(g_optimizer))
        self._backend.check_compile(self, kwargs)
        super().compile(**kwargs)
        # Keras's trainers keep `model.optimizer`'s variables in the training state (JAX's
        # stateless step): the pair holds both optimizers' (kgan.gan.options).
        self.optimizer = gan_options.OptimizerPair(self.d_optimizer, self.g_optimizer)
        self._compile_args = dict(
            d_optimizer=self.d_optimizer, g_optimizer=self.g_optimizer, loss=loss,
            gradient_penalty=gradient_penalty, r1_gamma=self.r1_gamma, r2_gamma=self.r2_gamma,
            augment_probability=self.augment_probability, single_d_pass=single_d_pass,
            reg_interval=self.reg_interval, pl_weight=self.pl_weight,
            pl_interval=self.pl_interval, pl_batch_shrink=self.pl_batch_shrink,
            pl_decay=self.pl_decay, **kwargs,
        )
        self._add_optional_trackers()
        # Slot variables are made now, in the strategy scope: created lazily inside the
        # distributed train function they fail under MirroredStrategy, and `load_model`
        # and checkpoints need them to restore into.
        self.build_for_training()

    def get_compile_config(self):
        """The `compile()` arguments, optimizers and schedules serialised (for `.keras`)."""
        if not getattr(self, "_compile_args", None):
            return None
        return {k: saving.serialize_keras_object(v) if gan_options.is_keras_object(v) else v
                for k, v in self._compile_args.items()}

    def compile_from_config(self, config):
        self.compile(**{k: saving.deserialize_keras_object(v)
                        if gan_options.is_serialized(v) else v for k, v in config.items()})

    def _add_optional_trackers(self):
        # Rebuilt on every compile: a penalty compiled away no longer logs a stale 0.
        self._trackers = {n: self._trackers.get(n) or metrics.Mean(name=n) for n in _LOSS_LOGS}
        optional = {
            "gp": self.gradient_penalty_weight > 0,
            "r1": schedules.is_active(self.r1_gamma),
            "r2": schedules.is_active(self.r2_gamma),
            "pl": self.pl_weight > 0,
        }
        for name, enabled in optional.items():
            if enabled and name not in self._trackers:
                self._trackers[name] = metrics.Mean(name=name)
        last = ["aug_p"] if self.augment is not None else []
        if isinstance(self.d_optimizer, optimizers.LossScaleOptimizer):
            last += ["d_loss_scale", "g_loss_scale"]
        for name in last:
            self._trackers.setdefault(name, LastValue(name))

    @property
    def metrics(self):
        return list(self._trackers.values())

    def build_for_training(self) -> None:
        """Creates both optimizers' slot variables, so a checkpoint can restore into them."""
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def training_state(self) -> dict:
        """The trackables that make up the training state, for `tf.train.Checkpoint`."""
        state = {
            "generator": self.generator, "discriminator": self.discriminator,
            "d_optimizer": self.d_optimizer, "g_optimizer": self.g_optimizer,
            "step_counter": self.step_counter,
        }
        if self.ema_generator is not None:
            state["ema_generator"] = self.ema_generator
        if self.augment is not None:
            state["augment"] = self.augment
        if self.style_based:
            state["pl_mean"] = self.pl_mean
        return state

    # -------------------------------------------------------------- training
    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`, after checking that every replica gets an equal batch and
        that no callback tunes `model.optimizer`, which a GAN does not train with."""
        gan_options.refuse_single_optimizer_callbacks(kwargs.get("callbacks"))
        weights = [k for k in ("sample_weight", "class_weight") if kwargs.get(k) is not None]
        if weights:
            raise ValueError(f"fit() got {' and '.join(weights)}, which a GAN's losses do not "
                             "take; to change the class mix, resample the data (e.g. "
                             "tf.data.Dataset.sample_from_datasets).")
        with self._backend.data_scope(self):
            self._check_data("fit", x, args, kwargs)
            return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        """`keras.Model.evaluate`, with the data checked and batches split as `fit` does."""
        with self._backend.data_scope(self):
            self._check_data("evaluate", x, args, kwargs)
            return super().evaluate(x, *args, **kwargs)

    def _check_data(self, method: str, x, args: tuple, kwargs: dict) -> None:
        """What `fit` and `evaluate` refuse before the first step (args: after x)."""
        if isinstance(x, (tuple, list)):
            raise ValueError(f"{method}() got a tuple or list as x; pass the arrays as "
                             f"{method}(images) or {method}(images, labels), or a dataset of "
                             "(images, labels) batches.")
        if isinstance(x, np.ndarray):
            labels = kwargs.get("y", args[0] if args else None)
            gan_options.check_array_data(x, labels, self.num_classes, method)
        batch_size = kwargs.get("batch_size", args[1] if len(args) > 1 else None)
        self._backend.check_fit(self, x, batch_size)

    @property
    def _backend(self):
        return backends.current()

    def train_step(self, *args):
        """One GAN step: `train_step(data)` on TensorFlow, `train_step(state, data)` on JAX."""
        return self._backend.run_train_step(self, self._step_when_batch_arrives, *args)

    def _step_when_batch_arrives(self, data):
        return self._backend.after_batch(data, lambda: self._train_step(data))

    def _train_step(self, data):
        real, labels = self._unpack(data)
        step = ops.convert_to_tensor(self.step_counter)
        if self.augment_probability is not None:
            self.augment.probability.assign(
                ops.clip(schedules.value_at(self.augment_probability, step), 0.0, 1.0))
        for index in range(self.d_steps):
            self._discriminator_step(real, labels, step, index)
        self._generator_step(real, labels, step)
        if self.ema_generator is not None:
            beta = ema.beta(step, randomness.static_batch(real), self.ema_decay,
                            self.ema_half_life, self.ema_rampup)
            ema.update(self.ema_generator, self.generator, beta)
        self._track_state()
        self.step_counter.assign_add(1)
        return self._results()

    def _discriminator_step(self, real, labels, step, index):
        batch = randomness.static_batch(real)
        z_seed, *seeds = (self._seed(step, self._streams.d_step(index, draw))
                          for draw in ("z", "gp", "real", "fake"))
        z = randomness.global_normal(batch, [self.latent_dim], z_seed)
        fake, _ = self._fakes(z, labels, step, index)

        def gradients(regularise: bool):
            return self._discriminator_gradients(real, fake, labels, step, seeds, regularise)

        regularised = bool(self._penalty_names())
        if regularised and self.reg_interval > 1:
            # Lazy regularisation (Karras et al. 2020): R1/R2 every `reg_interval` D steps,
            # weighted by the interval; the cheap branch skips the double backward pass.
            # Keyed on the GAN's own D-step count, which a skipped (overflowed) step
            # advances too, unlike the loss-scale optimizer's iterations.
            d_step = ops.cast(step, "int32") * self.d_steps + index
            due = ops.equal(d_step % self.reg_interval, 0)
            outputs = self._backend.cond(due, lambda: gradients(True), lambda: gradients(False))
        else:
            due, outputs = regularised, gradients(regularised)
        grads, d_loss, real_logits, fake_logits, penalties = outputs
        variables = self.discriminator.trainable_variables
        grads = self._backend.agree_on_finiteness(grads, self.d_optimizer)
        self._backend.apply_gradients(self.d_optimizer, grads, variables)
        if self.augment is not None and self.augment_probability is None:
            self.augment.update(real_logits)
        self._track_discriminator(d_loss, real_logits, fake_logits)
        for name, value in penalties.items():
            weight = ops.cast(due, "float32") if name in ("r1", "r2") else 1.0
            self._trackers[name].update_state(value, sample_weight=weight)

    def _penalty_names(self) -> list[str]:
        return regularizers.active_penalties(self.r1_gamma, self.r2_gamma)

    def _discriminator_gradients(self, real, fake, labels, step, seeds, regularise):
        """D's scaled gradients, loss, logits and penalty values for one D step."""
        alpha_seed, real_seed, fake_seed = seeds
        names = self._penalty_names()

        def forward(real_images, fake_images):
            return self._score(self._augmented(real_images, real_seed),
                               self._augmented(fake_images, fake_seed), labels, labels)

        def loss():
            if regularise:
                logits, pullback = self._backend.vjp(forward, real, fake)
            else:
                logits = forward(real, fake)
            real_logits, fake_logits = logits
            d_loss = self.adversarial_loss.discriminator(real_logits, fake_logits)
            total = d_loss
            penalties = {name: ops.zeros((), "float32") for name in names}
            if regularise:
                scale = regularizers.penalty_scale(self.d_optimizer)
                penalties.update(regularizers.zero_centred_penalties(
                    pullback, (real_logits, fake_logits), names, scale))
                for name, gamma in (("r1", self.r1_gamma), ("r2", self.r2_gamma)):
                    if name in penalties:
                        weight = 0.5 * schedules.value_at(gamma, step) * self.reg_interval
                        total += weight * penalties[name]
            if self.gradient_penalty_weight > 0:
                penalties["gp"] = regularizers.wgan_gp(
                    lambda x: self._critic(self._augmented(x, real_seed), labels),
                    real, fake, alpha_seed)
                total += self.gradient_penalty_weight * penalties["gp"]
            scaled = self.d_optimizer.scale_loss(total / randomness.count())
            return scaled, (d_loss, real_logits, fake_logits, penalties)

        _, aux, grads = self._backend.value_and_grad(loss, self.discriminator.trainable_variables)
        return (grads, *aux)

    def _score(self, real, fake, real_labels, fake_labels, training=True):
        """D's logits for real and fake: one call on both where D allows it."""
        if not self.single_d_pass:
            return (self._critic(real, real_labels, training),
                    self._critic(fake, fake_labels, training))
        both_labels = None if real_labels is None else ops.concatenate(
            [real_labels, fake_labels], 0)
        logits = self._critic(ops.concatenate([real, ops.cast(fake, real.dtype)], 0),
                              both_labels, training)
        real_logits, fake_logits = ops.split(logits, 2, axis=0)
        return real_logits, fake_logits

    def _track_discriminator(self, d_loss, real_logits, fake_logits):
        self._trackers["d_loss"].update_state(d_loss)
        self._trackers["d_real"].update_state(ops.mean(real_logits))
        self._trackers["d_fake"].update_state(ops.mean(fake_logits))

    def _generator_step(self, real, labels, step):
        batch = randomness.static_batch(real)
        # The "reserved" stream drew uniform fake labels in kgan 0.2; fakes now take the
        # batch's labels (class docstring).
        z_seed, fake_seed, real_seed = (self._seed(step, self._streams.g_step(draw))
                                        for draw in ("z", "fake", "real"))
        z = randomness.global_normal(batch, [self.latent_dim], z_seed)
        variables = self.generator.trainable_variables

        def loss():
            fake, w = self._fakes(z, labels, step, self.d_steps)
            fake = self._augmented(fake, fake_seed)
            if self.adversarial_loss.uses_real_logits:
                real_logits, fake_logits = self._score(
                    self._augmented(real, real_seed), fake, labels, labels)
            else:
                real_logits, fake_logits = None, self._critic(fake, labels)
            g_loss = self.adversarial_loss.generator_loss(fake_logits, real_logits)
            return self.g_optimizer.scale_loss(g_loss / randomness.count()), (g_loss, w)

        _, (g_loss, w), grads = self._backend.value_and_grad(loss, variables)
        if self.pl_weight > 0:
            grads = self._add_path_length(grads, batch, step)
        grads = self._backend.agree_on_finiteness(grads, self.g_optimizer)
        self._backend.apply_gradients(self.g_optimizer, grads, variables)
        self._trackers["g_loss"].update_state(g_loss)
        if w is not None:  # w_avg follows the global mean w (truncation's centre)
            self.generator.update_w_avg(style.global_mean(ops.mean(w, 0)))

    def _track_state(self):
        if "aug_p" in self._trackers:
            self._trackers["aug_p"].update_state(self.augment.probability)
        if "d_loss_scale" in self._trackers:
            self._trackers["d_loss_scale"].update_state(self.d_optimizer.dynamic_scale)
            self._trackers["g_loss_scale"].update_state(self.g_optimizer.dynamic_scale)

    def test_step(self, *args):
        """Scores D and G on held-out real data without updating anything."""
        return self._backend.run_test_step(self, self._test_step, *args)

    def _test_step(self, data):
        real, labels = self._unpack(data)
        step = ops.convert_to_tensor(self.step_counter)
        z = randomness.global_normal(randomness.static_batch(real), [self.latent_dim],
                                     self._seed(step, 0))
        fake = self.generator(self._generator_inputs(z, labels), training=False)
        real_logits, fake_logits = self._score(real, fake, labels, labels, training=False)
        d_loss = self.adversarial_loss.discriminator(real_logits, fake_logits)
        self._track_discriminator(d_loss, real_logits, fake_logits)
        g_loss = self.adversarial_loss.generator_loss(fake_logits, real_logits)
        self._trackers["g_loss"].update_state(g_loss)
        return self._results(_LOSS_LOGS)

    def _results(self, names=None):
        return self._backend.step_logs(self, {m.name: m.result() for m in self.metrics
                                              if names is None or m.name in names})

    # ----------------------------------------------------------- randomness
    @property
    def _streams(self) -> randomness.StreamLayout:
        return randomness.StreamLayout(self.d_steps)

    def _seed(self, step, stream):
        """A stateless seed unique to (self.seed, step, stream) (`StreamLayout`)."""
        return randomness.seed(self.seed, self._streams.counter(step, stream))

    def _augmented(self, images, seed):
        """T(images): the augmentation draws for the global batch from `seed` (the same
        on every replica) and keeps this replica's rows."""
        if self.augment is None:
            return images
        return self.augment(images, seed=seed)

    # -------------------------------------------------------------- helpers
    def _unpack(self, data):
        if isinstance(data, (tuple, list)):
            images, labels = data[0], (data[1] if len(data) > 1 else None)
        else:
            images, labels = data, None
        if isinstance(images, dict):
            raise ValueError(
                "GAN.fit() expects batches of images, or (images, labels) tuples; got a dict "
                f"with keys {sorted(images)}. Map the dataset to tensors first."
            )
        gan_options.check_batch_shape(images.shape, self.image_shape)
        if self.num_classes and labels is None:
            raise ValueError(
                f"This GAN is conditional (num_classes={self.num_classes}) but the data has no "
                "labels. Feed (images, labels) batches, e.g. kgan.data.load(..., conditional=True)."
            )
        if self.num_classes:
            gan_options.check_labels_shape(labels.shape, self.num_classes)
        labels = ops.cast(ops.reshape(labels, [-1]), "int32") if self.num_classes else None
        return ops.cast(images, "float32"), labels

    def _generator_inputs(self, z, labels):
        return [z, labels] if self.num_classes else z

    def _critic(self, images, labels, training=True):
        inputs = [images, labels] if self.num_classes else images
        return ops.cast(self.discriminator(inputs, training=training), "float32")

    @property
    def sampling_generator(self) -> Model:
        """The generator used for sampling and export: the EMA copy when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def call(self, inputs, training=False):
        return self.sampling_generator(inputs, training=training)

    # ------------------------------------------------------------- sampling
    def generate(self, n_or_z, seed: int | None = None, labels=None, batch_size: int = 256,
                 truncation=None):
        """Generates images in [-1, 1] (float32 NumPy, NHWC) with the sampling generator.

        Args:
            n_or_z: a number of images, or latents [N, latent_dim].
            seed: with a number, image i uses latent seed `seed + i` (as the export's
                `generate` signature does); None draws fresh seeds. A style-based
                generator also draws image i's noise from that seed, so a seed gives the
                same image in any batch.
            labels: class labels [N] for a conditional GAN; by default seed % num_classes
                (or i % num_classes for given latents).
            batch_size: images per forward pass, to bound memory.
            truncation: style-based generators only: psi, a number or one per image [N]
                (1: the full distribution, 0: the w_avg image); None: no truncation.
        """
        return sample_images(
            self.sampling_generator, self.latent_dim, self.num_classes, n_or_z,
            seed=seed, labels=labels, batch_size=batch_size, truncation=truncation,
        )

    # ---------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        config.update(
            generator=saving.serialize_keras_object(self.generator),
            discriminator=saving.serialize_keras_object(self.discriminator),
            latent_dim=self.latent_dim,
            num_classes=self.num_classes,
            d_steps=self.d_steps,
            ema_decay=self.ema_decay,
            ema_half_life=(saving.serialize_keras_object(self.ema_half_life)
                           if callable(self.ema_half_life) else self.ema_half_life),
            ema_rampup=self.ema_rampup,
            augment=saving.serialize_keras_object(self.augment) if self.augment else None,
            seed=self.seed,
            style_mixing=self.style_mixing,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "augment", "ema_half_life"):
            if gan_options.is_serialized(config.get(key)):
                config[key] = saving.deserialize_keras_object(config[key])
        return cls(**config)
