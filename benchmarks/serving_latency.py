"""Latency of the exported `generate` signature, loaded the way TF Serving loads it.

Exports a (freshly initialised, so no training time) DCGAN generator with
`kgan.export_generator`, loads the version with the TF1 SavedModel loader into a
`tf.compat.v1.Session` (what TF Serving's SavedModelBundle does), and runs the
`generate` signature by its tensor names, as a Predict request does. Beside it, the
same generator called directly as a Keras model in this process (eager
`generator(z, training=False)`, z precomputed). Reported: p50 / p99 / mean latency at
batch 1, 16 and 64, for the full `generate` output (uint8 images, PNG bytes and z)
and for the images alone (a request with an output filter).

Run:
    python benchmarks/serving_latency.py --out benchmarks/results/serving_latency.json

Expect the session path to be no slower than the eager Keras call at batch 1 (a
graph call has less Python overhead) and PNG encoding to dominate the full
`generate` output at larger batches. Network and server-side batching are not
included: this is the model's share of a TF Serving request.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import kgan  # noqa: E402

SIGNATURE = "generate"


class SessionSignature:
    """A SavedModel signature run through a TF1 Session by tensor names (TF Serving style)."""

    def __init__(self, export_path: str, signature: str = SIGNATURE):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(self.session, ["serve"], export_path)
        signature_def = meta.signature_def[signature]
        self.inputs = {k: v.name for k, v in signature_def.inputs.items()}
        self.outputs = {k: v.name for k, v in signature_def.outputs.items()}

    def __call__(self, feeds: dict, outputs: list[str] | None = None) -> dict:
        names = outputs or list(self.outputs)
        fetches = {name: self.outputs[name] for name in names}
        feed_dict = {self.inputs[key]: value for key, value in feeds.items()}
        return self.session.run(fetches, feed_dict)

    def close(self) -> None:
        self.session.close()


def export(args, root: str) -> tuple[str, object]:
    """Builds a generator and exports it; returns (version path, Keras generator)."""
    generator, _ = kgan.networks.dcgan(args.resolution, args.channels, args.latent_dim,
                                       base_filters=args.base_filters)
    path = kgan.export_generator(generator, root, model_name="bench")
    return path, generator


def latencies(call, calls: int, warmup: int) -> dict:
    for _ in range(warmup):
        call()
    return common.percentiles_ms([common.timed(call) for _ in range(calls)])


def measure_batch(signature: SessionSignature, generator, batch: int, args) -> list[dict]:
    """Three rows for one batch size: full generate, images only, direct Keras call."""
    seeds = np.arange(batch, dtype=np.int64)
    z = tf.constant(kgan.gan.sampling.latents_from_seeds(seeds, args.latent_dim))
    paths = {
        "serving generate (images, png, z)": lambda: signature({"seed": seeds}),
        "serving generate (images only)": lambda: signature({"seed": seeds}, ["images"]),
        "keras generator(z) eager": lambda: generator(z, training=False).numpy(),
    }
    rows = []
    for name, call in paths.items():
        rows.append({"path": name, "batch": batch, **latencies(call, args.calls, args.warmup)})
        print(f"batch {batch:>3} {name}: p50 {rows[-1]['p50_ms']} ms", flush=True)
    return rows


def run(args) -> dict:
    """Exports, loads and times every path at every batch size; the JSON-ready result."""
    machine = common.machine()  # load average before the work
    with tempfile.TemporaryDirectory() as root:
        path, generator = export(args, root)
        signature = SessionSignature(path)
        try:
            rows = [row for batch in args.batches
                    for row in measure_batch(signature, generator, batch, args)]
        finally:
            signature.close()
    settings = {k: getattr(args, k) for k in
                ("resolution", "channels", "latent_dim", "base_filters", "batches", "calls",
                 "warmup")}
    return {"benchmark": "serving_latency", "machine": machine, "settings": settings,
            "rows": rows, "load_average_at_end": common.load_average()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--base-filters", type=int, default=32)
    p.add_argument("--batches", default="1,16,64", type=lambda s: [int(b) for b in s.split(",")])
    p.add_argument("--calls", type=int, default=200, help="timed calls per path and batch")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--out", help="write the JSON result here")
    args = p.parse_args(argv)
    if args.quick:
        args.resolution, args.base_filters, args.latent_dim = 8, 4, 4
        args.batches, args.calls, args.warmup = [1, 2], 5, 1
    return args


def main(argv=None) -> dict:
    """Runs the benchmark from command-line arguments; returns the result dict."""
    args = parse_args(argv)
    result = run(args)
    common.print_table(result["rows"], ["path", "batch", "p50_ms", "p99_ms", "mean_ms"],
                       "Generator latency")
    common.write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
