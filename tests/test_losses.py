"""Each loss family and penalty against values worked out by hand on fixed logits."""

import math

import numpy as np
import pytest
from keras import ops

from kgan.gan import backends, losses

pytestmark = pytest.mark.backends  # pure keras.ops: run on JAX too (tests/test_backends.py)

REAL = np.array([[2.0], [-1.0]], np.float32)
FAKE = np.array([[0.5], [-3.0]], np.float32)


def softplus(x):
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    "fn, expected",
    [
        (losses.non_saturating_generator_loss, (softplus(-0.5) + softplus(3.0)) / 2),
        (losses.minimax_generator_loss, -(softplus(0.5) + softplus(-3.0)) / 2),
        (losses.wasserstein_generator_loss, 1.25),
        (losses.hinge_generator_loss, 1.25),
        (losses.least_squares_generator_loss, 0.5 * (0.25 + 16.0) / 2),
    ],
)
def test_generator_losses(fn, expected):
    assert float(fn(FAKE)) == pytest.approx(expected, rel=1e-6)


def test_relativistic_pairs_each_fake_with_its_real():
    # f - r = [0.5 - 2, -3 + 1] = [-1.5, -2]; r - f = [1.5, 2]
    generator = (softplus(1.5) + softplus(2.0)) / 2
    discriminator = (softplus(-1.5) + softplus(-2.0)) / 2
    assert float(losses.relativistic_generator_loss(FAKE, REAL)) == pytest.approx(generator)
    assert float(losses.relativistic_discriminator_loss(REAL, FAKE)) == pytest.approx(
        discriminator)
    family = losses.get("relativistic")
    assert family.uses_real_logits
    assert float(family.generator_loss(FAKE, REAL)) == pytest.approx(generator)


def test_r2_penalty_is_r1_on_generated_images():
    critic = lambda x: ops.sum(3.0 * x, axis=[1, 2, 3])  # noqa: E731  grad = 3
    fake = np.zeros([2, 2, 2, 1], np.float32)
    assert float(losses.r2_penalty(critic, fake)) == pytest.approx(9.0 * 4)
    grads = np.full([2, 2, 2, 1], 0.5, np.float32)
    assert float(losses.squared_gradient_norm(grads)) == pytest.approx(0.25 * 4)


BCE = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2


@pytest.mark.parametrize(
    "fn, expected",
    [
        (losses.non_saturating_discriminator_loss, BCE),
        (losses.minimax_discriminator_loss, BCE),
        (losses.wasserstein_discriminator_loss, -1.25 - 0.5),
        # relu(1 - r) = [0, 2], relu(1 + f) = [1.5, 0]
        (losses.hinge_discriminator_loss, 1.0 + 0.75),
        # (r - 1)^2 = [1, 4], f^2 = [0.25, 9]
        (losses.least_squares_discriminator_loss, 0.5 * 2.5 + 0.5 * 4.625),
    ],
)
def test_discriminator_losses(fn, expected):
    assert float(fn(REAL, FAKE)) == pytest.approx(expected, rel=1e-6)


def linear_critic(x):
    """D(x) = 3 x0 + 4 x1: its input gradient is (3, 4) everywhere, norm 5."""
    return ops.sum(x * np.array([3.0, 4.0], np.float32), axis=1, keepdims=True)


def quadratic_critic(x):
    """D(x) = |x|^2 / 2: its input gradient is x itself."""
    return 0.5 * ops.sum(ops.square(x), axis=1, keepdims=True)


def test_gradient_penalty_of_linear_critic_is_norm_minus_one_squared():
    real, fake = np.zeros([3, 2], np.float32), np.ones([3, 2], np.float32)
    alpha = np.array([0.0, 0.3, 1.0], np.float32)
    assert float(losses.gradient_penalty(linear_critic, real, fake, alpha)) == pytest.approx(16.0)


def test_gradient_penalty_interpolates_alpha_real_plus_one_minus_alpha_fake():
    real, fake = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32), np.zeros([2, 2], np.float32)
    # x_hat = (0.5, 0) -> norm 0.5 -> (0.5 - 1)^2;  x_hat = real -> norm 1 -> 0.
    value = losses.gradient_penalty(quadratic_critic, real, fake, np.array([0.5, 1.0]))
    assert float(value) == pytest.approx((0.25 + 0.0) / 2, abs=1e-6)


def test_gradient_penalty_is_finite_where_the_gradient_vanishes():
    zeros = ops.zeros([2, 2])

    def penalty(real):
        return losses.gradient_penalty(quadratic_critic, real, zeros, np.array([0.5, 0.5]))

    assert float(penalty(zeros)) == pytest.approx(1.0, abs=1e-5)
    value, pullback = backends.current().vjp(penalty, zeros)
    assert np.isfinite(np.asarray(pullback(ops.ones_like(value))[0])).all()


def test_r1_penalty_is_mean_squared_input_gradient_norm():
    assert float(losses.r1_penalty(linear_critic, np.zeros([4, 2], np.float32))) == (
        pytest.approx(25.0))
    real = np.array([[1.0, 2.0], [0.0, 1.0]], np.float32)
    assert float(losses.r1_penalty(quadratic_critic, real)) == pytest.approx((5.0 + 1.0) / 2)


def test_get_finds_families_by_name():
    pair = losses.get("hinge")
    assert pair.generator is losses.hinge_generator_loss
    assert losses.get("least-squares").name == "least_squares"


def test_unknown_loss_name_lists_valid_names():
    with pytest.raises(ValueError, match="Unknown loss 'vanilla'.*non_saturating.*hinge"):
        losses.get("vanilla")


def _least_squares_pair():
    """A user's loss module, as a re-run notebook cell defines it again: new objects."""
    def generator(fake):
        return ops.mean(ops.square(fake - 1.0))

    def discriminator(real, fake):
        return ops.mean(ops.square(real - 1.0) + ops.square(fake + 1.0))

    return generator, discriminator


def test_a_loss_defined_again_replaces_its_entry_and_another_is_refused(monkeypatch):
    monkeypatch.setattr(losses, "_FAMILIES", dict(losses._FAMILIES))
    monkeypatch.setattr(losses, "NAMES", losses.NAMES)
    first = losses.register_loss("pm_squares", *_least_squares_pair())
    again = losses.register_loss("pm_squares", *_least_squares_pair())  # the cell re-run
    assert first.generator is not again.generator
    assert losses.get("pm_squares").generator is again.generator
    assert losses.NAMES.count("pm_squares") == 1
    with pytest.raises(ValueError, match="loss 'pm_squares' is already registered"):
        losses.register_loss("pm_squares", lambda fake: fake, lambda real, fake: real)
    with pytest.raises(ValueError, match="loss 'hinge' is already registered"):
        losses.register_loss("hinge", *_least_squares_pair())
