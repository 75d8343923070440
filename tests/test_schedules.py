"""kgan.schedules: R3GAN's cosine ramps, Adam with a beta_2 ramp, and their round trips."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgan.gan import schedules


def test_cosine_ramps_from_start_to_end_then_holds():
    ramp = schedules.Cosine(2e-4, 5e-5, duration=100)
    values = [float(ramp(step)) for step in (0, 50, 100, 1000)]
    assert values == pytest.approx([2e-4, (2e-4 + 5e-5) / 2, 5e-5, 5e-5])
    quarter = 5e-5 + (2e-4 - 5e-5) * 0.5 * (1 + math.cos(math.pi / 4))
    assert float(ramp(25)) == pytest.approx(quarter, rel=1e-6)
    assert float(schedules.Cosine(0.0, 0.55, 10)(10)) == pytest.approx(0.55)  # ramps up too


def test_cosine_round_trips_through_keras_serialization():
    ramp = schedules.Cosine(0.1, 0.01, 40)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(ramp))
    assert isinstance(again, schedules.Cosine) and again.get_config() == ramp.get_config()


@pytest.mark.parametrize("bad", [dict(duration=0), dict(start=float("nan"))])
def test_cosine_refuses_bad_arguments(bad):
    with pytest.raises(ValueError, match="Cosine"):
        schedules.Cosine(**{"start": 1.0, "end": 0.0, "duration": 10, **bad})


def test_scheduled_adam_uses_the_current_beta_2_and_round_trips():
    optimizer = schedules.ScheduledAdam(1e-3, beta_1=0.0, beta_2=schedules.Cosine(0.9, 0.99, 4))
    variable = keras.Variable(np.ones(3, np.float32))
    optimizer.build([variable])
    assert float(optimizer.beta_2) == pytest.approx(0.9)
    for _ in range(4):
        optimizer.apply([tf.ones(3)], [variable])
    assert float(optimizer.beta_2) == pytest.approx(0.99)
    config = optimizer.get_config()
    again = schedules.ScheduledAdam.from_config(config)
    assert isinstance(again._beta_2_value, schedules.Cosine)
    assert keras.optimizers.serialize(again)["config"]["beta_2"] == config["beta_2"]


def test_scheduled_adam_with_a_float_beta_2_is_keras_adam():
    ours, theirs = schedules.ScheduledAdam(1e-2, beta_2=0.95), keras.optimizers.Adam(1e-2,
                                                                                     beta_2=0.95)
    results = []
    for optimizer in (ours, theirs):
        variable = keras.Variable(np.linspace(-1, 1, 4).astype("float32"))
        optimizer.build([variable])
        for step in range(3):
            optimizer.apply([tf.constant([0.1, -0.2, 0.3, 0.4]) * (step + 1)], [variable])
        results.append(variable.numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_weights_accept_numbers_and_schedules_and_refuse_the_rest():
    assert schedules.check_weight("r1_gamma", 1) == 1.0
    ramp = schedules.Cosine(1.0, 0.1, 5)
    assert schedules.check_weight("r1_gamma", ramp) is ramp
    for bad in (-1.0, float("inf"), "big", True):
        with pytest.raises(ValueError, match="r1_gamma must be a finite number >= 0"):
            schedules.check_weight("r1_gamma", bad)
