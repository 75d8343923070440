"""Strategies and dtype policies, proven on CPU: two logical devices stand in for two GPUs."""

import json
import os
import socket
import subprocess
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import LATENT, adam, one_device, random_images, tiny_gan, tiny_networks

import kgan
from kgan.gan import randomness as replicas
from kgan.training import cluster as cluster_lib
from kgan.training import distribute

TWO_CPUS = ["/cpu:0", "/cpu:1"]


def images(n=32, seed=0, resolution=8):
    return random_images(n, resolution, seed=seed)


def train(strategy, epochs=2, batch=8, data=None, optimizer=keras.optimizers.Adam,
          network="dcgan", num_classes=None, gan_options=None, **compile_args):
    """Builds identical tiny GANs under `strategy` and fits them on the same batches."""
    gan_options = {"ema_decay": 0.9, **(gan_options or {})}
    augment = gan_options.pop("augment", None)
    with strategy.scope():
        keras.utils.set_random_seed(1)
        g, d = tiny_networks(network, num_classes=num_classes)
        if augment:
            gan_options["augment"] = kgan.augment.Augment(augment, initial_probability=1.0,
                                                          adaptive=False)
        gan = kgan.GAN(g, d, latent_dim=LATENT, num_classes=num_classes, **gan_options)
        gan.compile(optimizer(1e-2), optimizer(1e-2), **compile_args)
    resolution = g.output_shape[1]
    data = images(resolution=resolution) if data is None else data
    if num_classes:
        labels = np.arange(len(data), dtype="int32") % num_classes
        dataset = tf.data.Dataset.from_tensor_slices((data, labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices(data)
    dataset = dataset.batch(batch, drop_remainder=True)
    return gan, gan.fit(dataset, epochs=epochs, verbose=0).history


def family(name):
    """Skips cases of a family that is not registered in this checkout."""
    return pytest.mark.skipif(name not in kgan.networks.NAMES, reason=f"no {name} family")


RELATIVISTIC = {"loss": "relativistic", "r1_gamma": 1.0, "r2_gamma": 1.0}
# On JAX too (tests/test_backends.py): the cases whose code differs there (input gradients,
# the lazy conditional, batch norm over the global batch); each JAX case compiles ~20 s.
JAX_TOO = pytest.mark.backends
EQUIVALENCE_CASES = [
    pytest.param("dcgan", {}, {"loss": "non_saturating"}, id="non_saturating"),
    pytest.param("dcgan", {}, {"loss": "hinge"}, id="hinge",  # the resnet row is hinge too
                 marks=pytest.mark.slow),
    pytest.param("dcgan", {}, {"loss": "wasserstein", "gradient_penalty": 10.0}, id="wgan_gp",
                 marks=JAX_TOO),
    pytest.param("dcgan", {}, {"loss": "non_saturating", "r1_gamma": 1.0}, id="r1"),
    pytest.param("dcgan", {"num_classes": 3, "gan_options": {"d_steps": 2}}, RELATIVISTIC,
                 id="conditional_d_steps2_relativistic_r1_r2", marks=JAX_TOO),
    pytest.param("dcgan", {}, {**RELATIVISTIC, "single_d_pass": False}, id="two_d_passes"),
    pytest.param("dcgan", {}, {**RELATIVISTIC, "reg_interval": 2}, id="lazy_r1_r2",
                 marks=JAX_TOO),
    # ~20 s: slow. The augmentation's replica slicing (test_augment) and R1 on two
    # replicas (the relativistic rows) are each in the default suite.
    pytest.param("dcgan", {"gan_options": {"augment": "color,translation,cutout"}},
                 {"r1_gamma": 1.0}, id="augment_r1", marks=pytest.mark.slow),
    pytest.param("dcgan", {"gan_options": {"ema_decay": None, "ema_half_life": 50.0,
                                           "ema_rampup": 0.5}}, {}, id="ema_half_life"),
    pytest.param("r3gan", {"num_classes": 3}, RELATIVISTIC, id="r3gan",
                 marks=[family("r3gan"), JAX_TOO]),
    # One epoch: later, a ReLU input within rounding distance of zero flips on one side
    # (two single-device runs whose weights differ by 1e-7 diverge the same way). ~20 s:
    # slow; batch norm over the global batch is in every DCGAN row above.
    pytest.param("resnet", {"num_classes": 3, "epochs": 1}, {"loss": "hinge"}, id="resnet",
                 marks=[family("resnet"), JAX_TOO, pytest.mark.slow]),
    # Style mixing, lazy R1 and path length due at steps 0 and 2 of the 4, and the
    # noise of each training pass drawn for the global batch.
    pytest.param("stylegan2", {"num_classes": 3, "epochs": 1,
                               "gan_options": {"style_mixing": 0.9}},
                 {"r1_gamma": 1.0, "reg_interval": 2, "pl_weight": 2.0, "pl_interval": 2},
                 id="stylegan2_mixing_lazy_r1_pl",
                 marks=[family("stylegan2"), pytest.mark.slow]),  # ~100 s of tracing on CPU
]


# On JAX (the JAX_TOO cases): keras.distribution.DataParallel over two host devices.
@pytest.mark.parametrize(("network", "build", "compile_args"), EQUIVALENCE_CASES)
def test_two_replicas_compute_the_same_update_as_one_device(network, build, compile_args,
                                                            two_replicas):
    # SGD applies the summed gradient as is; Adam's first steps would turn last-bit
    # differences in near-zero gradients into +-lr jumps and hide what is compared.
    sgd = keras.optimizers.SGD
    single, single_logs = train(one_device(), optimizer=sgd, network=network,
                                **build, **compile_args)
    mirrored, mirrored_logs = train(two_replicas, optimizer=sgd, network=network, **build,
                                    **compile_args)
    for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    if getattr(single, "pl_weight", 0):  # path-length mean of the global batch, and moved
        assert single.pl_mean.numpy() > 0
        np.testing.assert_allclose(mirrored.pl_mean.numpy(), single.pl_mean.numpy(), rtol=1e-5)
    # Logged values are global means: neither halved nor one replica's.
    for name, values in single_logs.items():
        np.testing.assert_allclose(mirrored_logs[name], values, rtol=1e-4, atol=1e-5)


@JAX_TOO
def test_fit_outside_the_scope_splits_each_batch_across_the_devices(two_replicas, monkeypatch):
    """Built under the distribution, fitted outside it, as train.py and the README do: each
    device gets its half of the batch, not a copy of the whole (N times the work)."""
    if keras.backend.backend() != "jax":
        pytest.skip("MirroredStrategy splits each batch by design")
    import jax

    shardings = []
    step = kgan.GAN.train_step

    def inspected(self, state, data):
        jax.debug.inspect_array_sharding(jax.tree_util.tree_leaves(data)[0],
                                         callback=shardings.append)
        return step(self, state, data)

    monkeypatch.setattr(kgan.GAN, "train_step", inspected)
    train(two_replicas, epochs=1)
    assert shardings and not shardings[0].is_fully_replicated
    assert shardings[0].shard_shape((8, 8, 8, 1)) == (4, 8, 8, 1)


@JAX_TOO
def test_jax_runs_keep_tensorflow_off_the_gpus(monkeypatch):
    """TensorFlow only feeds, checkpoints and logs a JAX run: a CUDA build would otherwise
    map most of each GPU's memory beside JAX's."""
    if keras.backend.backend() != "jax":
        pytest.skip("TensorFlow is the backend that trains here")
    hidden = []
    monkeypatch.setattr(tf.config, "set_visible_devices",
                        lambda devices, kind: hidden.append((devices, kind)))
    distribute.setup("one_device", "float32", False)
    assert hidden == [([], "GPU")]
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_replicas_draw_different_slices_of_the_global_noise(two_replicas):
    seed = tf.constant([0, 3], tf.int64)
    draw = tf.function(lambda: replicas.global_normal(4, [LATENT], seed))
    per_replica = two_replicas.run(draw)
    first, second = (t.numpy() for t in two_replicas.experimental_local_results(per_replica))
    assert not np.allclose(first, second)
    whole = replicas.global_normal(8, [LATENT], seed).numpy()
    np.testing.assert_array_equal(np.concatenate([first, second]), whole)


def test_batch_that_does_not_split_across_replicas_fails_before_training(two_replicas):
    with pytest.raises(ValueError, match="global batch size 5 does not split evenly across 2"):
        train(two_replicas, batch=5, data=images(30))


@JAX_TOO
def test_evaluate_checks_its_batches_as_fit_does_and_the_gan_stays_usable(two_replicas):
    """An indivisible batch failed deep in the step (TensorFlow: AddN shapes; JAX: an
    IndivisibleError that left Keras's variables without values)."""
    with two_replicas.scope():
        g, d = kgan.networks.dcgan(8, 1, LATENT, base_filters=4)
        gan = kgan.GAN(g, d, latent_dim=LATENT)
        gan.compile(keras.optimizers.Adam(), keras.optimizers.Adam())
    with pytest.raises(ValueError, match="global batch size 7 does not split evenly across 2"):
        gan.evaluate(images(28), batch_size=7, verbose=0)
    assert gan.generate(2, seed=0).shape == (2, 8, 8, 1)
    assert set(gan.evaluate(images(28), batch_size=4, verbose=0, return_dict=True)) >= {
        "d_loss", "g_loss"}


def test_unbatched_size_under_replicas_is_refused(two_replicas):
    with two_replicas.scope():
        g, d = kgan.networks.dcgan(8, 1, LATENT, base_filters=4)
        gan = kgan.GAN(g, d, latent_dim=LATENT)
        gan.compile(keras.optimizers.Adam(), keras.optimizers.Adam())
    ragged = tf.data.Dataset.from_tensor_slices(images(10)).batch(4)
    with pytest.raises(ValueError, match="drop_remainder=True"):
        gan.fit(ragged, epochs=1, verbose=0)


def test_check_global_batch_suggests_a_fix():
    assert distribute.check_global_batch(16, 4) == 4
    with pytest.raises(ValueError, match="Use a multiple of 4, e.g. 8 or 12, or .* train on "
                       r"2 of them \(e.g. CUDA_VISIBLE_DEVICES=0,1\)"):
        distribute.check_global_batch(10, 4)
    with pytest.raises(ValueError, match="train on --strategy one_device"):
        distribute.check_global_batch(9, 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "horovod"}, "Unknown strategy 'horovod'. Valid choices: auto, one_device"),
    ({"mixed_precision": "fp8"}, "Unknown mixed_precision 'fp8'. Valid choices: auto, float32"),
])
def test_unknown_names_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        distribute.setup(**kwargs)


