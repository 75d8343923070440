"""One interface over the places a generator can run: an export in-process, TF Serving, Keras.

Every backend speaks in the export's signature terms (design.md, TF Serving export
contract): `generate` maps int64 seeds (+ int32 labels) to uint8 images, PNG bytes and
the latents it used; `serving_default` maps latents to images. What a model can do
beyond that is read from the model, never assumed: a signature with `seed` and
`truncation` inputs (kgan's stylegan2 exports: `generate_truncated`, and
`latents_truncated` for latents) makes `info.truncation` non-None, and the page shows its
slider only then. `pngs` asks a PNG-only twin (`generate_png`) where the model has one,
so the page receives no pixel arrays it does not show.

- `EmbeddedBackend`: loads `EXPORT_DIR/<model>[/<version>]` with TensorFlow, as the
  server would, and calls its signatures (the demo's default).
- `ServingBackend`: a TF Serving over REST or gRPC through `kgan.serving.client`.
- `KerasBackend`: a saved `kgan.GAN` (.keras), for `kgan-generate`.

Example:
    >>> backend = load_backend("exports/digits")
    >>> backend.info.image_shape, backend.info.num_classes
    ((32, 32, 1), None)
    >>> backend.generate([0, 1, 2]).images.shape
    (3, 32, 32, 1)
"""

from __future__ import annotations

import os

import numpy as np

from kgan.demo import media
from kgan.demo.model import (  # noqa: F401  (re-exported: the backends' vocabulary)
    INFO_FILE,
    MAX_BATCH,
    MAX_SEED,
    TRUNCATION_INPUT,
    Images,
    ModelInfo,
    Truncation,
    check_labels,
    check_seeds,
    check_truncation,
    model_name,
    read_info_file,
    truncation_from,
    version_dir,
)
from kgan.serving.client import ServingError, checked_num_classes, error_line, kgan_message
from kgan.serving.limits import (
    NUM_CLASSES_SIGNATURE,
    PNG_SIGNATURES,
    TRUNCATED_SIGNATURES,
    TRUNCATION_INFO,
)


