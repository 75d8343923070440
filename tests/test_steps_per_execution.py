"""`--steps-per-execution N`: several train steps per call into TensorFlow on one device."""

import json

from tensorboard.backend.event_processing import event_accumulator

from kgan.cli.train import main


def test_steps_per_execution_trains_and_checkpoints_like_one_step_calls(tmp_path, capsys):
    """Four steps per call into TensorFlow: the same number of steps, a backup taken when a
    multiple of --checkpoint-every is passed (here 3, crossed at step 4) and each epoch,
    and batch scalars whenever a multiple of --log-every-n-steps is passed."""
    run_dir = tmp_path / "run"
    code = main(["--resolution", "8", "--network-args", "base_filters=4", "--latent-dim", "4",
                 "--batch-size", "16", "--epochs", "1", "--steps-per-epoch", "8",
                 "--checkpoint-every", "3", "--steps-per-execution", "4", "--no-export",
                 "--log-every-n-steps", "3",
                 "--num-samples", "4", "--run-dir", str(run_dir)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((run_dir / "result.json").read_text())["steps"] == 8
    backups = sorted(p.name for p in (run_dir / "backup").glob("ckpt-*.index"))
    assert backups == ["ckpt-4.index", "ckpt-8.index"]
    # The callbacks see steps 4 and 8 only: 3 is passed at 4, 6 at 8.
    batch = event_accumulator.EventAccumulator(str(run_dir / "logs" / "batch")).Reload()
    assert [event.step for event in batch.Tensors("d_loss")] == [4, 8]
