"""Writes tf_serving_ops.txt: the op names a TensorFlow release registers, read from its
wheel's generated op wrappers (`tensorflow/python/ops/gen_*_ops.py`, one
`_apply_op_helper("OpName", ...)` per op). tests/test_export.py checks that every op of an
export is in the list of the newest TF Serving release's TensorFlow (design.md: exports
must run there, while kgan trains on a newer TensorFlow).

    pip download --no-deps --only-binary=:all: tensorflow==2.20.0 -d /tmp/tf
    python tests/data/make_tf_serving_ops.py /tmp/tf/tensorflow-2.20.0-*.whl
"""

import re
import sys
import zipfile
from pathlib import Path

wheel = Path(sys.argv[1])
version = re.match(r"tensorflow-([0-9.]+)-", wheel.name).group(1)
ops = set()
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if re.search(r"/gen_[a-z0-9_]+\.py$", name):
            ops.update(re.findall(r'_apply_op_helper\(\s*"(\w+)"', archive.read(name).decode()))
out = Path(__file__).with_name("tf_serving_ops.txt")
out.write_text(f"# The ops TensorFlow {version} registers ({len(ops)}), from {wheel.name}\n"
               "# by tests/data/make_tf_serving_ops.py; TF Serving of the same version runs them.\n"
               + "".join(f"{op}\n" for op in sorted(ops)))
print(f"wrote {out}: {len(ops)} ops of TensorFlow {version}")
