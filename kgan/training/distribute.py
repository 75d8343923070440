"""Picks the distribution (tf.distribute on TensorFlow, keras.distribution on JAX, one
process or a cluster), the dtype policy and XLA for the machine at hand.

Call `setup()` once, before building any model, then build and compile inside
`env.strategy.scope()`:

    from kgan.training import distribute
    env = distribute.setup()                 # auto: TPU, workers, GPUs or one device
    with env.strategy.scope():
        gan = kgan.GAN(*kgan.networks.get("dcgan")(32, 1, 64), latent_dim=64)
        gan.compile(..., jit_compile=env.jit_compile)
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from kgan.training import cluster
from kgan.training.config import POLICIES, STRATEGIES
from kgan.training.errors import RunError

# Tensor cores arrive with Volta; older GPUs gain nothing from float16 compute.
_MIN_FLOAT16_CAPABILITY = (7, 0)
# bfloat16 tensor cores arrive with Ampere: same range as float32, so no loss scaling.
_MIN_BFLOAT16_CAPABILITY = (8, 0)
# CPU instructions (/proc/cpuinfo flags) under which mixed_bfloat16 trains faster than
# float32 on TensorFlow (oneDNN), with kgan's step, and quality holds (benchmarks/RESULTS.md):
# Intel AMX: 1.57-1.59x (DCGAN 32 px, 2026-11-27); AVX512_BF16 without AMX (2 cores of an
# AMD EPYC): 1.30x the steps in 10 minutes of the fashion_mnist preset, FD 1.57 vs 1.68
# (2026-12-06).
FAST_CPU_BFLOAT16 = ("amx_bf16", "avx512_bf16")
# Set to 0 to keep `auto` at float32 on every CPU (the test suite does: its results must
# not depend on the CPU it lands on).
CPU_BFLOAT16_ENV = "KGAN_AUTO_CPU_BFLOAT16"


@dataclass(frozen=True)
class Setup:
    """What `setup()` chose: use `strategy.scope()` and pass `jit_compile` to compile."""

    strategy: tf.distribute.Strategy
    policy: str
    jit_compile: bool
    # Where `to_device` stages batches: the GPU of a one-GPU run. Distributed strategies
    # prefetch onto each replica's device in their own iterators; the default strategy
    # hands `fit` host tensors, which each step would copy while the GPU waits.
    input_device: str | None = None
    # Why `auto` picked the policy ("" when it was named), for the run's first line.
    policy_reason: str = ""
    # Why XLA is off where it was asked for or `auto` would turn it on ("" otherwise).
    jit_reason: str = ""

    @property
    def num_replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def chief(self) -> bool:
        """Whether this process writes the run's files: all but the other workers of a
        multi-worker run."""
        return bool(self.strategy.extended.should_checkpoint)

    @property
    def worker_index(self) -> int:
        """This worker's rank in the cluster (0 = chief; 0 outside multi-worker runs)."""
        if hasattr(self.strategy, "worker_index"):  # JAX: the process index
            return self.strategy.worker_index
        return cluster.rank(cluster.tf_config())

    @property
    def num_workers(self) -> int:
        if hasattr(self.strategy, "num_workers"):  # JAX: the processes
            return self.strategy.num_workers
        return cluster.num_processes(cluster.tf_config()) or 1

    def sum_over_workers(self, values: list[float]) -> np.ndarray:
        """`values` summed over the workers of a multi-worker run (every worker must
        call it, at the same point): how they agree on stopping."""
        if hasattr(self.strategy, "sum_over_workers"):
            return self.strategy.sum_over_workers(values)
        if self.num_workers == 1:
            return np.asarray(values, np.float32)
        mine = tf.constant(values, tf.float32)
        parts = self.strategy.experimental_distribute_values_from_function(lambda _: mine)
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, parts, axis=None).numpy()


