"""Test session set-up: quiet TensorFlow and two logical CPUs for MirroredStrategy tests."""

import gc
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# `auto` stays float32 on every CPU here (kgan.training.distribute.cpu_policy), so results
# do not depend on whether the CI machine's CPU has bfloat16 units.
os.environ["KGAN_AUTO_CPU_BFLOAT16"] = "0"
# Image-folder scan results (kgan.data.scans) go to a folder of this session, not ~/.cache.
os.environ["KGAN_CACHE_DIR"] = tempfile.mkdtemp(prefix="kgan-test-cache-")
# Speed only, inherited by the processes tests start. The xdist workers already fill the
# cores, so TensorFlow runs each worker's ops on one thread instead of every worker
# spreading over all the cores (measured 9 % off a 2-worker run on 2 cores). XLA compiles
# tiny test programs quickly (no LLVM optimisation: compiling is their cost, not running).
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) >= (os.cpu_count() or 1):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                   "--xla_llvm_disable_expensive_passes=true")

import keras  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Grappler re-optimises every traced graph, and tracing is most of a tiny test's time
# (measured 15 % off the StyleGAN2 tests); the processes tests start keep it, as users do.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

# Must run before TensorFlow initialises its devices; every test then sees /cpu:0 and /cpu:1.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


# The modules that take longest (seconds of one worker, measured 2026-12-07), started
# first: the two xdist workers take whole files (--dist loadfile) in collection order
# (--no-loadscope-reorder), so a heavy file collected last would run alone at the end.
HEAVIEST_FIRST = ("test_backends.py", "test_training.py", "test_distribute.py",  # 218, 100, 78
                  "test_augment.py", "test_benchmarks.py", "test_demo.py", "test_export.py",
                  "test_gan.py", "test_export_stylegan2.py", "test_gpu_benchmark.py",
                  "networks/test_stylegan2.py", "networks/test_resnet.py", "test_train_cli.py",
                  "test_stylegan2_training.py", "test_lazy_imports.py", "networks/test_r3gan.py")


def _weight(item) -> int:
    path = item.nodeid.split("::", 1)[0].removeprefix("tests/")
    return HEAVIEST_FIRST.index(path) if path in HEAVIEST_FIRST else len(HEAVIEST_FIRST)


def pytest_collection_modifyitems(config, items):
    """Heavy modules first (a stable sort: the order inside a module stays); TensorFlow-only
    tests skip, with the reason, in a process on another backend."""
    items.sort(key=_weight)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow-only; this process runs Keras on {backend}")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module", autouse=True)
def _collect_garbage_per_module():
    """A full garbage collection after each module. TensorFlow's traced graphs leave large
    reference cycles; left to pile up across modules, one automatic collection took 36 s
    in the middle of an unrelated test (gc.callbacks, 2026-12-08)."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends under the float32 policy, whatever it switched to."""
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(scope="session")
def two_replicas():
    """Two devices: on TensorFlow one MirroredStrategy over the two logical CPUs, shared by
    every test; on JAX `keras.distribution.DataParallel` over two host devices
    (XLA_FLAGS=--xla_force_host_platform_device_count=2, set by tests/test_backends.py).
    Both have `scope()`.

    TensorFlow keys collective ops by instance numbers that each new strategy restarts,
    so two strategies in one process can collide ("Shape mismatch in the collective
    instance ..."); one shared strategy keeps counting.
    """
    if keras.backend.backend() == "jax":
        import jax

        if len(jax.devices()) < 2:
            pytest.skip("JAX sees one device: set XLA_FLAGS=--xla_force_host_platform_device_"
                        "count=2 before JAX starts")
        return keras.distribution.DataParallel(devices=jax.devices()[:2])
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