def test_auto_on_cpu_is_one_device_float32_without_xla():
    env = distribute.setup()
    assert env.num_replicas == 1
    assert env.policy == "float32" and keras.mixed_precision.global_policy().name == "float32"
    assert env.jit_compile is False


def test_one_gpu_runs_stage_their_batches_on_the_gpu(monkeypatch):
    gpu = type("LogicalDevice", (), {"name": "/device:GPU:0", "device_type": "GPU"})()
    monkeypatch.setattr(distribute, "_gpus_present", lambda: True)
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [gpu])
    env = distribute.setup(strategy="one_device", mixed_precision="float32", jit_compile=False)
    assert env.input_device == "/device:GPU:0"


def test_cpu_and_distributed_runs_leave_batches_to_the_strategy():
    assert distribute.setup().input_device is None
    mirrored = distribute.setup(strategy="mirrored", devices=TWO_CPUS, mixed_precision="float32")
    assert mirrored.input_device is None  # its distributed iterator prefetches per replica


def test_batches_staged_on_a_device_train_exactly_as_host_batches():
    def fit(stage):
        keras.utils.set_random_seed(1)
        gan = tiny_gan()
        gan.compile(adam(), adam())
        dataset = tf.data.Dataset.from_tensor_slices(images()).batch(8, drop_remainder=True)
        gan.fit(stage(dataset), epochs=1, verbose=0)
        return gan

    staged = distribute.to_device(tf.data.Dataset.range(3), "/cpu:0")
    assert [int(x) for x in staged] == [0, 1, 2]
    assert distribute.to_device(staged, None) is staged
    host = fit(lambda dataset: dataset)
    device = fit(lambda dataset: distribute.to_device(dataset, "/cpu:0"))
    for a, b in zip(host.get_weights(), device.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the same computation twice


def test_explicit_mirrored_strategy_on_logical_devices():
    env = distribute.setup(strategy="mirrored", devices=TWO_CPUS, mixed_precision="float32")
    assert isinstance(env.strategy, tf.distribute.MirroredStrategy) and env.num_replicas == 2


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_with_finite_losses_and_float32_outputs(policy):
    env = distribute.setup(mixed_precision=policy)
    gan, logs = train(env.strategy, epochs=1, gradient_penalty=1.0)
    assert all(np.isfinite(values[-1]) for values in logs.values())
    assert gan.generator.output.dtype == "float32"
    assert gan.generate(2, seed=0).dtype == np.float32
    wrapped = isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert wrapped == (policy == "mixed_float16")
    assert ("d_loss_scale" in logs) == (policy == "mixed_float16")


def test_overflow_under_float16_skips_the_step_and_lowers_the_scale():
    distribute.setup(mixed_precision="mixed_float16")
    gan, _ = train(tf.distribute.get_strategy(), epochs=1)
    d_before = [w.numpy() for w in gan.discriminator.trainable_weights]
    scale_before = float(gan.d_optimizer.dynamic_scale)
    overflowing = images(8)
    overflowing[:, 0, 0, 0] = 1e6  # beyond float16's 65504: D's activations become inf
    gan.fit(tf.data.Dataset.from_tensor_slices(overflowing).batch(8), epochs=1, verbose=0)
    assert float(gan.d_optimizer.dynamic_scale) == scale_before / 2
    for before, after in zip(d_before, gan.discriminator.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


def test_xla_compiled_training_stays_close_to_the_plain_graph():
    # SGD, not Adam: Adam's first steps amplify rounding noise in near-zero gradients.
    # XLA fuses and reorders float math, so the match is close, not bit-exact.
    # Compared: each weight's update (not the weights, which barely move in 4 SGD steps),
    # relative to the update's own size, so a wrong update cannot pass.
    sgd = keras.optimizers.SGD
    keras.utils.set_random_seed(1)
    start = tiny_networks("dcgan")
    start = [w.copy() for net in start for w in net.get_weights()]
    plain, _ = train(tf.distribute.get_strategy(), epochs=1, optimizer=sgd, jit_compile=False)
    xla, _ = train(tf.distribute.get_strategy(), epochs=1, optimizer=sgd, jit_compile=True)
    weights = [(p, x) for p, x in zip(plain.generator.get_weights()
                                      + plain.discriminator.get_weights(),
                                      xla.generator.get_weights()
                                      + xla.discriminator.get_weights(), strict=True)]
    moved = 0
    for (p, x), w0 in zip(weights, start, strict=True):
        update_plain, update_xla = p - w0, x - w0
        size = np.linalg.norm(update_plain)
        if size > 1e-6:
            moved += 1
            assert np.linalg.norm(update_xla - update_plain) <= 1e-3 * size
    assert moved >= len(weights) // 2


def test_steps_per_execution_under_mirrored_strategy_is_refused_clearly(two_replicas):
    with pytest.raises(ValueError, match="steps_per_execution=2 is not supported"):
        train(two_replicas, steps_per_execution=2)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_worker_processes_end_with_identical_weights(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    script = Path(__file__).with_name("multi_worker_train.py")
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config))
        command = [sys.executable, str(script), str(tmp_path / f"worker{index}.npz")]
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    outputs = [worker.communicate(timeout=240)[0] for worker in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    first, second = (np.load(tmp_path / f"worker{i}.npz") for i in range(2))
    assert int(first["replicas"]) == 2 and int(first["g_steps"]) == 8
    weights = [key for key in first.files if key.startswith("weight_")]
    for key in weights:  # two processes: the same all-reduced updates, to float rounding
        np.testing.assert_allclose(first[key], second[key], rtol=1e-6, atol=1e-7)
    assert float(first["d_loss"]) == pytest.approx(float(second["d_loss"]))


def test_loss_scaling_under_two_replicas_skips_overflow_on_both(two_replicas):
    keras.mixed_precision.set_global_policy("mixed_float16")
    gan, logs = train(two_replicas, epochs=1, gradient_penalty=1.0)
    assert all(np.isfinite(values[-1]) for values in logs.values())
    d_before = [w.numpy() for w in gan.discriminator.trainable_weights]
    overflowing = images(8)
    overflowing[4:, 0, 0, 0] = 1e6  # only the second replica's half overflows
    dataset = tf.data.Dataset.from_tensor_slices(overflowing).batch(8, drop_remainder=True)
    logs = gan.fit(dataset, epochs=1, verbose=0).history
    assert logs["d_loss_scale"][-1] == 32768.0 / 2
    for before, after in zip(d_before, gan.discriminator.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, after.numpy())


@pytest.mark.parametrize(("capabilities", "policy"), [
    ([(9, 0)], "mixed_bfloat16"),            # H100: bf16 tensor cores, no loss scaling
    ([(8, 0), (8, 6)], "mixed_bfloat16"),    # A100 + RTX 30xx
    ([(7, 0)], "mixed_float16"),             # V100: fp16 tensor cores only
    ([(8, 0), (7, 5)], "mixed_float16"),     # a T4 in the mix: the policy all can run fast
    ([(6, 1)], "float32"),                   # Pascal: no tensor cores
    ([], "float32"),                         # CPU
])
def test_auto_policy_picks_bfloat16_from_ampere_and_float16_on_volta_turing(capabilities,
                                                                            policy):
    assert distribute.policy_for_capabilities(capabilities) == policy


@pytest.mark.parametrize("flags, enabled, policy, why", [
    ({"avx512f", "amx_bf16", "avx512_bf16"}, "1", "mixed_bfloat16", "CPU with AMX_BF16"),
    ({"amx_bf16"}, "0", "float32", "KGAN_AUTO_CPU_BFLOAT16=0"),
    ({"avx512f", "avx512_bf16"}, "1", "mixed_bfloat16", "CPU with AVX512_BF16"),
    ({"avx512f", "avx512_vnni"}, "1", "float32", "CPU without bfloat16 units"),
    ({"avx2", "fma"}, "1", "float32", "CPU without bfloat16 units"),
])
def test_auto_policy_on_cpus_follows_their_bfloat16_units(monkeypatch, tmp_path, flags,
                                                           enabled, policy, why):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {' '.join(sorted(flags))}\n\n")
    assert distribute.cpu_flags(str(cpuinfo)) == flags
    monkeypatch.setenv("KGAN_AUTO_CPU_BFLOAT16", enabled)
    chosen, reason = distribute.cpu_policy(flags)
    assert chosen == policy and why in reason
    assert distribute.cpu_flags(str(tmp_path / "missing")) == set()


def test_lazy_regularisation_over_synchronized_batch_norm_is_refused_on_replicas(
        two_replicas):
    """Its tf.cond would hold the norm's all-reduce: replicas would wait for ever."""
    with two_replicas.scope():
        g, _ = tiny_networks("dcgan", resolution=8)
        bn_d = keras.Sequential([keras.Input((8, 8, 1)), kgan.networks.families.common
                                 .SyncBatchNormalization(), keras.layers.Flatten(),
                                 keras.layers.Dense(1)])
        gan = kgan.GAN(g, bn_d, latent_dim=LATENT)
        with pytest.raises(ValueError, match="deadlocks inside tf.cond"):
            gan.compile(adam(), adam(), r1_gamma=1.0, reg_interval=4)
        gan.compile(adam(), adam(), r1_gamma=1.0)  # every step: no conditional, accepted
    single = kgan.GAN(g, bn_d, latent_dim=LATENT)
    single.compile(adam(), adam(), r1_gamma=1.0, reg_interval=4)  # one device: no collective


@pytest.mark.parametrize("cluster, task, expected", [
    ({"worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1},
     {"coordinator_address": "a:1", "num_processes": 2, "process_id": 1}),
    ({"chief": ["c:0"], "worker": ["a:1", "b:2"]}, {"type": "worker", "index": 1},
     {"coordinator_address": "c:0", "num_processes": 3, "process_id": 2}),
    ({"chief": ["c:0"], "worker": ["a:1"]}, {"type": "chief", "index": 0},
     {"coordinator_address": "c:0", "num_processes": 2, "process_id": 0}),
])
def test_jax_joins_the_cluster_tf_config_names(cluster, task, expected):
    """One TF_CONFIG serves both backends: on JAX the chief (or worker 0) coordinates,
    and ranks follow TF_CONFIG's order, chief first, so process 0 is the chief."""
    assert cluster_lib.jax_cluster({"cluster": cluster, "task": task}) == expected
    assert cluster_lib.jax_cluster({}) is None


@pytest.mark.parametrize("task, message", [
    ({"type": "ps", "index": 0}, "must be a chief or a worker on JAX"),
    ({"type": "worker", "index": 2}, "is not in its cluster of 2 processes"),
])
def test_a_tf_config_jax_cannot_join_is_refused(task, message):
    with pytest.raises(ValueError, match=message):
        cluster_lib.jax_cluster({"cluster": {"worker": ["a:1", "b:2"]}, "task": task})


def test_a_lost_jax_process_is_named_in_one_line():
    cluster = types.SimpleNamespace(num_workers=2)
    error = RuntimeError("UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/"
                         "pair.cc:547] Connection closed by peer [10.0.0.2]:12185")
    lost = distribute.lost_jax_worker_error(error, cluster, "run/backup/ckpt-6")
    assert str(lost) == (
        "lost another process of this JAX cluster (Gloo AllGather failed: Connection closed "
        "by peer [10.0.0.2]:12185); the last checkpoint is run/backup/ckpt-6: start every "
        "worker again with the same command to resume")
    assert lost.abandon_runtime  # kgan-train leaves before JAX's shutdown barrier
    assert distribute.lost_jax_worker_error(ValueError("bad shape"), cluster, None) is None
    alone = types.SimpleNamespace(num_workers=1)
    assert distribute.lost_jax_worker_error(error, alone, None) is None


@pytest.mark.parametrize("task, rank", [({"type": "chief", "index": 0}, 0),
                                        ({"type": "worker", "index": 0}, 1),
                                        ({"type": "worker", "index": 1}, 2)])
def test_both_backends_rank_a_tf_config_task_alike(monkeypatch, task, rank):
    """One rule (kgan.training.cluster.rank): TensorFlow's worker index, JAX's process id
    and who writes the run directory agree."""
    from kgan.cli.train import writes_run_dir

    config = {"cluster": {"chief": ["c:0"], "worker": ["a:1", "b:2"]}, "task": task}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    env = distribute.Setup(strategy=types.SimpleNamespace(), policy="float32",
                           jit_compile=False)
    assert (env.worker_index, env.num_workers) == (rank, 3)
    assert cluster_lib.jax_cluster(config)["process_id"] == rank
    assert writes_run_dir() == (rank == 0)