def setup(
    strategy: str = "auto",
    mixed_precision: str = "auto",
    jit_compile: str | bool = "auto",
    devices: list[str] | None = None,
) -> Setup:
    """Chooses and activates a strategy, a global dtype policy and XLA.

    Args:
        strategy: `auto` (TPU if configured, MultiWorkerMirrored if TF_CONFIG names
            several workers, Mirrored for several GPUs, else one device; on JAX, data
            parallel over this host's devices, or over every process's when TF_CONFIG
            names several workers) or one of `one_device`, `mirrored`, `multi_worker`,
            `tpu`.
        mixed_precision: `auto` (mixed_bfloat16 on TPUs, GPUs of compute capability
            >= 8.0 and CPUs with AMX or AVX512_BF16, mixed_float16 on 7.x, float32
            otherwise; `Setup.policy_reason` says which applied), `float32`,
            `mixed_float16` or `mixed_bfloat16`. Set as the Keras global policy.
        jit_compile: `auto` (XLA on GPU), True or False.
        devices: devices for `mirrored` (default: all GPUs), e.g. ["/cpu:0", "/cpu:1"].

    Returns:
        A `Setup` with the strategy, the policy name and the XLA choice.

    Raises:
        ValueError: for an unknown strategy or policy name.
    """
    strategy = _check_choice("strategy", strategy, STRATEGIES)
    mixed_precision = _check_choice("mixed_precision", mixed_precision, POLICIES)
    if keras.backend.backend() == "jax":
        return _setup_jax(strategy, mixed_precision, jit_compile)
    if strategy == "auto":
        strategy = _auto_strategy()
    chosen = _make_strategy(strategy, devices)
    policy, reason = (_auto_policy(strategy) if mixed_precision == "auto"
                      else (mixed_precision, ""))
    keras.mixed_precision.set_global_policy(policy)
    jit = _gpus_present() if jit_compile == "auto" else bool(jit_compile)
    device = _single_gpu() if strategy == "one_device" else None
    return Setup(strategy=chosen, policy=policy, jit_compile=jit, input_device=device,
                 policy_reason=reason)


class JaxDataParallel:
    """`keras.distribution.DataParallel` (or one device) behind the part of the
    `tf.distribute.Strategy` interface a run uses: `scope()`, `num_replicas_in_sync`,
    `extended.should_checkpoint`. The JAX step is one SPMD program over the global batch;
    in a multi-process run (`join_jax_cluster`) its mesh spans every process's devices,
    Keras feeds each process its slice of the global batch, and process 0 is the chief."""

    def __init__(self, devices: list):
        import jax

        self.devices = devices
        self.distribution = (keras.distribution.DataParallel(devices=devices)
                             if len(devices) > 1 else None)
        self.num_replicas_in_sync = len(devices)
        self.extended = self  # should_checkpoint: one process writes
        self.num_workers = jax.process_count()
        self.worker_index = jax.process_index()
        self.should_checkpoint = self.worker_index == 0

    def scope(self):
        if self.distribution is None:
            return contextlib.nullcontext()
        return self.distribution.scope()

    def sum_over_workers(self, values: list[float]) -> np.ndarray:
        """`values` summed over every process (a collective: all must call it)."""
        from jax.experimental import multihost_utils

        mine = np.asarray(values, np.float32)
        if self.num_workers == 1:
            return mine
        return np.asarray(multihost_utils.process_allgather(mine)).sum(axis=0)


