"""StyleGAN2's backend-neutral tests, run again in a JAX process (see test_backends.py);
a module of its own so the suite's two workers share the JAX runs."""

import keras
import pytest
from test_backends import run_neutral_tests_on_jax

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="compares the JAX backend with this TensorFlow session")


@pytest.mark.slow  # 4-10 minutes of JAX compiles on 2 cores: kept out of the default suite
def test_stylegan2_backend_neutral_tests_pass_on_jax():
    run_neutral_tests_on_jax("tests/networks/test_stylegan2.py",
                             "tests/test_stylegan2_training.py")
