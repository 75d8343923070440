"""`--steps-per-execution N`: several train steps per call into TensorFlow on one device."""

import json

from kgan.cli.train import main


def test_steps_per_execution_trains_and_checkpoints_like_one_step_calls(tmp_path, capsys):
    """Four steps per call into TensorFlow: the same number of steps, a backup taken when a
    multiple of --checkpoint-every is passed (here 3, crossed at step 4) and each epoch."""
    run_dir = tmp_path / "run"
    code = main(["--resolution", "8", "--network-args", "base_filters=4", "--latent-dim", "4",
                 "--batch-size", "16", "--epochs", "1", "--steps-per-epoch", "8",
                 "--checkpoint-every", "3", "--steps-per-execution", "4", "--no-export",
                 "--num-samples", "4", "--run-dir", str(run_dir)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((run_dir / "result.json").read_text())["steps"] == 8
    backups = sorted(p.name for p in (run_dir / "backup").glob("ckpt-*.index"))
    assert backups == ["ckpt-4.index", "ckpt-8.index"]