def join_jax_cluster() -> None:
    """Starts JAX's multi-process runtime (`jax.distributed.initialize`) from TF_CONFIG
    (`cluster.jax_cluster`), so one cluster description serves both backends; without TF_CONFIG,
    JAX detects the cluster itself (SLURM, Open MPI, Cloud TPU). CPU devices exchange
    their collectives over gloo."""
    import jax

    if jax.distributed.is_initialized():
        return
    # Before any backend starts: the CPU client picks its collectives when created.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    where = cluster.jax_cluster(cluster.tf_config())
    if where is not None:
        print(f"kgan: joining JAX's cluster as process {where['process_id']} of "
              f"{where['num_processes']} (coordinator {where['coordinator_address']}); "
              "waiting up to 5 minutes for the others", flush=True)
        jax.distributed.initialize(**where)
        return
    try:
        jax.distributed.initialize()
    except (ValueError, RuntimeError) as error:
        raise ValueError(
            "--strategy multi_worker on JAX needs the cluster: set TF_CONFIG on every "
            "machine (README: Training on N machines) or run under a scheduler JAX "
            f"detects (SLURM, Open MPI) ({' '.join(str(error).split())[:200]})") from None


def _setup_jax(strategy: str, mixed_precision: str, jit_compile) -> Setup:
    """JAX: data parallel over the accelerators (or CPU devices) of this host, or of every
    process of a cluster (TF_CONFIG naming several workers, or `multi_worker`), mixed
    precision as on TensorFlow, always XLA (jax.jit) unless jit_compile is off."""
    import jax

    if strategy == "tpu":
        raise ValueError(
            "strategy tpu is TensorFlow's (TPUStrategy); on JAX, TPUs are JAX devices: use "
            "--strategy auto (data parallel over them), or --backend tensorflow.")
    several = cluster.num_processes(cluster.tf_config()) > 1
    if strategy == "multi_worker" or (strategy == "auto" and several):
        join_jax_cluster()
    # TensorFlow feeds and checkpoints JAX from the CPU: keep it off the GPUs (once it
    # has started, RuntimeError, the allow-growth of kgan/__init__ applies instead).
    with contextlib.suppress(RuntimeError):
        tf.config.set_visible_devices([], "GPU")
    devices = jax.devices()
    if strategy == "one_device" or (strategy == "auto" and len(devices) == 1):
        if jax.process_count() > 1:
            raise ValueError(f"strategy one_device cannot span the {jax.process_count()} "
                             "processes of this cluster: use --strategy auto")
        devices = devices[:1]
    chosen = JaxDataParallel(list(devices))
    reason = ""
    if mixed_precision == "auto":
        capabilities = [tuple(int(x) for x in str(d.compute_capability).split(".")[:2])
                        for d in devices if d.platform == "gpu"]
        # XLA:CPU has no oneDNN bfloat16 kernels: float32 on every CPU.
        mixed_precision, reason = (gpu_policy(capabilities) if capabilities
                                   else ("float32", "auto: float32 on CPUs under JAX"))
    keras.mixed_precision.set_global_policy(mixed_precision)
    jit = True if jit_compile == "auto" else bool(jit_compile)
    return Setup(strategy=chosen, policy=mixed_precision, jit_compile=jit, policy_reason=reason)


def to_device(dataset: tf.data.Dataset, device: str | None, buffer_size: int = 2
              ) -> tf.data.Dataset:
    """`dataset`, copied to `device` and prefetched there (`buffer_size` batches ahead), so
    the host-to-device copy of the next batches overlaps the current step; unchanged
    when `device` is None.

    `copy_to_device` followed by `prefetch` in that device's scope: the form TensorFlow
    documents, which (unlike `prefetch_to_device` alone) really prefetches on the device
    in TF 2 (tensorflow/tensorflow#43905). It must be the pipeline's last step.
    """
    if device is None:
        return dataset
    with tf.device(device):
        return dataset.apply(tf.data.experimental.copy_to_device(device)).prefetch(buffer_size)


