"""kgan's commands print their own lines, not TensorFlow's start-up noise (unless --debug)."""

import os
import subprocess
import sys
import warnings

import pytest

from kgan.cli import quiet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Seen on TensorFlow 2.21 (CPU machine, CUDA build) before any kgan output.
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796526300.739444    4323 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results",
    "I0000 00:00:1796526300.739838    4323 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "I0000 00:00:1796526300.859109    4323 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1796526305.333528    4323 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "W0000 00:00:1723456789.123456    1234 cuda_dnn.cc:8310] Unable to register cuDNN factory",
]


@pytest.mark.parametrize("line", NOISE)
def test_start_up_lines_are_noise(line):
    assert quiet.is_noise(line + "\n")


@pytest.mark.parametrize("line", [
    "kgan-export: error: cannot load x.keras",
    "E0000 00:00:1796526305.333528    4323 op_kernel.cc:1840] OP_REQUIRES failed: OOM",
    "Traceback (most recent call last):",
])
def test_other_lines_are_kept(line):
    assert not quiet.is_noise(line + "\n")


def test_the_environment_is_left_alone_with_debug_or_a_users_setting(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv("GRPC_VERBOSITY", raising=False)
    quiet.quiet_tensorflow(debug=True, load=False)
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    quiet.quiet_tensorflow(load=False)
    assert (os.environ["TF_CPP_MIN_LOG_LEVEL"], os.environ["GRPC_VERBOSITY"]) == ("3", "ERROR")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    monkeypatch.delenv("GRPC_VERBOSITY")
    quiet.quiet_tensorflow(load=False)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0" and "GRPC_VERBOSITY" not in os.environ


FILTER = """
import os, sys
from kgan.cli import quiet
with quiet._filtered_stderr():
    os.write(2, sys.argv[1].encode())
    print("python line", file=sys.stderr)
print("after", file=sys.stderr)
"""


def test_the_filter_drops_noise_written_to_file_descriptor_2_and_keeps_the_rest():
    written = "\n".join([*NOISE, "a real problem", ""])
    done = subprocess.run([sys.executable, "-c", FILTER, written], capture_output=True,
                          text=True, timeout=60, env=_environment())
    assert done.returncode == 0
    assert done.stderr == "a real problem\npython line\nafter\n"


def _environment():
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    return env


def _run(module, *argv, cwd):
    """Runs kgan-<module> in a fresh process; (its result, whether it loaded TensorFlow)."""
    code = (f"import sys\nfrom kgan.cli.{module} import main\nstatus = main()\n"
            "print('tensorflow' in sys.modules)\nsys.exit(status)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=300, env=_environment(), cwd=cwd)
    return done, done.stdout.splitlines()[-1] == "True"


def test_kgan_export_error_after_tensorflow_loads_is_its_only_line(tmp_path):
    (tmp_path / "broken.keras").write_bytes(b"not a zip file")
    done, loaded = _run("export", "broken.keras", "exports", cwd=tmp_path)
    assert done.returncode == 2 and loaded  # the error came after TensorFlow loaded
    assert done.stderr.startswith("kgan-export: error: broken.keras is not a readable .keras "
                                  "file: a .keras file is a zip archive")
    assert done.stderr.count("\n") == 1, done.stderr


def test_kgan_train_error_after_tensorflow_loads_is_its_only_line(tmp_path):
    done, loaded = _run("train", "--preset", "digits", "--dataset", "no_such_dataset_xyz",
                        "--run-dir", "run", cwd=tmp_path)
    assert done.returncode == 2 and loaded
    assert done.stderr.startswith("kgan-train: error: 'no_such_dataset_xyz'"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert os.listdir(tmp_path) == []


def test_kgan_warnings_print_as_one_plain_line(capsys, monkeypatch):
    others = []
    monkeypatch.setattr(warnings, "showwarning", lambda *args: others.append(args[:2]))
    quiet._plain_kgan_warnings()
    quiet._plain_kgan_warnings()  # once is enough: no second wrapper
    from kgan.data import SkippedImagesWarning

    warnings.showwarning("5 usable images in faces; 1 skipped", SkippedImagesWarning,
                         "kgan/training/runner.py", 192)
    warnings.showwarning("other", DeprecationWarning, "elsewhere.py", 3)
    assert capsys.readouterr().err == "kgan: warning: 5 usable images in faces; 1 skipped\n"
    assert others == [("other", DeprecationWarning)]  # the others keep Python's format
