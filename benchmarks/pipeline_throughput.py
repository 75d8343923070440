"""Input-pipeline throughput next to the training step rate, on this machine.

The pipeline must never be what training waits for. This writes a folder of JPEGs and
a real TFDS dataset (tfrecord shards of encoded JPEGs, prepared locally by a tiny
builder, no download), times `kgan.data.load` over each in images/second (first
epoch: decode + resize; second epoch with `cache=True`: from memory), and times GAN
training steps on the same batch size when `kgan.GAN` is available.

Run:
    python benchmarks/pipeline_throughput.py --images 2000 --json results.json

Expect thousands of images/s from the pipeline on 2 CPU cores at 64 px, and a
training rate one or two orders of magnitude lower: the pipeline is not the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf
from PIL import Image

import kgan.data

SIDE = 64


def smooth_images(count: int, seed: int = 0):
    """Yields blurry random RGB images, which compress like photos (noise does not)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        small = rng.integers(0, 256, [8, 8, 3], dtype=np.uint8)
        yield np.asarray(Image.fromarray(small).resize((SIDE, SIDE), Image.BILINEAR))


def write_folder(root: str, count: int) -> str:
    folder = os.path.join(root, "jpegs")
    os.makedirs(folder)
    for index, image in enumerate(smooth_images(count)):
        Image.fromarray(image).save(os.path.join(folder, f"{index:06d}.jpg"), quality=90)
    return folder


def prepare_tfds(data_dir: str, count: int) -> str:
    """Builds a local TFDS dataset (the real record format) from generated images."""
    import tensorflow_datasets as tfds

    class KganBenchImages(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(SIDE, SIDE, 3), encoding_format="jpeg"),
                        "label": tfds.features.ClassLabel(num_classes=10),
                    }
                ),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for index, image in enumerate(smooth_images(count, seed=1)):
                yield index, {"image": image, "label": index % 10}

    KganBenchImages(data_dir=data_dir).download_and_prepare()
    return "kgan_bench_images"


def images_per_second(dataset: tf.data.Dataset, epochs: int) -> list[float]:
    """Images/s per epoch; each epoch iterates the whole dataset once."""
    rates = []
    for _ in range(epochs):
        start, count = time.perf_counter(), 0
        for batch in dataset:
            images = batch[0] if isinstance(batch, tuple) else batch
            count += int(images.shape[0])
        rates.append(count / (time.perf_counter() - start))
    return rates


def pipeline_rates(source: str, batch_size: int, data_dir: str | None) -> dict:
    """Epoch rates without and with the cache; for folders also the up-front validation."""
    common = dict(resolution=SIDE, channels=3, batch_size=batch_size, data_dir=data_dir)
    rates = {}
    if os.path.isdir(source):
        start = time.perf_counter()
        count = len(kgan.data.scan_image_folder(source).files)
        rates["validate_images_per_s"] = round(count / (time.perf_counter() - start))
    plain = kgan.data.load(source, **common)
    cached = kgan.data.load(source, cache=True, **common)
    first, _ = images_per_second(plain, 2)
    fill, from_cache = images_per_second(cached, 2)
    rates.update(decode_images_per_s=round(first), cached_images_per_s=round(from_cache))
    return rates


def training_rate(batch_size: int, steps: int) -> dict | None:
    """GAN train-step images/s on in-memory batches, or None without kgan.GAN."""
    try:
        import keras

        from kgan import GAN, networks
    except ImportError:
        return None
    generator, discriminator = networks.dcgan(resolution=SIDE, channels=3, latent_dim=128)
    gan = GAN(generator, discriminator, latent_dim=128)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    batch = tf.random.uniform([batch_size, SIDE, SIDE, 3], -1.0, 1.0)
    dataset = tf.data.Dataset.from_tensors(batch).repeat(steps)
    gan.fit(dataset.take(2), epochs=1, verbose=0)  # trace and build
    start = time.perf_counter()
    gan.fit(dataset, epochs=1, verbose=0)
    rate = steps * batch_size / (time.perf_counter() - start)
    return {"train_images_per_s": round(rate, 1), "model": "dcgan 64px, base_filters=64"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        folder = write_folder(root, args.images)
        name = prepare_tfds(os.path.join(root, "tfds"), args.images)
        results = {
            "machine": f"{os.cpu_count()} CPU cores, tensorflow {tf.__version__}",
            "images": args.images,
            "resolution": SIDE,
            "batch_size": args.batch_size,
            "jpeg_folder": pipeline_rates(folder, args.batch_size, None),
            "tfds_records": pipeline_rates(name, args.batch_size, os.path.join(root, "tfds")),
            "training": training_rate(args.batch_size, args.train_steps),
        }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
