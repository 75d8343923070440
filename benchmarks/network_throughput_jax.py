"""Throughput of kgan's `GAN.fit` on Keras 3's JAX backend (XLA), beside a hand-written step.

Two trainers per (network, batch, dtype policy), in one process, on the same networks,
their repeats taken in turns so machine load hits both alike:
  * `kgan`: `kgan.GAN.fit` with its default recipe (the backend-neutral core on JAX);
  * `reference`: the same GAN step written by hand as one jitted, stateless JAX function
    (`Trainer` below), the floor of what Keras + XLA cost for these networks, so
    `kgan / reference` is kgan's own overhead (target >= 0.9).
It runs where TensorFlow is absent (the lent GPU machines carry JAX only): kgan's JAX
path imports no TensorFlow when fed NumPy arrays.

The step is kgan's default recipe on one device: non-saturating logistic loss, D
scores real and fake in one call (D has no batch norm), then G trains on fresh noise
through the updated D; Adam (2e-4, beta_1 0.5) for both; batch norm in training mode;
mixed_float16 through `keras.optimizers.LossScaleOptimizer` (dynamic loss scaling).
`kgan.GAN.fit` is timed over an in-memory batch repeated for the steps (NumPy, as a
data pipeline would hand it), with the same networks, loss, optimizers and policy.

Model FLOPs per image are 4 G + 9 D forward passes, as in `train_throughput.py`; a
forward pass is counted by XLA's cost analysis of the unoptimised HLO, lowered for the
CPU (before any convolution becomes a cuDNN call). XLA counts the multiply-adds a
convolution really does, leaving out kernel taps that fall on padding or between the
input pixels of a transposed convolution, so its count is 7-12 % below TensorFlow's
graph profiler's (every tap) for these networks, and MFU is the stricter for it. MFU
divides the achieved model FLOP/s by the device's dense peak for the policy
(`common.GPU_PEAK_TFLOPS`).

Run (the backend is chosen before Keras loads; KERAS_BACKEND=jax is implied):
    python benchmarks/network_throughput_jax.py --out benchmarks/results/gpu_jax.json
    python benchmarks/network_throughput_jax.py --configs dcgan:128:256 --policies mixed_bfloat16
    python benchmarks/network_throughput_jax.py --quick          # seconds, on a CPU
"""

from __future__ import annotations

import argparse
import math
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import kgan  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
FAMILIES = ("dcgan", "resnet")  # the families built from Keras layers alone
CONFIGS = "dcgan:64:64,dcgan:128:64,dcgan:128:256,resnet:64:64"
LATENT_DIM = 128


def build_networks(family: str, resolution: int, policy: str, network_args: dict):
    """kgan's (generator, discriminator) for `family` under the dtype `policy`."""
    if family not in FAMILIES:
        raise ValueError(f"Unknown family {family!r} for the JAX backend: one of "
                         f"{', '.join(FAMILIES)} (the others use TensorFlow ops).")
    keras.config.set_dtype_policy(policy)
    try:
        return kgan.networks.get(family)(resolution, 3, LATENT_DIM, **network_args)
    finally:
        keras.config.set_dtype_policy("float32")


def optimizer(policy: str) -> keras.optimizers.Optimizer:
    adam = keras.optimizers.Adam(2e-4, beta_1=0.5)
    return keras.optimizers.LossScaleOptimizer(adam) if policy == "mixed_float16" else adam


class Trainer:
    """A jitted, stateless GAN train step over (G, D) and its state as JAX arrays."""

    def __init__(self, generator, discriminator, policy: str, seed: int = 0):
        self.g, self.d = generator, discriminator
        self.g_opt, self.d_opt = optimizer(policy), optimizer(policy)
        self.g_opt.build(generator.trainable_variables)
        self.d_opt.build(discriminator.trainable_variables)
        values = lambda variables: [v.value for v in variables]  # noqa: E731
        self.state = (
            values(generator.trainable_variables), values(generator.non_trainable_variables),
            values(discriminator.trainable_variables),
            values(discriminator.non_trainable_variables),
            values(self.g_opt.variables), values(self.d_opt.variables),
            jax.random.key(seed),
        )
        self.step = jax.jit(self._step, donate_argnums=0)

    @staticmethod
    def _scaled(opt, opt_vars, loss):
        """The loss times the current dynamic loss scale (mixed_float16), else the loss."""
        if not isinstance(opt, keras.optimizers.LossScaleOptimizer):
            return loss
        with keras.StatelessScope(state_mapping=list(zip(opt.variables, opt_vars, strict=True))):
            return opt.scale_loss(loss)

    def _step(self, state, real):
        g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov, key = state
        key, d_key, g_key = jax.random.split(key, 3)
        n = real.shape[0]
        fake, g_ntv = self.g.stateless_call(
            g_tv, g_ntv, jax.random.normal(d_key, (n, LATENT_DIM)), training=True)
        fake = jax.lax.stop_gradient(fake)

        def d_loss(d_tv, d_ntv):
            logits, d_ntv = self.d.stateless_call(
                d_tv, d_ntv, jnp.concatenate([real, fake.astype(real.dtype)]), training=True)
            logits = logits.astype("float32")
            loss = jnp.mean(jax.nn.softplus(-logits[:n])) + jnp.mean(jax.nn.softplus(logits[n:]))
            return self._scaled(self.d_opt, d_ov, loss), (loss, d_ntv)

        (_, (d_value, d_ntv)), grads = jax.value_and_grad(d_loss, has_aux=True)(d_tv, d_ntv)
        d_tv, d_ov = self.d_opt.stateless_apply(d_ov, grads, d_tv)

        z = jax.random.normal(g_key, (n, LATENT_DIM))

        def g_loss(g_tv, g_ntv):
            fake, g_ntv = self.g.stateless_call(g_tv, g_ntv, z, training=True)
            logits, _ = self.d.stateless_call(d_tv, d_ntv, fake, training=True)
            loss = jnp.mean(jax.nn.softplus(-logits.astype("float32")))
            return self._scaled(self.g_opt, g_ov, loss), (loss, g_ntv)

        (_, (g_value, g_ntv)), grads = jax.value_and_grad(g_loss, has_aux=True)(g_tv, g_ntv)
        g_tv, g_ov = self.g_opt.stateless_apply(g_ov, grads, g_tv)
        return (g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov, key), (d_value, g_value)

    def run(self, real, steps: int):
        """`steps` train steps; returns the last (d_loss, g_loss) once they are done."""
        losses = None
        for _ in range(steps):
            self.state, losses = self.step(self.state, real)
        return jax.block_until_ready(losses)


