"""serving/client.py over REST in a fresh virtual environment holding only what
serving/README.md's "A light client" section installs: no TensorFlow, no Keras.

The section's commands run as written (in a copy of the package's files, so the build
writes nothing into the checkout), with pip's own configuration; the client then asks a
loopback TF Serving stand-in for images. About 15-30 s, most of it pip.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image
from serving_fakes import Backend, RestServer

from kgan.serving.export import ExportedGenerator, export_generator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "serving", "README.md")
# What `pip install --no-deps .` and the client read from a checkout.
SOURCES = ["pyproject.toml", "README.md", "kgan", os.path.join("serving", "client.py"),
           os.path.join("serving", "requirements-client.txt")]


def documented_commands() -> list[str]:
    """The shell lines of the README's light-client block, continuations joined."""
    section = Path(README).read_text(encoding="utf-8").split("### A light client", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)[1]
    lines = block.replace("\\\n", " ").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.strip()]


def test_the_readme_installs_no_tensorflow():
    commands = documented_commands()
    assert commands[0] == "python -m venv client-env"
    installs = [c for c in commands if " install " in c]
    assert installs == ["client-env/bin/pip install -r serving/requirements-client.txt",
                        "client-env/bin/pip install --no-deps ."]
    wanted = Path(REPO, "serving", "requirements-client.txt").read_text(encoding="utf-8")
    names = [re.split(r"[<>=\[ ]", line)[0].lower() for line in wanted.splitlines()
             if line.strip() and not line.startswith("#")]
    assert names == ["numpy", "pillow", "wrapt"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An unconditional 8x8 export behind a loopback REST server."""
    keras.utils.set_random_seed(2)
    z = keras.Input([4])
    x = keras.layers.Dense(64, activation="tanh",
                           kernel_initializer=keras.initializers.RandomNormal(stddev=3.0))(z)
    path = export_generator(keras.Model(z, keras.layers.Reshape([8, 8, 1])(x)),
                            tmp_path_factory.mktemp("exports"), "tiny")
    with RestServer(Backend("tiny", 1, path, labels={})) as rest:
        yield rest, ExportedGenerator(path)


def _copy_sources(target) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        source, copy = os.path.join(REPO, name), os.path.join(target, name)
        os.makedirs(os.path.dirname(copy), exist_ok=True)
        if os.path.isdir(source):
            shutil.copytree(source, copy, ignore=ignore)
        else:
            shutil.copy(source, copy)


def test_rest_client_runs_in_a_fresh_venv_without_tensorflow(server, tmp_path):
    rest, local = server
    checkout = tmp_path / "checkout"
    _copy_sources(checkout)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "KERAS", "TF_"))}
    *setup, run = documented_commands()
    for command in setup:
        argv = shlex.split(command)
        if argv[0] == "python":
            argv[0] = sys.executable  # the interpreter running the tests, as "python"
        done = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
    python = str(checkout / "client-env" / "bin" / "python")
    assert run.startswith("client-env/bin/python serving/client.py")
    # Nothing heavy came in: no TensorFlow, Keras, TFDS or system site-packages.
    probe = ("import importlib.util as u, sys; print([m for m in ('tensorflow', 'keras', "
             "'tensorflow_datasets', 'grpc') if u.find_spec(m)], sys.prefix != sys.base_prefix)")
    found = subprocess.run([python, "-c", probe], env=env, capture_output=True, text=True,
                           timeout=60)
    assert found.stdout.strip() == "[] True", found.stderr
    done = subprocess.run(
        [python, "serving/client.py", "--rest", rest.url, "--model", "tiny", "generate",
         "--seeds", "-2,5", "--grid", str(tmp_path / "grid.png")],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    expected = local.generate([-2, 5])["images"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "grid.png")),
                                  np.concatenate(expected[..., 0], axis=1))
    grpc = subprocess.run([python, "serving/client.py", "--grpc", "localhost:1", "--model",
                           "tiny", "status"], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=120)
    assert grpc.returncode == 2 and len(grpc.stderr.splitlines()) == 1, grpc.stderr[-2000:]
    assert "--grpc needs TensorFlow and tensorflow-serving-api (the full install" in grpc.stderr
