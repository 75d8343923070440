"""Train a GAN: `python train.py [--preset NAME] [--flags]`; see `--help`.

With no flags it trains the offline `digits` demo (a few minutes on a CPU) into
runs/digits, exports it to exports/digits/<version>, and prints the TensorBoard
command. Running the same command again resumes an interrupted run.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

from kgan.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
