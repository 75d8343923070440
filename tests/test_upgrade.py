"""A run started by kgan 0.1 resumes under the regrouped package.

`tests/data/run_v0_1` was written by kgan 0.1 (commit 0cdd1a0): `python train.py
--resolution 8 --base-filters 4 --max-filters 8 --latent-dim 4 --batch-size 16 --epochs 2
--steps-per-epoch 2 --no-export --num-samples 4 --ema-decay 0.9 --augment color --seed 3`,
keeping its config.json (DCGAN options at the top level) and the last resume checkpoint.
"""

import json
import pathlib
import shutil

import pytest

from kgan.cli.train import main
from kgan.training.config import TrainConfig

FIXTURE = pathlib.Path(__file__).parent / "data" / "run_v0_1"  # from any working folder


@pytest.fixture
def old_run(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    config = (run_dir / "config.json").read_text()
    config = config.replace("RUN_DIR", str(run_dir)).replace("EXPORT_DIR", str(tmp_path / "ex"))
    (run_dir / "config.json").write_text(config)
    return run_dir


def test_a_0_1_config_reads_with_dcgan_options_under_network_args(old_run):
    config = TrainConfig.load(old_run / "config.json")
    assert config.network == "dcgan"
    # Options added since (a conditional G's class input, D's minibatch stddev) take the
    # defaults that build 0.1's networks.
    assert config.network_args == {"base_filters": 4, "max_filters": 8, "spectral_norm": False,
                                   "conditioning": "multiply", "mbstd_group_size": 0}


def test_a_0_1_run_resumes_where_it_stopped(old_run, capsys):
    code = main(["--config", str(old_run / "config.json"), "--epochs", "3"])
    assert code == 0, capsys.readouterr().err
    assert "resuming at epoch 3, batch 0 (step 4)" in capsys.readouterr().out
    result = json.loads((old_run / "result.json").read_text())
    assert result["steps"] == 6 and result["epochs"] == 3
    saved = json.loads((old_run / "config.json").read_text())
    assert saved["network_args"]["base_filters"] == 4 and "base_filters" not in saved