def check_global_batch(batch_size: int, num_replicas: int) -> int:
    """Returns the per-replica batch, or says how to fix a batch that does not divide.

    Left alone, TensorFlow fails mid-step with "AddN must have the same size and shape".
    """
    if batch_size < num_replicas or batch_size % num_replicas:
        lower = max(num_replicas, batch_size - batch_size % num_replicas)
        fewer = max(n for n in range(1, num_replicas) if batch_size % n == 0)
        visible = ",".join(map(str, range(fewer)))
        devices = ("--strategy one_device" if fewer == 1 else
                   f"{fewer} of them (e.g. CUDA_VISIBLE_DEVICES={visible})")
        raise ValueError(
            f"The global batch size {batch_size} does not split evenly across "
            f"{num_replicas} replicas. Use a multiple of {num_replicas}, e.g. {lower} or "
            f"{lower + num_replicas}, or (a resumed run keeps its batch size) train on "
            f"{devices}."
        )
    return batch_size // num_replicas


def _check_choice(what: str, value, valid: tuple[str, ...]) -> str:
    key = str(value).lower().replace("-", "_")
    if key not in valid:
        raise ValueError(f"Unknown {what} {value!r}. Valid choices: {', '.join(valid)}.")
    return key


def _gpus_present() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def _single_gpu() -> str | None:
    gpus = tf.config.list_logical_devices("GPU") if _gpus_present() else []
    return gpus[0].name if len(gpus) == 1 else None


def _tpu_configured() -> bool:
    # Physical, not logical devices: listing logical ones starts the TF runtime, after
    # which MultiWorkerMirroredStrategy can no longer configure collective ops.
    return bool(os.environ.get("TPU_NAME") or tf.config.list_physical_devices("TPU"))


def lost_worker_error(error: tf.errors.OpError, env: Setup, latest: str | None
                      ) -> RunError | None:
    """One line naming the lost worker when collectives were aborted (a peer stopped
    sending heartbeats to the coordination service) or failed to connect; None for
    other errors and single-worker runs."""
    lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError, tf.errors.AbortedError)
    if env.num_workers < 2 or not isinstance(error, lost):
        return None
    text = error.message or str(error)
    tasks = sorted(set(re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text)))
    config = cluster.tf_config()
    who = ", ".join(cluster.describe_task(config, job, int(index)) for job, index in tasks)
    line = next((line for line in text.splitlines() if not line.startswith((" ", "\t"))
                 and re.search(r"unhealthy|unavailable|timed out|deadline|abort|connect",
                               line, re.I)), text)
    # "Collective ops is aborted by: Error reported from ...: <the cause>:" -> the cause
    parts = [part.strip(" :") for part in line.split(": ") if part.strip(" :")]
    cause = " ".join((parts[-1] if parts else line).split())[:200]
    return RunError(f"lost {who or 'another worker'} ({cause[:1].lower()}{cause[1:]}); the "
                    f"last checkpoint is {latest or 'none yet'}: start every worker again "
                    "with the same command to resume")


def lost_jax_worker_error(error: Exception, env: Setup, latest: str | None
                          ) -> RunError | None:
    """One line for a multi-process JAX run whose collective failed because a process
    went away (gloo or NCCL lost its peer); None for other errors and single runs."""
    if env.num_workers < 2:
        return None
    # A JaxRuntimeError, or the ValueError Keras re-raises it as from a callback.
    text = " ".join(str(error).split())
    if not re.search(r"\b(gloo|nccl)\b.*failed|closed by peer|heartbeat", text, re.I):
        return None
    # "UNKNOWN: Gloo AllGather failed: [external/.../pair.cc:547] Connection closed by peer
    # [127.0.0.1]:12185" -> "Gloo AllGather failed: connection closed by peer [127.0.0.1]:12185"
    cause = re.sub(r"^[A-Z_]+: ", "", re.sub(r"\[[^\]]*\.cc:\d+\] ", "", text))[:200]
    lost = RunError(f"lost another process of this JAX cluster ({cause}); the last checkpoint "
                    f"is {latest or 'none yet'}: start every worker again with the same "
                    "command to resume")
    # JAX's runtime now waits at exit for the lost process (its heartbeat timeout, 100 s)
    # and then aborts: kgan-train leaves at once instead (the checkpoint is on disk).
    lost.abandon_runtime = True
    return lost


