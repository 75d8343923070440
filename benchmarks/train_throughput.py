"""Training throughput of kgan.GAN next to the common Keras DCGAN recipe.

Both sides train the same network pair (any registered family, `--network`, default
dcgan) on the same in-memory batch: kgan's `GAN` in each requested variant, and
`ReferenceGAN`, the keras-io `dcgan_overriding_train_step.py` recipe written out here
(float32, no XLA, a custom `train_step` with two `GradientTape`s, BCE-from-logits,
Adam). Each repeat times `fit()` over `--steps` steps after warm-up (tracing) steps; the
figure is the median over repeats, and kgan and the reference repeats are interleaved so
machine load hits both alike. Reported per variant: images/s, ms/step, the ratio
kgan/reference (median and best repeat), model FLOP/s and, on a GPU with a known peak,
MFU. Variants: a dtype policy, `_xla`, `_two_pass` (force separate D calls for real and
fake), `_augment` (DiffAugment colour, translation, cutout at p = 1).

FLOPs are counted by TensorFlow's graph profiler on one forward pass of each network
(every op with a FLOP count: convolutions, matmuls, elementwise), and one train step
per real image costs 4 G + 9 D forwards (D step: G forward, D forward and backward on
real + fake; G step: G forward and backward through D), backward taken as twice the
forward.

Run:
    python benchmarks/train_throughput.py --out benchmarks/results/train_throughput.json
    python benchmarks/train_throughput.py --variants float32,mixed_bfloat16_xla --steps 50
    python benchmarks/train_throughput.py --network r3gan --network-args widths=[128,128,64]
    python benchmarks/train_throughput.py --variants float32,float32_two_pass,\
        float32_augment,float32_augment_xla           # the CPU comparisons of the speed issue

Expect kgan within a few % of the reference in float32 on a CPU (same math; kgan adds
stateless per-replica noise and metric bookkeeping), mixed precision slower than
float32 on a CPU (no fast half-precision kernels), and on a GPU mixed precision + XLA
well above the reference.
"""

from __future__ import annotations

import argparse
import os
import sys

import keras
import tensorflow as tf
from keras import ops

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import kgan  # noqa: E402

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
FLAGS = ("xla", "two_pass", "augment")
VARIANTS = ("float32", "float32_xla", "mixed_float16", "mixed_float16_xla",
            "mixed_bfloat16", "mixed_bfloat16_xla")  # the default set
LATENT_DIM = 128


class ReferenceGAN(keras.Model):
    """The keras-io DCGAN recipe (`dcgan_overriding_train_step.py`), for comparison.

    As in the example: D trains on the concatenated fake + real batch with noisy
    labels, then G trains on fresh noise with "real" labels; BCE from logits, Adam.
    One change: networks are called with `training=True`, so batch norm trains.
    """

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile(jit_compile=False)  # the recipe without XLA, even where Keras picks it
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(z, training=True)
        combined = ops.concatenate([generated, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], 0)
        labels += 0.05 * tf.random.uniform(tf.shape(labels))
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined, training=True))
        d_vars = self.discriminator.trainable_weights
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, d_vars), d_vars, strict=True))
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        misleading = ops.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            fake = self.generator(z, training=True)
            g_loss = self.loss_fn(misleading, self.discriminator(fake, training=True))
        g_vars = self.generator.trainable_weights
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, g_vars), g_vars, strict=True))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def forward_flops(model: keras.Model) -> int:
    """FLOPs of one forward pass for one example, counted by TensorFlow's graph profiler."""
    specs = [tf.TensorSpec([1, *spec.shape[1:]], spec.dtype) for spec in model.inputs]
    graph = tf.function(lambda *x: model(list(x) if len(x) > 1 else x[0], training=False)
                        ).get_concrete_function(*specs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)