class KganFit:
    """`kgan.GAN.fit` on `real` repeated, on the same networks, loss and optimizers."""

    def __init__(self, generator, discriminator, policy: str, real):
        self.policy = policy
        keras.mixed_precision.set_global_policy(policy)  # GAN.compile wraps for loss scaling
        try:
            self.gan = kgan.GAN(generator, discriminator, latent_dim=LATENT_DIM)
            self.gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5),
                             keras.optimizers.Adam(2e-4, beta_1=0.5), loss="non_saturating")
        finally:
            keras.mixed_precision.set_global_policy("float32")
        self.batch = np.asarray(real)

    def run(self, steps: int) -> float:
        """`steps` train steps in one fit call; the last logged d_loss."""
        keras.mixed_precision.set_global_policy(self.policy)
        try:
            history = self.gan.fit(np.concatenate([self.batch] * steps),
                                   batch_size=len(self.batch), epochs=1, shuffle=False,
                                   verbose=0)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        return history.history["d_loss"][-1]


def forward_flops(model: keras.Model, batch: int = 8) -> float:
    """FLOPs of one forward pass per example, by XLA's cost analysis of the HLO.

    Lowered for the CPU on any machine: model FLOPs are a property of the network, and
    the unoptimised CPU module still holds every convolution as one HLO op to count.
    """
    cpu = jax.devices("cpu")[0]
    on_cpu = lambda values: [jax.device_put(v, cpu) for v in values]  # noqa: E731
    inputs = on_cpu(jnp.zeros((batch, *spec.shape[1:]), "float32") for spec in model.inputs)
    tv = on_cpu(v.value for v in model.trainable_variables)
    ntv = on_cpu(v.value for v in model.non_trainable_variables)
    call = lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0]  # noqa: E731
    cost = jax.jit(call).lower(tv, ntv, inputs[0] if len(inputs) == 1 else inputs).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) / batch


