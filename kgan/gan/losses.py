"""Adversarial losses and regularisers as pure functions of discriminator logits.

Each family has `<family>_generator_loss(fake_logits)` and
`<family>_discriminator_loss(real_logits, fake_logits)`, returning the mean over the batch
they are given; a relativistic family's generator side also takes the real logits,
`<family>_generator_loss(fake_logits, real_logits)` (its `AdversarialLoss` says so with
`uses_real_logits`). The GAN divides them by the number of replicas (design.md, rule 2),
so they stay plain and testable on fixed logits. `get(name)` looks a family up by name.

Gradient penalties come in two forms: `squared_gradient_norm(grads)` of input gradients
the caller took from its own forward pass (the GAN's, through the augmentation: design.md
rule 4), and self-contained `r1_penalty` / `r2_penalty` / `gradient_penalty`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from keras import ops

from kgan._definitions import same_definition
from kgan.gan import backends

Tensor = Any  # a backend tensor


def _mean(x: Tensor) -> Tensor:
    return ops.mean(ops.cast(x, "float32"))


def non_saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[log D(G(z))] = E[softplus(-f)] (Goodfellow et al., 2014, section 3)."""
    return _mean(ops.softplus(-ops.cast(fake_logits, "float32")))


def non_saturating_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))] = E[softplus(-r)] + E[softplus(f)] (Goodfellow 2014)."""
    real = ops.cast(real_logits, "float32")
    fake = ops.cast(fake_logits, "float32")
    return _mean(ops.softplus(-real)) + _mean(ops.softplus(fake))


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """E[log(1 - D(G(z)))] = -E[softplus(f)]: the original saturating game (Goodfellow 2014)."""
    return -_mean(ops.softplus(ops.cast(fake_logits, "float32")))


def minimax_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Same binary cross-entropy as the non-saturating discriminator (Goodfellow 2014)."""
    return non_saturating_discriminator_loss(real_logits, fake_logits)


def wasserstein_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[D(G(z))] (Arjovsky et al., 2017, WGAN)."""
    return -_mean(fake_logits)


def wasserstein_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)]: the negated critic estimate of W1 (Arjovsky et al., 2017)."""
    return _mean(fake_logits) - _mean(real_logits)


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E[D(G(z))] (Lim & Ye, 2017; Miyato et al., 2018)."""
    return -_mean(fake_logits)


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye, 2017, Geometric GAN)."""
    real = ops.cast(real_logits, "float32")
    fake = ops.cast(fake_logits, "float32")
    return _mean(ops.relu(1.0 - real)) + _mean(ops.relu(1.0 + fake))


def least_squares_generator_loss(fake_logits: Tensor) -> Tensor:
    """1/2 E[(D(G(z)) - 1)^2] (Mao et al., 2017, LSGAN, a-b-c = 0-1-1)."""
    return 0.5 * _mean(ops.square(ops.cast(fake_logits, "float32") - 1.0))