class Backend:
    """Validates requests in NumPy, then runs a signature through `_run` (one per backend).

    Subclasses set `self.info` and implement `_run(signature, inputs) -> outputs`, where
    inputs and outputs are named as in the export's signatures.
    """

    info: ModelInfo
    kind = "backend"
    #: {signature: its PNG-only twin} for the twins the model has (kgan.serving.limits).
    png_signatures: dict[str, str] = {}

    def generate(self, seeds, labels=None, truncation: float | None = None) -> Images:
        """Images for int seeds [N]; labels default to seed % num_classes (as GAN.generate)."""
        seeds = check_seeds(seeds)
        signature, extras = self._extras("generate", seeds, labels, truncation)
        inputs = {"seed": seeds, **extras}
        parts = [self._run(signature, _rows(inputs, start))
                 for start in range(0, len(seeds), MAX_BATCH)]
        images = np.concatenate([p["images"] for p in parts]).astype(np.uint8)
        png = [bytes(b) for p in parts for b in p.get("png_bytes", [])]
        if len(png) != len(images):  # a backend without PNG output
            png = [media.png_bytes(image) for image in images]
        return Images(images, png, np.concatenate([p["z"] for p in parts]).astype(np.float32))

    def pngs(self, seeds, labels=None, truncation: float | None = None) -> list[bytes]:
        """`generate(...).png`, from the export's PNG-only signature where it has one:
        over REST the pixel arrays are most of `generate`'s reply (the page shows PNGs)."""
        seeds = check_seeds(seeds)
        signature, extras = self._extras("generate", seeds, labels, truncation)
        if signature not in self.png_signatures:
            return self.generate(seeds, labels, truncation).png
        inputs = {"seed": seeds, **extras}
        return [bytes(png) for start in range(0, len(seeds), MAX_BATCH) for png in self._run(
            self.png_signatures[signature], _rows(inputs, start))["png_bytes"]]

    def from_latents(self, z, labels=None, truncation: float | None = None) -> np.ndarray:
        """uint8 images for latents z [N, latent_dim] (`serving_default`)."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.info.latent_dim or not len(z):
            raise ValueError(f"z must have shape [N, {self.info.latent_dim}], got "
                             f"{list(z.shape)}")
        if labels is None and self.info.conditional:
            raise ValueError(f"this model is conditional: pass labels in "
                             f"[0, {self.info.num_classes})")
        signature, extras = self._extras("serving_default", np.arange(len(z)), labels,
                                         truncation)
        inputs = {"z": z, **extras}
        parts = [self._run(signature, _rows(inputs, start))["images"]
                 for start in range(0, len(z), MAX_BATCH)]
        return np.concatenate(parts).astype(np.uint8)

    def interpolate(self, seed_a: int, seed_b: int, frames: int, label: int | None = None,
                    truncation: float | None = None) -> np.ndarray:
        """Frames [F, H, W, C] from seed_a's image to seed_b's, along the latent great circle.

        Both ends keep one class: `label`, or seed_a's default class. The end frames are
        the seeds' own images (`generate`): a style-based generator seeds its noise from
        the seed there, and from a hash of z in between.
        """
        ends = self.generate([seed_a, seed_b], self._same_label(seed_a, label), truncation)
        z = media.interpolation_latents(ends.z[0], ends.z[1], frames)
        labels = None if not self.info.conditional else np.full(
            frames, self._same_label(seed_a, label)[0], np.int32)
        images = self.from_latents(z, labels, truncation)
        images[0], images[-1] = ends.images[0], ends.images[1]
        return images

    def close(self) -> None:
        """Releases connections (servers); loaded models go with the object."""

    def _same_label(self, seed: int, label: int | None):
        if not self.info.conditional:
            return None if label is None else [label, label]  # check_labels says why
        value = int(seed) % self.info.num_classes if label is None else label
        return [value, value]

    def _extras(self, signature: str, seeds: np.ndarray, labels, truncation
                ) -> tuple[str, dict[str, np.ndarray]]:
        """The signature to run for `signature` ("generate" or "serving_default") and the
        inputs beside seed / z: labels, and truncation when the model takes it (its
        default when none is given, so the slider's default is what a page shows)."""
        extras = {}
        labels = check_labels(labels, seeds, self.info.num_classes)
        if labels is not None:
            extras["label"] = labels
        spec = self.info.truncation
        if truncation is None and spec is None:
            return signature, extras
        value = spec.default if truncation is None else check_truncation(truncation, spec)
        target = spec.signature if signature == "generate" else spec.latents_signature
        if target is None:
            if truncation is not None:
                raise ValueError("this model takes a truncation with seeds only")
            return signature, extras
        extras[TRUNCATION_INPUT] = (np.full(len(seeds), value, np.float32) if spec.rank
                                    else np.float32(value))
        return target, extras

    def _run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


def _rows(inputs: dict[str, np.ndarray], start: int) -> dict[str, np.ndarray]:
    """Rows start..start+MAX_BATCH of each batched input (scalars pass whole)."""
    return {k: v[start:start + MAX_BATCH] if np.ndim(v) else v for k, v in inputs.items()}


# ------------------------------------------------------------------ the backends
class EmbeddedBackend(Backend):
    """Runs an export's signatures in this process (TensorFlow), as TF Serving would."""

    kind = "embedded"

    def __init__(self, path: str):
        import tensorflow as tf

        from kgan.serving.export import ExportedGenerator

        self.path = version_dir(path)
        extra = read_info_file(self.path)
        self._tf = tf
        # Loaded as kgan-evaluate and the export's own check load it (damaged files named);
        # the loaded object stays referenced, as its signatures use its variables.
        self._export = ExportedGenerator(self.path)
        self._signatures = self._export.signatures
        inputs = {signature: {name: len(spec.shape) for name, spec in
                              function.structured_input_signature[1].items()}
                  for signature, function in self._signatures.items()}
        self.png_signatures = _png_twins(self._signatures)
        self.info = ModelInfo(
            name=model_name(self.path), image_shape=tuple(extra["image_shape"]),
            latent_dim=int(extra["latent_dim"]), num_classes=extra.get("num_classes"),
            truncation=truncation_from(inputs, extra.get(TRUNCATION_INPUT)), source=self.path)

    def _run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = self._tf
        try:
            outputs = self._signatures[signature](
                **{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(_graph_message(error.message)) from None
        return {key: value.numpy() for key, value in outputs.items()}


def _png_twins(signatures) -> dict[str, str]:
    return {name: png for name, png in PNG_SIGNATURES.items() if png in signatures}


def _public(signatures) -> list[str]:
    return sorted(name for name in signatures if not name.startswith("__"))


def _graph_message(message: str) -> str:
    """The kgan check's own words from a TF error, else the op's own message."""
    return error_line(message)


class ServingBackend(Backend):
    """Asks a TF Serving for images through kgan.serving.client (RestClient or GrpcClient).

    Args:
        client: a connected client; its `model` is the served model name.
        num_classes: classes of a conditional model, checked against the server's answer
            (`kgan.serving.client.checked_num_classes`); None asks the server (an export
            from before the `num_classes` signature: `info_dir`'s kgan.json, else a probe).
        info_dir: a local copy of the export (optional): its kgan.json gives the
            truncation range, and what the server's metadata does not say.
    """

    kind = "serving"

    def __init__(self, client, num_classes: int | None = None, info_dir: str | None = None):
        self.client = client
        extra = read_info_file(version_dir(info_dir)) if info_dir else {}
        signatures = client.metadata()["metadata"]["signature_def"]["signature_def"]
        if "generate" not in signatures:
            raise ValueError(f"the served model {client.model!r} is not a kgan export (its "
                             f"signatures: {', '.join(_public(signatures)) or 'none'}; a kgan "
                             "export has generate): serve one made by kgan-export")
        generate = signatures["generate"]
        all_inputs = {signature: {name: len(_dims(spec)) for name, spec in
                                  definition.get("inputs", {}).items()}
                      for signature, definition in signatures.items()}
        inputs = all_inputs["generate"]
        # What the server says comes first: a local export folder may hold another version
        # than the one served (a newer export not loaded yet, an old --version).
        served_shape, served_latent = (_dims(generate["outputs"]["images"])[1:],
                                        _dims(generate["outputs"]["z"])[1])
        image_shape = served_shape if min(served_shape, default=-1) > 0 else (
            extra.get("image_shape") or served_shape)
        latent_dim = served_latent if served_latent > 0 else extra.get("latent_dim")
        asks = num_classes is not None or not extra.get("num_classes") or (
            NUM_CLASSES_SIGNATURE in signatures)  # a valid request: always ask then
        if "label" in inputs and asks:
            num_classes = checked_num_classes(client, num_classes)
        elif "label" in inputs:
            num_classes = extra["num_classes"]
        elif num_classes is not None:
            raise ValueError("--num-classes given, but the served model takes no label")
        where = getattr(client, "url", None) or getattr(client, "target", "")
        self.png_signatures = _png_twins(signatures)
        self.info = ModelInfo(
            name=client.model, image_shape=tuple(int(d) for d in image_shape),
            latent_dim=int(latent_dim), num_classes=num_classes,
            truncation=truncation_from(all_inputs, extra.get(TRUNCATION_INPUT)),
            source=f"TF Serving {where}")

    def _run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return self.client.predict(inputs, signature)
        except ServingError as error:
            if error.refused:  # the request was at fault: the page answers 400, not 502
                raise ValueError(kgan_message(str(error)) or str(error)) from None
            raise

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close:
            close()


def _dims(spec: dict) -> list[int]:
    """A TensorInfo's dims from metadata JSON ({"tensor_shape": {"dim": [{"size": "-1"}]}})."""
    return [int(d.get("size", -1)) for d in spec.get("tensor_shape", {}).get("dim", [])]


class KerasBackend(Backend):
    """A saved kgan.GAN (or bare unconditional generator), run with Keras: same seeds,
    same latents and labels as its export, float images converted as the export does."""

    kind = "keras"

    def __init__(self, path: str):
        from kgan.training.sources import load_keras_file

        model = load_keras_file(path)
        if hasattr(model, "sampling_generator"):
            self._generator = model.sampling_generator
            latent_dim, num_classes = int(model.latent_dim), model.num_classes
        elif len(getattr(model, "inputs", None) or []) == 1:
            self._generator, latent_dim, num_classes = model, int(model.inputs[0].shape[-1]), None
        else:
            raise ValueError(f"{path} holds neither a kgan.GAN nor a one-input generator; "
                             "export a conditional generator with kgan-export --num-classes")
        shape = tuple(int(d) for d in self._generator.outputs[0].shape[1:])
        self.info = ModelInfo(name=os.path.splitext(os.path.basename(path))[0],
                              image_shape=shape, latent_dim=latent_dim,
                              num_classes=num_classes, truncation=_keras_truncation(
                                  self._generator), source=os.fspath(path))

    def _run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The export's signatures computed with Keras: seeds give the same latents (and a
        style-based generator the same noise) as `generate`, latents as `serving_default`,
        and the truncated ones take `truncation` besides."""
        from kgan.gan.sampling import latents_from_seeds, sample_images
        from kgan.images import to_uint8_numpy

        outputs, z, seeds = {}, inputs.get("z"), inputs.get("seed")
        if seeds is not None:
            outputs["z"] = np.asarray(latents_from_seeds(seeds, self.info.latent_dim))
        images = sample_images(self._generator, self.info.latent_dim, self.info.num_classes,
                               z, labels=inputs.get("label"), seeds=seeds,
                               truncation=inputs.get(TRUNCATION_INPUT))
        outputs["images"] = to_uint8_numpy(images)
        return outputs


def _keras_truncation(generator) -> Truncation | None:
    """A style-based generator takes truncation as its export's truncated signatures do."""
    from kgan.gan.sampling import is_style_based

    if not is_style_based(generator):
        return None
    return Truncation(default=TRUNCATION_INFO["default"], minimum=TRUNCATION_INFO["min"],
                      maximum=TRUNCATION_INFO["max"], rank=1,
                      signature=TRUNCATED_SIGNATURES["generate"],
                      latents_signature=TRUNCATED_SIGNATURES["serving_default"])


def load_backend(source: str) -> Backend:
    """A Keras backend for a .keras file or run directory (its final.keras, or its newest
    checkpoint while it trains: `kgan.training.sources.find_model_file`), else an export."""
    from kgan.training.sources import find_model_file, is_keras_source

    if is_keras_source(source):
        return KerasBackend(find_model_file(source))
    return EmbeddedBackend(source)