def measure(family, resolution, batch_size, policy, args) -> dict:
    """Median ms/step over repeats of one (network, batch, policy); one result row."""
    g, d = build_networks(family, resolution, policy, args.network_args.get(family, {}))
    flops = 4 * forward_flops(g) + 9 * forward_flops(d)
    real = jax.random.uniform(jax.random.key(1), (batch_size, resolution, resolution, 3),
                              minval=-1.0, maxval=1.0)
    trainer = Trainer(g, d, policy)
    compile_s = common.timed(lambda: trainer.run(real, args.warmup))
    fit = None
    if args.kgan:  # its own copy of the networks, timed in turns with the reference
        fit = KganFit(*build_networks(family, resolution, policy,
                                      args.network_args.get(family, {})), policy, real)
        fit_compile_s = common.timed(lambda: fit.run(args.warmup))
    seconds, fit_seconds = [], []
    for _ in range(args.repeats):
        seconds.append(common.timed(lambda: trainer.run(real, args.steps)))
        if fit is not None:
            fit_seconds.append(common.timed(lambda: fit.run(args.steps)))
    if fit is not None and not math.isfinite(fit.run(1)):
        raise FloatingPointError(f"kgan.GAN {family} {resolution}px {policy}: non-finite loss")
    d_loss, g_loss = (float(x) for x in trainer.run(real, 1))
    if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
        raise FloatingPointError(f"{family} {resolution}px {policy}: non-finite loss "
                                 f"(d {d_loss}, g {g_loss})")
    ms = 1e3 * common.median(seconds) / args.steps
    best_ms = 1e3 * min(seconds) / args.steps
    images_per_s = 1e3 * batch_size / ms
    device, peak = common.device_peak_tflops(jax.devices()[0].device_kind, policy)
    achieved = flops * images_per_s
    row = {
        "network": family, "resolution": resolution, "batch_size": batch_size,
        "policy": policy, "ms_per_step": round(ms, 3), "best_ms_per_step": round(best_ms, 3),
        "images_per_s": round(images_per_s, 1), "warmup_s": round(compile_s, 1),
        "model_gflops_per_image": round(flops / 1e9, 4),
        "achieved_tflops": round(achieved / 1e12, 3), "peak_tflops": peak,
        "mfu": round(achieved / (peak * 1e12), 4) if peak else None,
        "d_loss": round(d_loss, 4), "g_loss": round(g_loss, 4), "device": device,
        "seconds": seconds,
    }
    if fit is not None:
        kgan_ms = 1e3 * common.median(fit_seconds) / args.steps
        kgan_images = 1e3 * batch_size / kgan_ms
        row.update(
            kgan_ms_per_step=round(kgan_ms, 3), kgan_images_per_s=round(kgan_images, 1),
            kgan_mfu=round(flops * kgan_images / (peak * 1e12), 4) if peak else None,
            kgan_ratio=round(ms / kgan_ms, 3),
            kgan_best_ratio=round(min(seconds) / min(fit_seconds), 3),
            kgan_warmup_s=round(fit_compile_s, 1), kgan_seconds=fit_seconds)
    return row


def parse_configs(text: str) -> list[tuple[str, int, int]]:
    """'dcgan:64:64,resnet:64:32' -> [('dcgan', 64, 64), ('resnet', 64, 32)]."""
    configs = []
    for item in filter(None, text.split(",")):
        parts = item.split(":")
        if len(parts) != 3 or parts[0] not in FAMILIES or not all(p.isdigit() for p in parts[1:]):
            raise ValueError(f"Bad config {item!r}: write family:resolution:batch_size, e.g. "
                             f"dcgan:64:64, with a family in {', '.join(FAMILIES)}.")
        configs.append((parts[0], int(parts[1]), int(parts[2])))
    return configs


def run(args) -> dict:
    machine = common.machine()
    rows = []
    for family, resolution, batch_size in parse_configs(args.configs):
        for policy in args.policies.split(","):
            if policy not in POLICIES:
                raise ValueError(f"Unknown policy {policy!r}: one of {', '.join(POLICIES)}.")
            rows.append(measure(family, resolution, batch_size, policy, args))
            r = rows[-1]
            print(f"{family} {resolution}px b{batch_size} {policy}: reference "
                  f"{r['images_per_s']} images/s, {r['ms_per_step']} ms/step, MFU {r['mfu']}; "
                  f"kgan.GAN.fit {r.get('kgan_images_per_s')} images/s (ratio "
                  f"{r.get('kgan_ratio')})", flush=True)
            common.write_json(result(machine, rows, args), args.out)  # kept if cut short
    return result(machine, rows, args)


def result(machine: dict, rows: list, args) -> dict:
    settings = {k: getattr(args, k) for k in
                ("configs", "policies", "network_args", "steps", "warmup", "repeats", "kgan")}
    return {"benchmark": "network_throughput_jax", "machine": machine, "settings": settings,
            "flops_method": "XLA cost analysis of the unoptimised CPU HLO per forward; "
                            "step = 4G + 9D", "rows": rows,
            "load_average_at_end": common.load_average()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=CONFIGS,
                   help=f"comma-separated family:resolution:batch_size (default {CONFIGS})")
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--steps", type=int, default=30, help="timed steps per repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (XLA compile) first")
    p.add_argument("--repeats", type=int, default=5, help="median over this many repeats")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--no-kgan", dest="kgan", action="store_false",
                   help="time the hand-written step only")
    p.add_argument("--out", help="write the JSON result here")
    args = p.parse_args(argv)
    args.network_args = {"dcgan": {"base_filters": 64}, "resnet": {}}
    if args.quick:
        args.configs = "dcgan:8:4,resnet:16:2" if args.configs == CONFIGS else args.configs
        args.network_args = {"dcgan": {"base_filters": 4}, "resnet": {"g_width": 4, "d_width": 4}}
        args.steps, args.warmup, args.repeats = 2, 1, 1
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    outcome = run(args)
    columns = ["network", "resolution", "batch_size", "policy", "images_per_s", "ms_per_step",
               "kgan_images_per_s", "kgan_ms_per_step", "kgan_ratio", "kgan_best_ratio",
               "model_gflops_per_image", "mfu", "kgan_mfu", "warmup_s", "kgan_warmup_s"]
    common.print_table(outcome["rows"], columns,
                       f"GAN train step, Keras {keras.__version__} on JAX {jax.__version__} "
                       f"(XLA), {outcome['rows'][0]['device']}")
    return outcome  # run() wrote it to --out


if __name__ == "__main__":
    main()
