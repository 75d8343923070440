"""The GAN core: `GAN` (a keras.Model), its losses, regularizers, EMA, schedules,
randomness, sampling and augmentation, written once in `keras.ops`; `backends/` holds
only what differs between TensorFlow and JAX (gradients, state, distribution).

    model.py         GAN: compile / train_step / generate / config
    options.py       argument checks, the optimizer pair, the LastValue tracker
    losses.py        the adversarial losses and penalties, pure functions of logits
    regularizers.py  R1 / R2 from the loss's own D pass, WGAN-GP
    ema.py           the EMA generator
    style.py         StyleGAN2's training passes (style mixing, path length)
    schedules.py     cosine ramps, ScheduledAdam
    randomness.py    seeds and global stateless draws (philox.py: TF's numbers anywhere)
    sampling.py      seed-addressed sampling for generate() and the export
    augment.py       the Augment layer: DiffAugment's ops, ADA's adaptive p
    ada.py           ADA's bgc pipeline (augment_policy.py: policy strings, Keras-free)
    philox.py        TensorFlow's stateless Philox numbers in NumPy / jax.numpy
    backends/        tensorflow.py and jax.py: gradients, state, distribution;
                     tensorflow_random.py: the same draws as TensorFlow ops under XLA
"""

from kgan import _lazy

_NAMES = {"GAN": "kgan.gan.model:GAN"}
__all__ = sorted(_NAMES)
__getattr__ = _lazy.attributes(__name__, _NAMES)
