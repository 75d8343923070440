"""Train a GAN: `python train.py [--preset NAME] [--flags]`; see `--help`.

With no flags it trains the offline `digits` demo (a few minutes on a CPU) into
runs/digits, exports it to exports/digits/<version>, and prints the TensorBoard
command. Running the same command again resumes an interrupted run. TensorFlow's start-up
lines are hidden unless --debug (kgan.cli.quiet).
"""

import sys

from kgan.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