def least_squares_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] (Mao et al., 2017, LSGAN)."""
    real = ops.cast(real_logits, "float32")
    fake = ops.cast(fake_logits, "float32")
    return 0.5 * _mean(ops.square(real - 1.0)) + 0.5 * _mean(ops.square(fake))


def relativistic_generator_loss(fake_logits: Tensor, real_logits: Tensor) -> Tensor:
    """E[softplus(-(D(G(z)) - D(x)))]: the relativistic pairing loss, RpGAN
    (Jolicoeur-Martineau, 2019), as R3GAN trains G (Huang et al., 2024, eq. 2). Fake i is
    paired with real i."""
    fake = ops.cast(fake_logits, "float32")
    return _mean(ops.softplus(-(fake - ops.cast(real_logits, "float32"))))


def relativistic_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[softplus(-(D(x) - D(G(z))))]: RpGAN's discriminator side (Huang et al., 2024)."""
    real = ops.cast(real_logits, "float32")
    return _mean(ops.softplus(-(real - ops.cast(fake_logits, "float32"))))


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    alpha: Tensor,
    epsilon: float = 1e-12,
) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] with x_hat = alpha real + (1 - alpha) fake.

    WGAN-GP (Gulrajani et al., 2017). `alpha` holds one weight per example, drawn uniformly
    in [0, 1] by the caller; `epsilon` keeps the norm's gradient finite at zero.
    """
    real = ops.cast(real, "float32")
    alpha = ops.reshape(ops.cast(alpha, "float32"), [-1] + [1] * (len(real.shape) - 1))
    interpolated = alpha * real + (1.0 - alpha) * ops.cast(fake, "float32")
    grads = input_gradients(critic, interpolated)
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=_feature_axes(grads)) + epsilon)
    return ops.mean(ops.square(norms - 1.0))


def squared_gradient_norm(grads: Tensor) -> Tensor:
    """E_i[||g_i||^2] over the batch: R1 of gradients at real images, R2 at fakes."""
    grads = ops.cast(grads, "float32")
    return ops.mean(ops.sum(ops.square(grads), axis=_feature_axes(grads)))


def r1_penalty(critic: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """E[||grad_x D(x)||^2] on real data (Mescheder et al., 2018); scale by gamma / 2."""
    return squared_gradient_norm(input_gradients(critic, ops.cast(real, "float32")))


def r2_penalty(critic: Callable[[Tensor], Tensor], fake: Tensor) -> Tensor:
    """E[||grad_x D(x)||^2] on generated data: R1's twin that R3GAN adds (Huang et al.,
    2024, with Roth et al., 2017); scale by gamma / 2."""
    return squared_gradient_norm(input_gradients(critic, ops.cast(fake, "float32")))


def input_gradients(critic: Callable[[Tensor], Tensor], inputs: Tensor) -> Tensor:
    """d sum(critic(inputs)) / d inputs, differentiable again (for penalties)."""
    scores, pullback = backends.current().vjp(lambda x: ops.cast(critic(x), "float32"), inputs)
    return pullback(ops.ones_like(scores))[0]


def _feature_axes(x: Tensor) -> list[int]:
    return list(range(1, len(x.shape)))


class AdversarialLoss(NamedTuple):
    """A loss family: the generator side and the discriminator side.

    `uses_real_logits`: the generator side is `generator(fake_logits, real_logits)`.
    """

    name: str
    generator: Callable[..., Tensor]
    discriminator: Callable[[Tensor, Tensor], Tensor]
    uses_real_logits: bool = False

    def generator_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None):
        """The generator side, given the real logits when the family needs them."""
        if self.uses_real_logits:
            return self.generator(fake_logits, real_logits)
        return self.generator(fake_logits)


_FAMILIES = {
    "non_saturating": (non_saturating_generator_loss, non_saturating_discriminator_loss),
    "minimax": (minimax_generator_loss, minimax_discriminator_loss),
    "wasserstein": (wasserstein_generator_loss, wasserstein_discriminator_loss),
    "hinge": (hinge_generator_loss, hinge_discriminator_loss),
    "least_squares": (least_squares_generator_loss, least_squares_discriminator_loss),
    "relativistic": (relativistic_generator_loss, relativistic_discriminator_loss, True),
}

NAMES = tuple(_FAMILIES)


def register_loss(name: str, generator: Callable[..., Tensor],
                  discriminator: Callable[[Tensor, Tensor], Tensor],
                  uses_real_logits: bool = False) -> AdversarialLoss:
    """Adds a loss family, usable as `compile(loss=name)` and `kgan-train --loss name`
    (with `--import` of the module that registers it). The same pair defined again (a
    re-run notebook cell, a reloaded module) replaces its entry; another pair is refused.

    Example:
        >>> register_loss(
        ...     "softplus_hinge", lambda fake: ops.mean(ops.softplus(-fake)),
        ...     lambda real, fake: ops.mean(ops.softplus(1 - real) + ops.softplus(1 + fake)))
    """
    global NAMES
    key = str(name).lower().replace("-", "_")
    pair = (generator, discriminator, uses_real_logits)
    if not key.isidentifier():
        raise ValueError(f"a loss name is a Python identifier, got {name!r}")
    old = _FAMILIES.get(key, pair)
    if not all(same_definition(a, b) for a, b in zip(old[:2], pair[:2], strict=True)):
        raise ValueError(f"loss {key!r} is already registered (by {old[1].__module__}); "
                         "pick another name")
    _FAMILIES[key] = pair
    NAMES = tuple(_FAMILIES)
    return get(key)


def get(name: str) -> AdversarialLoss:
    """Looks a loss family up by name (`non_saturating`, `hinge`, ...).

    Raises:
        ValueError: for an unknown name; the message lists the valid ones.

    Example:
        >>> get("hinge").discriminator(np.array([2.0]), np.array([-2.0]))
    """
    key = str(name).lower().replace("-", "_")
    if key not in _FAMILIES:
        raise ValueError(f"Unknown loss {name!r}. Valid names: {', '.join(NAMES)}.")
    return AdversarialLoss(key, *_FAMILIES[key])