def train_flops_per_image(generator: keras.Model, discriminator: keras.Model) -> int:
    """Model FLOPs of one GAN train step per real image: 4 G + 9 D forward passes."""
    return 4 * forward_flops(generator) + 9 * forward_flops(discriminator)


def device_peak_tflops(policy: str) -> tuple[str, float | None]:
    """(device name, dense peak TFLOP/s for the policy or None when unknown)."""
    gpus = common.gpu_names()
    return common.device_peak_tflops(gpus[0] if gpus else None, policy)


def parse_variant(variant: str) -> tuple[str, set[str]]:
    """'mixed_bfloat16_augment_xla' -> ('mixed_bfloat16', {'augment', 'xla'})."""
    policy = next((p for p in POLICIES if variant.startswith(p)), None)
    flags = set(filter(None, variant[len(policy or ""):].split("_"))) if policy else set()
    words = {"two": "two_pass", "pass": "two_pass"}
    flags = {words.get(f, f) for f in flags}
    if policy is None or not flags <= set(FLAGS):
        raise ValueError(f"Unknown variant {variant!r}: a policy ({', '.join(POLICIES)}) "
                         f"and optional suffixes {', '.join('_' + f for f in FLAGS)}.")
    return policy, flags


def networks(args):
    return kgan.networks.get(args.network)(args.resolution, args.channels, LATENT_DIM,
                                           **args.network_args)


def build_kgan(variant: str, args) -> keras.Model:
    policy, flags = parse_variant(variant)
    xla = "xla" in flags
    kgan.distribute.setup(strategy="one_device", mixed_precision=policy, jit_compile=xla)
    g, d = networks(args)
    augment = (kgan.augment.Augment("color,translation,cutout", initial_probability=1.0,
                                    adaptive=False) if "augment" in flags else None)
    gan = kgan.GAN(g, d, latent_dim=LATENT_DIM, augment=augment)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5),
                loss="non_saturating", jit_compile=xla,
                single_d_pass=False if "two_pass" in flags else "auto")
    return gan


def build_reference(args) -> keras.Model:
    keras.mixed_precision.set_global_policy("float32")
    g, d = networks(args)
    gan = ReferenceGAN(d, g, LATENT_DIM)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5),
                keras.losses.BinaryCrossentropy(from_logits=True))
    return gan


class Timer:
    """Times `fit()` of one model over a fixed in-memory batch, after warm-up."""

    def __init__(self, model: keras.Model, batch: tf.Tensor, steps: int, warmup: int):
        self.model, self.steps = model, steps
        self.data = tf.data.Dataset.from_tensors(batch).repeat(steps)
        model.fit(tf.data.Dataset.from_tensors(batch).repeat(warmup), epochs=1, verbose=0)
        self.seconds = []

    def repeat(self) -> None:
        self.seconds.append(common.timed(lambda: self.model.fit(self.data, epochs=1, verbose=0)))

    def ms_per_step(self, best: bool = False) -> float:
        """Median (or best) ms/step over the repeats."""
        seconds = min(self.seconds) if best else common.median(self.seconds)
        return 1e3 * seconds / self.steps


def measure(variant: str, batch: tf.Tensor, args) -> dict:
    """Interleaved repeats of kgan (variant) and the float32 reference; one result row."""
    kgan_timer = Timer(build_kgan(variant, args), batch, args.steps, args.warmup)
    reference = Timer(build_reference(args), batch, args.steps, args.warmup)
    for _ in range(args.repeats):
        kgan_timer.repeat()
        reference.repeat()
    keras.mixed_precision.set_global_policy("float32")
    return row(variant, kgan_timer, reference, args)