def _auto_strategy() -> str:
    if _tpu_configured():
        return "tpu"
    if cluster.num_processes(cluster.tf_config()) > 1:
        return "multi_worker"
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return "mirrored"
    return "one_device"


def _make_strategy(name: str, devices: list[str] | None) -> tf.distribute.Strategy:
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        return _MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                os.environ.get("TPU_NAME"))
        except ValueError as error:  # TensorFlow's "Please provide a TPU Name ..."
            raise ValueError(f"--strategy tpu found no TPU ({error}): set TPU_NAME, or run on "
                             "a TPU VM; --strategy auto picks what this machine has") from None
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    # The default strategy adds no per-step overhead on a single device.
    return tf.distribute.get_strategy()


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` also takes a nested structure.

    Keras 3.15's `fit` reduces the first batch with `strategy.reduce` before training;
    MirroredStrategy passes a tuple such as (images, labels) through, while
    MultiWorkerMirroredStrategy fails on it ("Attempt to convert a value (PerReplica...")
    so a labelled data set could not train on several workers. Each part is reduced
    alone instead, in the same order on every worker.
    """

    def reduce(self, reduce_op, value, axis):
        if isinstance(value, (tuple, list, dict)):
            return tf.nest.map_structure(
                lambda part: super(_MultiWorkerMirroredStrategy, self).reduce(
                    reduce_op, part, axis), value)
        return super().reduce(reduce_op, value, axis)


def _auto_policy(strategy: str) -> tuple[str, str]:
    """(policy, why): bfloat16 on TPUs and Ampere-or-newer GPUs (no loss scaling, no
    skipped steps), float16 with dynamic loss scaling on Volta/Turing, on CPUs bfloat16
    where the CPU has fast bfloat16 instructions (`cpu_policy`), else float32."""
    if strategy == "tpu":
        return "mixed_bfloat16", "auto: TPU"
    capabilities = [_capability(g) for g in tf.config.list_physical_devices("GPU")]
    return gpu_policy(capabilities) if capabilities else cpu_policy(cpu_flags())


def gpu_policy(capabilities: list[tuple[int, int]]) -> tuple[str, str]:
    """(policy, why) for these GPUs: `policy_for_capabilities`, naming the lowest one."""
    low = min(capabilities)
    return policy_for_capabilities(capabilities), f"auto: GPU compute capability {low[0]}.{low[1]}"


def cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where there is no such file)."""
    try:
        with open(path) as file:
            for line in file:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_policy(flags: set[str]) -> tuple[str, str]:
    """(policy, why) on a machine with CPUs only: mixed_bfloat16 where the flags name an
    instruction set in FAST_CPU_BFLOAT16 (unless KGAN_AUTO_CPU_BFLOAT16=0), else float32."""
    fast = [name for name in FAST_CPU_BFLOAT16 if name in flags]
    if fast and os.environ.get(CPU_BFLOAT16_ENV, "1") != "0":
        return "mixed_bfloat16", f"auto: CPU with {fast[0].upper()}"
    if fast:
        return "float32", f"auto: {CPU_BFLOAT16_ENV}=0"
    return "float32", "auto: CPU without bfloat16 units"


def policy_for_capabilities(capabilities: list[tuple[int, int]]) -> str:
    """The mixed policy every listed GPU (compute capability) runs fast; float32 for none."""
    if capabilities and all(c >= _MIN_BFLOAT16_CAPABILITY for c in capabilities):
        return "mixed_bfloat16"
    if capabilities and all(c >= _MIN_FLOAT16_CAPABILITY for c in capabilities):
        return "mixed_float16"
    return "float32"


def _capability(gpu) -> tuple[int, int]:
    details = tf.config.experimental.get_device_details(gpu)
    return tuple(details.get("compute_capability", (0, 0)))
