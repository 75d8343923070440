"""Training schedules: values that ramp over a run, as pure functions of a step counter.

R3GAN (Huang et al., 2024) trains with cosine ramps over the run for the learning rate
(2e-4 -> 5e-5), Adam's beta_2 (0.9 -> 0.99), the R1/R2 weight gamma (e.g. 0.05 ->
0.005) and the augmentation probability (0 -> 0.55), and an EMA half-life that grows from
zero. Each schedule here is a Keras-serialisable `LearningRateSchedule` of an integer step
(an optimizer's `iterations`, or the GAN's `step_counter`), so it is saved with the model
and, being stateless, continues exactly where a resumed run left off.

Example:
    >>> lr = Cosine(2e-4, 5e-5, duration=10_000)        # optimizer steps
    >>> d_opt = ScheduledAdam(lr, beta_1=0.0, beta_2=Cosine(0.9, 0.99, 10_000))
    >>> float(lr(10_000))
    5e-05
"""

from __future__ import annotations

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kgan")
class Cosine(keras.optimizers.schedules.LearningRateSchedule):
    """`start` -> `end` along half a cosine over `duration` steps, then `end`.

    value(t) = end + (start - end) * (1 + cos(pi * min(t / duration, 1))) / 2, the
    `cosine_scheduler` of the R3GAN reference; ramps up when end > start.
    """

    def __init__(self, start: float, end: float, duration: int):
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError(f"Cosine start and end must be finite, got {start}, {end}.")
        if int(duration) < 1:
            raise ValueError(f"Cosine duration must be >= 1 step, got {duration}.")
        self.start = float(start)
        self.end = float(end)
        self.duration = int(duration)

    def __call__(self, step):
        progress = ops.minimum(ops.cast(step, "float32") / float(self.duration), 1.0)
        return self.end + (self.start - self.end) * 0.5 * (1.0 + ops.cos(math.pi * progress))

    def get_config(self) -> dict:
        return {"start": self.start, "end": self.end, "duration": self.duration}


def value_at(value, step):
    """A float, or a schedule evaluated at `step`, as a float32 tensor."""
    if callable(value):
        return ops.cast(value(step), "float32")
    return ops.convert_to_tensor(float(value), "float32")


def is_active(value) -> bool:
    """True for a schedule or a positive float: whether a weighted term must be computed."""
    return callable(value) or float(value) > 0


def check_weight(name: str, value) -> object:
    """Validates a float >= 0 or a schedule (e.g. a penalty weight)."""
    if isinstance(value, dict):
        value = keras.saving.deserialize_keras_object(value)
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0 or a schedule "
                         f"(kgan.schedules.Cosine), got {value!r}.")
    return float(value)


@keras.saving.register_keras_serializable(package="kgan")
class ScheduledAdam(keras.optimizers.Adam):
    """Adam whose `beta_2` may be a schedule of the optimizer's iterations (R3GAN's
    0.9 -> 0.99 ramp); with a float it is plain `keras.optimizers.Adam`.

    Bias correction uses the current beta_2, as PyTorch's Adam does when a training loop
    edits `param_groups[...]["betas"]` between steps.
    """

    @property
    def beta_2(self):
        value = self._beta_2_value
        return value(self.iterations) if callable(value) else value

    @beta_2.setter
    def beta_2(self, value):
        if isinstance(value, dict):
            value = keras.saving.deserialize_keras_object(value)
        self._beta_2_value = value

    def get_config(self) -> dict:
        config = super().get_config()
        value = self._beta_2_value
        config["beta_2"] = keras.saving.serialize_keras_object(value) if callable(value) else value
        return config
