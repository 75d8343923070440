"""`GAN`: a keras.Model whose `train_step` alternates discriminator and generator updates."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import Model, metrics, mixed_precision, models, optimizers, saving
from keras.src.saving import serialization_lib

from kgan import losses, replicas
from kgan.sampling import sample_images

# Random streams per train step: 4 per discriminator step plus 4 for the generator step.
_STREAMS_PER_D_STEP = 4


class LastValue(metrics.Metric):
    """Reports the latest value given, e.g. a loss scale or an augmentation probability.

    Averaging across replicas is harmless because every replica holds the same value.
    """

    def __init__(self, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.value = self.add_variable((), "zeros", dtype="float32", aggregation="mean")

    def update_state(self, value):
        self.value.assign(tf.cast(value, "float32"))

    def result(self):
        return tf.identity(self.value)

    def reset_state(self):
        self.value.assign(0.0)


@saving.register_keras_serializable(package="kgan")
class GAN(Model):
    """A generator and a discriminator trained against each other with `fit()`.

    Each train step runs `d_steps` discriminator updates on real and generated batches,
    then one generator update. Latent noise, penalty weights and augmentation draws are
    stateless functions of (seed, step, replica), so a run on N replicas computes the same
    update as one device with the same global batch, and a resumed run continues the
    same random stream.

    Args:
        generator: maps z [N, latent_dim] (and labels [N] if conditional) to images.
        discriminator: maps images (and labels) to logits [N, 1].
        latent_dim: length of z; must match the generator's first input.
        num_classes: classes of a conditional pair, None for unconditional.
        d_steps: discriminator updates per generator update (>= 1).
        ema_decay: if set, keeps an exponential moving average of the generator
            (Karras et al., 2018), used by `generate()` and the export.
        augment: optional differentiable augmentation applied to everything D sees.
        seed: base seed of the training noise.

    Example:
        >>> g, d = kgan.networks.dcgan(resolution=32, channels=1, latent_dim=64)
        >>> gan = kgan.GAN(g, d, latent_dim=64)
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_networks(generator, discriminator, latent_dim, num_classes)
        _check_options(d_steps, ema_decay)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim)
        self.num_classes = int(num_classes) if num_classes else None
        self.d_steps = int(d_steps)
        self.ema_decay = float(ema_decay) if ema_decay else None
        self.augment = augment
        self.seed = int(seed)
        self.image_shape = tuple(generator.output_shape[1:])
        self.ema_generator = self._clone_generator() if self.ema_decay else None
        if augment is not None and not augment.built:
            augment.build((None, *self.image_shape))
        self.step_counter = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="step_counter",
        )
        self._trackers = {n: metrics.Mean(name=n) for n in ("d_loss", "g_loss", "d_real", "d_fake")}
        self.built = True

    # ----------------------------------------------------------------- compile
    def compile(
        self,
        d_optimizer,
        g_optimizer,
        loss: str = "non_saturating",
        gradient_penalty: float = 0.0,
        r1_gamma: float = 0.0,
        **kwargs,
    ):
        """Configures both optimizers, the adversarial loss and the regularisers.

        Args:
            d_optimizer: discriminator optimizer (instance, name or config).
            g_optimizer: generator optimizer.
            loss: a loss family name from `kgan.losses.NAMES`.
            gradient_penalty: WGAN-GP weight (lambda, 10 in the paper); 0 disables it.
            r1_gamma: R1 weight gamma; the penalty is gamma / 2 * E||grad D(x)||^2.
            **kwargs: passed to `keras.Model.compile` (`jit_compile`, `steps_per_execution`).
        """
        self.adversarial_loss = losses.get(loss)
        for name, value in (("gradient_penalty", gradient_penalty), ("r1_gamma", r1_gamma)):
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
        self.gradient_penalty_weight = float(gradient_penalty)
        self.r1_gamma = float(r1_gamma)
        self.d_optimizer = _with_loss_scaling(optimizers.get(d_optimizer))
        self.g_optimizer = _with_loss_scaling(optimizers.get(g_optimizer))
        if kwargs.get("jit_compile") is True and not getattr(self.augment, "xla_compatible", True):
            raise ValueError(
                "jit_compile=True cannot compile this augmentation: its translation uses "
                "ImageProjectiveTransformV3, which has no XLA kernel. Use jit_compile=False "
                "or an augmentation policy without 'translation'."
            )
        steps_per_execution = kwargs.get("steps_per_execution", 1)
        replicas.check_steps_per_execution(steps_per_execution, self.distribute_strategy)
        super().compile(**kwargs)
        self._compile_config = serialization_lib.SerializableDict(
            d_optimizer=self.d_optimizer, g_optimizer=self.g_optimizer, loss=loss,
            gradient_penalty=gradient_penalty, r1_gamma=r1_gamma, **kwargs,
        )
        self._add_optional_trackers()
        # Slot variables are made now, in the strategy scope: created lazily inside the
        # distributed train function they fail under MirroredStrategy, and `load_model`
        # and checkpoints need them to restore into.
        self.build_for_training()

    def compile_from_config(self, config):
        self.compile(**serialization_lib.deserialize_keras_object(config))

    def _add_optional_trackers(self):
        optional = {"gp": self.gradient_penalty_weight > 0, "r1": self.r1_gamma > 0}
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
        return state

    # -------------------------------------------------------------- training
    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`, after checking that every replica gets an equal batch."""
        replicas.check_replica_batches(x, kwargs.get("batch_size"), self.distribute_strategy)
        return super().fit(x, *args, **kwargs)

    def train_step(self, data):
        real, labels = self._unpack(data)
        step = self.step_counter.value
        for index in range(self.d_steps):
            self._discriminator_step(real, labels, step, index)
        self._generator_step(tf.shape(real)[0], labels, step)
        if self.ema_generator is not None:
            tf.distribute.get_replica_context().merge_call(lambda _: self._update_ema())
        self._track_state()
        self.step_counter.assign_add(1)
        return self._results()

    def _discriminator_step(self, real, labels, step, index):
        batch = tf.shape(real)[0]
        first = index * _STREAMS_PER_D_STEP
        z = replicas.global_normal(batch, [self.latent_dim], self._seed(step, first))
        fake = self.generator(self._generator_inputs(z, labels), training=True)
        with tf.GradientTape() as tape:
            real_logits = self._critic(self._augmented(real, step, first + 2), labels)
            fake_logits = self._critic(self._augmented(fake, step, first + 3), labels)
            d_loss = self.adversarial_loss.discriminator(real_logits, fake_logits)
            total = d_loss + self._penalties(real, fake, labels, step, first + 1)
            scaled = self.d_optimizer.scale_loss(total / replicas.count())
        variables = self.discriminator.trainable_variables
        grads = self._gradients(tape, scaled, variables, self.d_optimizer)
        self.d_optimizer.apply(grads, variables)
        if self.augment is not None:
            self.augment.update(real_logits)
        self._track_discriminator(d_loss, real_logits, fake_logits)

    def _track_discriminator(self, d_loss, real_logits, fake_logits):
        self._trackers["d_loss"].update_state(d_loss)
        self._trackers["d_real"].update_state(tf.reduce_mean(real_logits))
        self._trackers["d_fake"].update_state(tf.reduce_mean(fake_logits))

    def _penalties(self, real, fake, labels, step, stream):
        total = tf.constant(0.0)

        def critic(images):
            return self._critic(images, labels)

        if self.gradient_penalty_weight > 0:
            alpha = replicas.global_uniform(tf.shape(real)[0], self._seed(step, stream))
            gp = losses.gradient_penalty(critic, real, fake, alpha)
            self._trackers["gp"].update_state(gp)
            total += self.gradient_penalty_weight * gp
        if self.r1_gamma > 0:
            r1 = losses.r1_penalty(critic, real)
            self._trackers["r1"].update_state(r1)
            total += 0.5 * self.r1_gamma * r1
        return total

    def _generator_step(self, batch, labels, step):
        first = self.d_steps * _STREAMS_PER_D_STEP
        z = replicas.global_normal(batch, [self.latent_dim], self._seed(step, first))
        if self.num_classes:
            labels = replicas.global_labels(batch, self.num_classes, self._seed(step, first + 1))
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fake = self.generator(self._generator_inputs(z, labels), training=True)
            fake_logits = self._critic(self._augmented(fake, step, first + 2), labels)
            g_loss = self.adversarial_loss.generator(fake_logits)
            scaled = self.g_optimizer.scale_loss(g_loss / replicas.count())
        grads = self._gradients(tape, scaled, variables, self.g_optimizer)
        self.g_optimizer.apply(grads, variables)
        self._trackers["g_loss"].update_state(g_loss)

    @staticmethod
    def _gradients(tape, scaled_loss, variables, optimizer):
        grads = tape.gradient(scaled_loss, variables)
        if isinstance(optimizer, optimizers.LossScaleOptimizer):
            grads = replicas.agree_on_finiteness(grads)
        return grads

    def _update_ema(self):
        """Runs in cross-replica context: G's weights are identical on every replica."""
        decay = self.ema_decay
        for ema, weight in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            if weight.trainable:
                ema.assign(decay * ema + (1.0 - decay) * weight)
            else:  # batch-norm statistics: follow G directly
                ema.assign(weight)

    def _track_state(self):
        if "aug_p" in self._trackers:
            self._trackers["aug_p"].update_state(self.augment.probability)
        if "d_loss_scale" in self._trackers:
            self._trackers["d_loss_scale"].update_state(self.d_optimizer.dynamic_scale)
            self._trackers["g_loss_scale"].update_state(self.g_optimizer.dynamic_scale)

    def test_step(self, data):
        """Scores D and G on held-out real data without updating anything."""
        real, labels = self._unpack(data)
        step = self.step_counter.value
        z = replicas.global_normal(tf.shape(real)[0], [self.latent_dim], self._seed(step, 0))
        fake = self.generator(self._generator_inputs(z, labels), training=False)
        real_logits = self._critic(real, labels, training=False)
        fake_logits = self._critic(fake, labels, training=False)
        d_loss = self.adversarial_loss.discriminator(real_logits, fake_logits)
        self._track_discriminator(d_loss, real_logits, fake_logits)
        self._trackers["g_loss"].update_state(self.adversarial_loss.generator(fake_logits))
        return self._results()

    def _results(self):
        results = {m.name: m.result() for m in self.metrics}
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 reduces multi-worker step logs along axis 0, which scalars lack.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    # ----------------------------------------------------------- randomness
    def _seed(self, step, stream):
        """A stateless seed unique to (self.seed, step, stream)."""
        streams = (self.d_steps + 1) * _STREAMS_PER_D_STEP
        counter = tf.cast(step, tf.int64) * streams + stream
        return tf.stack([tf.constant(self.seed, tf.int64), counter])

    def _augmented(self, images, step, stream):
        if self.augment is None:
            return images
        replica, _ = replicas.position()
        seed = self._seed(step, stream) + tf.stack([tf.cast(replica, tf.int64) + 1, 0])
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
        _check_batch_shape(images.shape, self.image_shape)
        if self.num_classes and labels is None:
            raise ValueError(
                f"This GAN is conditional (num_classes={self.num_classes}) but the data has no "
                "labels. Feed (images, labels) batches, e.g. kgan.data.load(..., conditional=True)."
            )
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32) if self.num_classes else None
        return tf.cast(images, "float32"), labels

    def _generator_inputs(self, z, labels):
        return [z, labels] if self.num_classes else z

    def _critic(self, images, labels, training=True):
        inputs = [images, labels] if self.num_classes else images
        return tf.cast(self.discriminator(inputs, training=training), tf.float32)

    def _clone_generator(self) -> Model:
        clone = models.clone_model(self.generator)
        clone.set_weights(self.generator.get_weights())
        clone.trainable = False
        return clone

    @property
    def sampling_generator(self) -> Model:
        """The generator used for sampling and export: the EMA copy when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def call(self, inputs, training=False):
        return self.sampling_generator(inputs, training=training)

    # ------------------------------------------------------------- sampling
    def generate(self, n_or_z, seed: int | None = None, labels=None, batch_size: int = 256):
        """Generates images in [-1, 1] (float32 NumPy, NHWC) with the sampling generator.

        Args:
            n_or_z: a number of images, or latents [N, latent_dim].
            seed: with a number, image i uses latent seed `seed + i` (as the export's
                `generate` signature does); None draws fresh seeds.
            labels: class labels [N] for a conditional GAN; by default seed % num_classes
                (or i % num_classes for given latents).
            batch_size: images per forward pass, to bound memory.
        """
        return sample_images(
            self.sampling_generator, self.latent_dim, self.num_classes, n_or_z,
            seed=seed, labels=labels, batch_size=batch_size,
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
            augment=saving.serialize_keras_object(self.augment) if self.augment else None,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator", "augment"):
            if config.get(key) is not None:
                config[key] = saving.deserialize_keras_object(config[key])
        return cls(**config)


def _with_loss_scaling(optimizer):
    """Wraps an optimizer for dynamic loss scaling under mixed_float16 (DESIGN.md, rule 1)."""
    policy = mixed_precision.global_policy().name
    if policy == "mixed_float16" and not isinstance(optimizer, optimizers.LossScaleOptimizer):
        return optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _check_options(d_steps, ema_decay):
    if not isinstance(d_steps, (int, np.integer)) or d_steps < 1:
        raise ValueError(f"d_steps must be an integer >= 1, got {d_steps!r}.")
    if ema_decay is not None and not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1) or None, got {ema_decay!r}.")


def _check_networks(generator, discriminator, latent_dim, num_classes):
    g_inputs, d_inputs = list(generator.inputs), list(discriminator.inputs)
    expected_inputs = 2 if num_classes else 1
    for name, inputs in (("generator", g_inputs), ("discriminator", d_inputs)):
        if len(inputs) != expected_inputs:
            kind = "conditional (inputs, label)" if num_classes else "unconditional (one input)"
            raise ValueError(
                f"The {name} has {len(inputs)} inputs, but num_classes={num_classes} asks for "
                f"a {kind} network. Build both networks with the same num_classes."
            )
    if g_inputs[0].shape[-1] != latent_dim:
        raise ValueError(
            f"latent_dim={latent_dim} does not match the generator's latent input "
            f"{tuple(g_inputs[0].shape)}. Pass latent_dim={g_inputs[0].shape[-1]}."
        )
    g_out, d_in = tuple(generator.output_shape[1:]), tuple(d_inputs[0].shape[1:])
    if g_out != d_in:
        raise ValueError(
            f"The generator makes images of shape {g_out} but the discriminator takes {d_in}. "
            "Build both networks for the same resolution and channels."
        )


def _check_batch_shape(shape, image_shape):
    if shape.rank is not None and tuple(shape[1:]) != tuple(image_shape) and None not in shape[1:]:
        raise ValueError(
            f"The data has images of shape {tuple(shape[1:])} but the networks expect "
            f"{tuple(image_shape)}. Load the data at this resolution and channel count "
            "(e.g. kgan.data.load(..., resolution=..., channels=...))."
        )
