"""What `kgan.GAN` checks and decides from its arguments, kept apart so model.py shows
the training step itself: validation with messages that say how to fix the input, the
one-D-pass choice, loss-scale wrapping, and the `LastValue` tracker."""

from __future__ import annotations

import warnings

import numpy as np
from keras import callbacks, layers, metrics, mixed_precision, ops, optimizers, saving

from kgan.gan import schedules


class LastValue(metrics.Metric):
    """Reports the latest value given, e.g. a loss scale or an augmentation probability.

    Averaging across replicas is harmless because every replica holds the same value.
    """

    def __init__(self, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.value = self.add_variable((), "zeros", dtype="float32", aggregation="mean")

    def update_state(self, value):
        self.value.assign(ops.cast(value, "float32"))

    def result(self):
        # A copy: on TensorFlow the variable itself would land in fit's epoch logs, and
        # the reset before validation would then log 0 for it.
        return ops.copy(self.value)

    def reset_state(self):
        self.value.assign(0.0)


def with_loss_scaling(optimizer):
    """Wraps an optimizer for dynamic loss scaling under mixed_float16 (design.md, rule 1)."""
    policy = mixed_precision.global_policy().name
    if policy == "mixed_float16" and not isinstance(optimizer, optimizers.LossScaleOptimizer):
        return optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def check_options(d_steps, ema_decay, ema_half_life, ema_rampup):
    """Validates the constructor's options; returns the EMA half-life (float, schedule,
    or None)."""
    if not isinstance(d_steps, (int, np.integer)) or d_steps < 1:
        raise ValueError(f"d_steps must be an integer >= 1, got {d_steps!r}.")
    if ema_decay is not None and not 0.0 < ema_decay < 1.0:  # 0 would copy G: say None
        raise ValueError(f"ema_decay must be in (0, 1), or None for no EMA generator, got "
                         f"{ema_decay!r}.")
    if ema_half_life is None:
        if ema_rampup is not None:
            raise ValueError("ema_rampup needs ema_half_life (the half-life it ramps up to).")
        return None
    if ema_decay is not None:
        raise ValueError("Pass ema_decay or ema_half_life, not both.")
    if ema_rampup is not None and not 0.0 < ema_rampup <= 1.0:
        raise ValueError(f"ema_rampup must be in (0, 1] or None, got {ema_rampup!r}.")
    return schedules.check_weight("ema_half_life", ema_half_life)


def check_augment_schedule(schedule, augment):
    if schedule is None:
        return None
    if augment is None:
        raise ValueError("augment_probability needs an augmentation: pass augment= to GAN.")
    if isinstance(schedule, dict):
        schedule = saving.deserialize_keras_object(schedule)
    if not callable(schedule):
        raise ValueError("augment_probability must be a schedule of the step (e.g. "
                         f"kgan.schedules.Cosine(0.0, 0.55, steps)), got {schedule!r}.")
    return schedule


def check_interval(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)


def choose_single_pass(choice, discriminator) -> bool:
    cross = cross_sample_layers(discriminator)
    if choice == "auto":
        return not cross
    if choice is True and cross:
        raise ValueError(
            f"single_d_pass=True needs a discriminator without cross-sample layers; this "
            f"one has {', '.join(cross)}, whose statistics would mix real and fake. Use "
            "single_d_pass='auto'.")
    if choice not in (True, False):
        raise ValueError(f"single_d_pass must be 'auto', True or False, got {choice!r}.")
    return choice


def cross_sample_layers(model) -> list[str]:
    """Names of layers whose output for one example depends on the others in the batch."""
    found = [model.name] if getattr(model, "cross_sample", False) else []
    for layer in getattr(model, "layers", []):
        inner = getattr(layer, "layer", layer)  # wrappers (spectral norm) hold a layer
        if isinstance(inner, layers.BatchNormalization) or getattr(layer, "cross_sample", False):
            found.append(layer.name)
        elif hasattr(layer, "layers"):
            found += cross_sample_layers(layer)
    return found


def is_keras_object(value) -> bool:
    return hasattr(value, "get_config")


def is_serialized(value) -> bool:
    return isinstance(value, dict) and "class_name" in value


SINGLE_OPTIMIZER_CALLBACKS = (callbacks.LearningRateScheduler, callbacks.ReduceLROnPlateau)


def refuse_single_optimizer_callbacks(given) -> None:
    for callback in given or []:
        if isinstance(callback, SINGLE_OPTIMIZER_CALLBACKS):
            raise ValueError(
                f"{type(callback).__name__} changes model.optimizer, which a GAN does not "
                "train with (it has d_optimizer and g_optimizer), so it would change nothing. "
                "Give each optimizer a learning-rate schedule instead, e.g. "
                "keras.optimizers.Adam(kgan.schedules.Cosine(2e-4, 5e-5, steps)).")


def check_networks(generator, discriminator, latent_dim, num_classes):
    for name, network in (("generator", generator), ("discriminator", discriminator)):
        if getattr(network, "inputs", None) is None:
            raise ValueError(
                f"The {name} ({type(network).__name__}) has no known inputs: kgan.GAN needs "
                "functional or Sequential networks that start with keras.Input(shape), so it "
                "can check their shapes (a subclassed model: wrap it, e.g. "
                "keras.Sequential([keras.Input(shape), model])).")
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
    d_out = tuple(discriminator.output_shape[1:])
    if d_out not in ((1,), ()):
        raise ValueError(
            f"The discriminator outputs shape {d_out} per image; kgan's losses take one "
            "logit per image, shape (1,): end it with keras.layers.Dense(1) and no "
            "activation (the losses apply the sigmoid themselves)."
        )


def check_batch_shape(shape, image_shape):
    shape = tuple(shape)
    if shape == tuple(image_shape):
        raise ValueError(
            f"The data yields single images of shape {shape}, not batches: batch the "
            "dataset, e.g. dataset.batch(64, drop_remainder=True) (kgan.data.load batches).")
    if len(shape) and shape[1:] != tuple(image_shape) and None not in shape[1:]:
        raise ValueError(
            f"The data has images of shape {tuple(shape[1:])} but the networks expect "
            f"{tuple(image_shape)}. Load the data at this resolution and channel count "
            "(e.g. kgan.data.load(..., resolution=..., channels=...))."
        )


def check_labels_shape(shape, num_classes: int) -> None:
    """Class indices [N] (or [N, 1]); one-hot labels get the conversion to use."""
    shape = tuple(shape)
    if len(shape) == 2 and shape[1] not in (1, None):
        raise ValueError(
            f"The labels have shape {shape}, one row of {shape[1]} per image (one-hot?); "
            f"the GAN takes class indices in [0, {num_classes}), shape (N,): pass "
            "labels.argmax(-1).")


def check_array_data(images, labels, num_classes: int | None, method: str = "fit") -> None:
    """What `fit` (or `evaluate`: `method`) can check on NumPy data before the first step:
    images are floats in [-1, 1] (the generator's tanh range), finite; labels are class
    indices in range, and only given to a conditional GAN."""
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(
            f"{method}() got images of dtype {images.dtype}; the GAN trains on floats in "
            "[-1, 1], the range of the generator's tanh: pass x.astype('float32') / 127.5 - 1 for "
            "[0, 255] images, or kgan.data.from_arrays(x), which scales and batches them.")
    low, high = float(np.min(images)), float(np.max(images))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{method}() got images with NaN or infinite values.")
    if low < -1.001 or high > 1.001:
        raise ValueError(
            f"{method}() got images in [{low:g}, {high:g}]; the GAN trains on [-1, 1], the "
            "range of the generator's tanh (D would tell real from fake by range alone): use "
            "x / 127.5 - 1 for [0, 255] data, or kgan.data.from_arrays(x).")
    if low >= 0:
        warnings.warn(
            f"{method}() got images in [{low:g}, {high:g}], none negative: if they are in "
            "[0, 1], scale them to [-1, 1] (x * 2 - 1), the range of the generator's tanh.",
            UserWarning, stacklevel=3)
    if labels is not None and not num_classes:
        raise ValueError(f"{method}() got labels, but this GAN is unconditional "
                         "(num_classes=None) and would ignore them: drop y, or build the "
                         "networks and the GAN with num_classes to condition on them.")
    if num_classes and labels is not None:
        labels = np.asarray(labels)
        check_labels_shape(labels.shape, num_classes)
        numeric = np.issubdtype(labels.dtype, np.number) and len(labels)
        whole = numeric and np.array_equal(labels, np.round(labels))  # 2.0 is class 2
        if not whole or labels.min() < 0 or labels.max() >= num_classes:
            found = f"[{labels.min()}, {labels.max()}]" if numeric else str(labels.dtype)
            raise ValueError(f"{method}() got labels {found}; a GAN with "
                             f"num_classes={num_classes} takes integer class indices in "
                             f"[0, {num_classes}).")


class OptimizerPair:
    """`GAN.optimizer`: the discriminator's and the generator's optimizers as the one
    `model.optimizer` Keras's trainers expect. Its `variables` (both optimizers') are
    part of the state that JAX's stateless `train_step(state, data)` threads; Keras's
    learning-rate callbacks visit `optimizers` one by one; `iterations` counts G steps.
    Not saved itself: `d_optimizer` and `g_optimizer` are saved as the GAN's attributes.
    """

    def __init__(self, d_optimizer, g_optimizer):
        self.optimizers = [d_optimizer, g_optimizer]

    @property
    def variables(self) -> list:
        return [v for optimizer in self.optimizers for v in optimizer.variables]

    @property
    def iterations(self):
        return self.optimizers[1].iterations

    @property
    def built(self) -> bool:
        return all(optimizer.built for optimizer in self.optimizers)

    def build(self, variables=None) -> None:
        """Both are built by `GAN.build_for_training` (each for its own network)."""

    def finalize_variable_values(self, variables) -> None:
        for optimizer in self.optimizers:
            optimizer.finalize_variable_values(variables)
