"""Console entry points (kgan-train, kgan-export, kgan-evaluate).

Importing this package quiets TensorFlow's C++ start-up logs (unless the user set
TF_CPP_MIN_LOG_LEVEL): `import kgan` loads no TensorFlow, so this runs before it does.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