def row(variant: str, kgan_timer: Timer, reference: Timer, args) -> dict:
    batch_size = args.batch_size
    ms, ref_ms = kgan_timer.ms_per_step(), reference.ms_per_step()
    flops = train_flops_per_image(kgan_timer.model.generator, kgan_timer.model.discriminator)
    images_per_s = 1e3 * batch_size / ms
    device, peak = device_peak_tflops(parse_variant(variant)[0])
    gan = kgan_timer.model
    achieved = flops * images_per_s
    return {
        "network": args.network, "variant": variant,
        "single_d_pass": bool(gan.single_d_pass),
        "ms_per_step": round(ms, 2), "images_per_s": round(images_per_s, 1),
        "reference_ms_per_step": round(ref_ms, 2),
        "reference_images_per_s": round(1e3 * batch_size / ref_ms, 1),
        "ratio_vs_reference": round(ref_ms / ms, 3),
        # On a shared machine some repeats run at half speed; best-of shows the unloaded rate.
        "ratio_vs_reference_best": round(
            reference.ms_per_step(best=True) / kgan_timer.ms_per_step(best=True), 3),
        "model_gflops_per_image": round(flops / 1e9, 4),
        "achieved_gflops": round(achieved / 1e9, 2),
        "peak_tflops": peak, "mfu": round(achieved / (peak * 1e12), 4) if peak else None,
        "device": device, "kgan_seconds": kgan_timer.seconds,
        "reference_seconds": reference.seconds,
    }


def run(args) -> dict:
    """Measures every requested variant; returns the JSON-ready result."""
    machine = common.machine()  # load average before the work
    shape = [args.batch_size, args.resolution, args.resolution, args.channels]
    batch = tf.random.stateless_uniform(shape, seed=[0, 0], minval=-1.0, maxval=1.0)
    rows = []
    for variant in args.variants.split(","):
        rows.append(measure(variant, batch, args))
        print(f"{variant}: {rows[-1]['images_per_s']} images/s, "
              f"x{rows[-1]['ratio_vs_reference']} vs reference", flush=True)
    settings = {k: getattr(args, k) for k in
                ("network", "network_args", "resolution", "channels", "batch_size", "steps",
                 "warmup", "repeats")}
    return {"benchmark": "train_throughput", "machine": machine, "settings": settings,
            "flops_method": "tf.compat.v1.profiler float_operation per forward; step = 4G + 9D",
            "rows": rows, "load_average_at_end": common.load_average()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--network", default="dcgan", help="a kgan.networks family")
    p.add_argument("--network-args", default="",
                   help="family options as k=v,k=v (JSON values); dcgan default base_filters=64")
    p.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (tracing) first")
    p.add_argument("--repeats", type=int, default=5, help="median over this many repeats")
    p.add_argument("--variants", default=None,
                   help=f"comma-separated, e.g. {', '.join(VARIANTS)}, float32_two_pass, "
                        "float32_augment_xla; default: those six on a GPU, all but "
                        "mixed_float16 on a CPU (minutes per step there)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--out", help="write the JSON result here")
    args = p.parse_args(argv)
    if args.variants is None:
        gpu = bool(tf.config.list_physical_devices("GPU"))
        args.variants = ",".join(v for v in VARIANTS if gpu or not v.startswith("mixed_float16"))
    from kgan.cli.train import _options  # the train CLI's k=v parser

    args.network_args = _options(args.network_args) if args.network_args else {}
    if args.network == "dcgan":
        args.network_args.setdefault("base_filters", 64)
    if args.quick:
        args.resolution, args.batch_size = 8, 4
        args.network_args = {"base_filters": 4} if args.network == "dcgan" else args.network_args
        args.steps, args.warmup, args.repeats, args.channels = 2, 1, 1, 1
    return args


def main(argv=None) -> dict:
    """Runs the benchmark from command-line arguments; returns the result dict."""
    args = parse_args(argv)
    result = run(args)
    columns = ["network", "variant", "single_d_pass", "images_per_s", "ms_per_step",
               "reference_images_per_s", "ratio_vs_reference", "ratio_vs_reference_best",
               "achieved_gflops", "mfu"]
    title = f"Training throughput on {result['rows'][0]['device']}"
    common.print_table(result["rows"], columns, title)
    common.write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
