"""The README's training commands work as written.

Every `python train.py ...` line in the README's code blocks is parsed as kgan-train
parses it, resolved to its config and checked against its data, in a folder that holds
what the README's examples name (`./faces`: a flat folder of photos). Commands whose data
needs a download (TFDS names such as mnist or cifar10) stop at the config; every other
command must get as far as a first batch of the right shape.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kgan.cli.train import build_parser, config_from_args
from kgan.training import backend, inputs
from kgan.training.config import TrainConfig

README = Path(__file__).resolve().parents[1] / "README.md"
OFFLINE = ("digits",)  # names whose data ships with a package kgan depends on


def readme_train_commands() -> list[str]:
    """The argument strings of every `python train.py` line in the README's code blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if "python train.py" in line:
                commands.append(line.split("python train.py", 1)[1].strip())
    # Commands in the prose (`python train.py --preset faces64 --dataset ./faces`).
    for inline in re.findall(r"`python train\.py([^`]*)`", README.read_text().replace("\n", " ")):
        commands.append(" ".join(inline.split()))
    return sorted(set(commands))


def faces(folder: Path, count: int = 64) -> None:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"face_{index}.jpg")


def test_the_readme_has_training_commands():
    commands = readme_train_commands()
    assert "" in commands and any("--dataset ./faces" in c for c in commands), commands


@pytest.mark.parametrize("command", readme_train_commands())
def test_a_readme_training_command_resolves_and_finds_its_data(command, tmp_path,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    faces(tmp_path / "faces")
    argv = shlex.split(command.replace("~", str(tmp_path)))
    args = build_parser().parse_args(argv)
    config = backend.resolve(config_from_args(args))
    assert isinstance(config, TrainConfig)
    if getattr(args, "dry_run", False) or not (
            os.path.exists(config.dataset) or config.dataset in OFFLINE):
        return  # a TFDS name: its data comes from a download
    info, steps = inputs.data_info(config)
    assert steps >= 1
    batch = next(iter(inputs.load(config, seed=0)))
    images = batch[0] if isinstance(batch, (tuple, list)) else batch
    assert tuple(images.shape[1:]) == (config.resolution, config.resolution, config.channels)
