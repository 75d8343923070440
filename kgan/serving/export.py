"""SavedModel export for TF Serving: signatures, warmup, atomic versions.

Layout (contract, see docs/design.md): `EXPORT_DIR/<model_name>/<version>/` holding
`saved_model.pb`, `variables/` and `assets.extra/tf_serving_warmup_requests`. A version
is written under a hidden temporary name in the model folder, loaded back and queried
once, then renamed to its number, so a polling server never sees half a version. The
rename is the arbiter between concurrent exports: renaming onto an existing non-empty
version fails, and the loser takes the next number.

An export killed mid-way (SIGKILL, power loss) leaves its `.tmp-<id>` folder behind; the
next export in that model folder removes it when it is older than the exporting process
and no live export holds its lock file (`.tmp-<id>.lock`, flock'ed while exporting).

Example:
    >>> path = kgan.export_generator(gan, "exports", model_name="digits")
    >>> path
    'exports/digits/1'
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from kgan import _durable
from kgan.gan.sampling import latents_from_seeds
from kgan.serving.client import error_line
from kgan.serving.limits import (
    INFO_FILE,
    INT64_MAX,
    MAX_BATCH_SIZE,
    TRUNCATED_SIGNATURES,
    check_labels,
    check_latents,
    check_model_name,
    check_seeds,
    check_truncation,
    is_version,
    labels_from_seeds,
    latest_version,
    read_info_file,
    version_target,
)
from kgan.serving.signatures import (
    TRUNCATION_INFO,
    GeneratorSpec,
    build_module,
    float32_generator,
    is_style_based,
    to_uint8,
)
from kgan.serving.warmup import write_warmup

__all__ = ["MAX_BATCH_SIZE", "ExportError", "ExportedGenerator", "export_generator"]

_TEMP_PREFIX = ".tmp-"
_LOCK_SUFFIX = ".lock"
# `.tmp-<id>` (an export), `.tmp-<id>.old` (a version it replaces), `.tmp-<id>.lock`; and
# `.tmp-old-<id>`, the replaced-version name of kgan before the lock files.
_TEMP_NAME = re.compile(r"^\.tmp-(?:old-)?([0-9a-f]{32})(?:\.old|\.lock)?$")
# Set when this module loads: every export of this process is newer, so never stale to it.
_PROCESS_START = time.time()
# Renaming a directory onto an existing non-empty one fails with one of these.
_TAKEN = (errno.EEXIST, errno.ENOTEMPTY)


class ExportError(RuntimeError):
    """The export was written but failed its load-and-query check; nothing was published."""


def export_generator(
    gan_or_generator,
    export_dir: str | os.PathLike,
    model_name: str | None = None,
    version: int | None = None,
    overwrite: bool = False,
    num_classes: int | None = None,
) -> str:
    """Exports a generator as a new TF Serving version and returns its directory.

    A SavedModel is a TensorFlow graph: on another Keras backend (JAX) the model is saved
    as a temporary `.keras` file and exported by kgan-export in a TensorFlow process.

    Args:
        gan_or_generator: a `kgan.GAN` (its `sampling_generator`, the EMA generator when
            there is one, is exported with the GAN's latent_dim / num_classes) or a bare
            Keras generator taking `z` (and an int `label` when it has two inputs).
        export_dir: folder of models; the version goes to `export_dir/model_name/`, or to
            `export_dir/` itself when `model_name` is None (then it is the model folder).
        model_name: the name TF Serving serves the model under (`models.config`): letters,
            digits, '_', '.', '-' (`kgan.serving.limits.MODEL_NAME_PATTERN`), so the
            version never lands outside `export_dir`.
        version: positive integer to write; None takes the next free number (max + 1, so
            the new export becomes the "latest" a server picks up).
        overwrite: replace `version` if it exists; without it an existing version is
            never touched.
        num_classes: number of classes, required for a bare conditional generator.

    Returns:
        The path of the published version directory.

    Raises:
        FileExistsError: `version` exists and `overwrite` is False.
        ValueError: the model or arguments cannot be exported.
        ExportError: the written SavedModel did not load or answer correctly.
    """
    if model_name is not None:
        check_model_name(model_name, "model_name")  # a folder of export_dir, never a path
    model_dir = os.path.join(os.fspath(export_dir), model_name) if model_name else (
        os.fspath(export_dir))
    name = model_name or os.path.basename(os.path.abspath(model_dir))
    target = version_target(model_dir, version, overwrite)
    if keras.backend.backend() != "tensorflow":
        return _export_in_tensorflow_process(gan_or_generator, model_dir, version, overwrite,
                                             num_classes)
    generator, spec = _resolve(gan_or_generator, num_classes)
    generator = float32_generator(generator)
    os.makedirs(model_dir, exist_ok=True)
    remove_stale_temps(model_dir)
    token = uuid.uuid4().hex
    temp = os.path.join(model_dir, f"{_TEMP_PREFIX}{token}")
    with _TempLock(f"{temp}{_LOCK_SUFFIX}"):
        try:
            _write(generator, spec, temp, name)
            _verify(temp, generator, spec)
            _durable.sync_tree(temp)  # the files reach the disk before a server sees them
            published = _publish(temp, model_dir, target, overwrite, token)
            _durable.sync_dir(model_dir)
            return published
        finally:
            shutil.rmtree(temp, ignore_errors=True)


def _export_in_tensorflow_process(model, model_dir: str, version: int | None,
                                  overwrite: bool, num_classes: int | None) -> str:
    """On JAX: the model saved as .keras, then exported by TensorFlow (`export_keras_file`)."""
    model_dir = os.path.normpath(model_dir)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        return export_keras_file(path, os.path.dirname(model_dir) or ".",
                                 os.path.basename(model_dir), version=version,
                                 overwrite=overwrite, num_classes=num_classes)


def _registering_modules() -> list[str]:
    """The modules (other than kgan's and Keras's) that registered Keras classes in this
    process, for the exporting process to import: the user's own layers."""
    modules = {getattr(obj, "__module__", None)
               for obj in keras.saving.get_custom_objects().values()}
    return sorted(m for m in modules if m and m != "__main__"
                  and not m.startswith(("kgan.", "keras.")) and m not in ("kgan", "keras"))


def export_keras_file(path: str | os.PathLike, export_dir: str | os.PathLike, model_name: str,
                      version: int | None = None, overwrite: bool = False,
                      num_classes: int | None = None,
                      imports: Sequence[str] | None = None) -> str:
    """Exports a saved `.keras` GAN (or generator) with kgan-export in a TensorFlow process,
    from a process on any Keras backend: a SavedModel is a TensorFlow graph, and Keras runs
    one backend per process. `imports`: modules that process imports first (where the
    model's own layers are registered; default: those that registered Keras classes in
    this process). Returns the version directory; raises as
    `export_generator` does (ValueError, FileExistsError; OSError when the export itself
    failed)."""
    imports = _registering_modules() if imports is None else imports
    command = [sys.executable, "-m", "kgan.cli.export", os.fspath(path), os.fspath(export_dir),
               "--model-name", model_name, *(f"--import={name}" for name in imports)]
    command += ["--version", str(int(version))] if version is not None else []
    command += ["--overwrite"] if overwrite else []
    command += ["--num-classes", str(int(num_classes))] if num_classes else []
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    # This process's import path too, so that `imports` found here are found there.
    paths = [package_root, os.environ.get("PYTHONPATH"), *(p for p in sys.path if p)]
    env = dict(os.environ, KERAS_BACKEND="tensorflow",
               PYTHONPATH=os.pathsep.join(dict.fromkeys(filter(None, paths))))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = done.stderr.strip().splitlines()
    message = (lines[-1] if lines else f"kgan-export exited {done.returncode}").removeprefix(
        "kgan-export: error: ")
    if done.returncode == 2:
        raise (FileExistsError if "already exists" in message else ValueError)(message)
    if done.returncode in (130, 143):
        raise KeyboardInterrupt(message)
    if done.returncode:
        raise OSError(message)
    return done.stdout.strip().splitlines()[-1]


class _TempLock:
    """An flock'ed file beside an export's temporary folder: while it is held, the
    export is alive and `remove_stale_temps` leaves its folders alone."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> _TempLock:
        self._file = open(self.path, "w")  # noqa: SIM115  (held for the whole export)
        fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info) -> None:
        with contextlib.suppress(OSError):
            os.remove(self.path)
        self._file.close()  # releases the lock


def remove_stale_temps(model_dir: str) -> list[str]:
    """Removes what killed exports left in `model_dir`; returns the removed names.

    A `.tmp-<id>*` entry is stale when it is older than this process (so no export of
    this process made it) and no live export holds `.tmp-<id>.lock`.
    """
    removed = []
    for name in sorted(os.listdir(model_dir)):
        match = _TEMP_NAME.match(name)
        path = os.path.join(model_dir, name)
        if not match or _newer_than_process(path) or _locked(
                os.path.join(model_dir, f"{_TEMP_PREFIX}{match[1]}{_LOCK_SUFFIX}")):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
        removed.append(name)
    return removed


def _newer_than_process(path: str) -> bool:
    try:
        return os.stat(path).st_mtime >= _PROCESS_START
    except OSError:  # gone meanwhile
        return True


def _locked(lock_path: str) -> bool:
    try:
        with open(lock_path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            return False
    except OSError:  # no lock file: nobody holds it
        return False


def _resolve(obj, num_classes: int | None) -> tuple[keras.Model, GeneratorSpec]:
    """Finds the generator to export and what it consumes."""
    if hasattr(obj, "sampling_generator"):
        if num_classes is not None and num_classes != obj.num_classes:
            has = (f"{obj.num_classes} classes" if obj.num_classes
                   else "no classes (it is unconditional)")
            raise ValueError(f"num_classes={num_classes} disagrees with the GAN, which has "
                             f"{has}; leave num_classes out for a GAN")
        generator, latent_dim, num_classes = (
            obj.sampling_generator, int(obj.latent_dim), obj.num_classes)
    elif isinstance(obj, keras.Model):
        generator, latent_dim = obj, None
    else:
        raise ValueError(f"expected a kgan.GAN or a keras.Model generator, got {type(obj)}")
    inputs = list(getattr(generator, "inputs", None) or [])
    if len(inputs) not in (1, 2):
        raise ValueError("the generator must be built with 1 input (z) or 2 (z, label); "
                         f"it has {len(inputs)}")
    label_first = len(inputs) == 2 and "int" in str(inputs[0].dtype)
    z_input = inputs[1] if label_first else inputs[0]
    if len(z_input.shape) != 2 or z_input.shape[-1] is None:
        raise ValueError(f"the generator's z input must be [N, latent_dim], got {z_input.shape}")
    latent_dim = latent_dim or int(z_input.shape[-1])
    if (len(inputs) == 2) != (num_classes is not None):
        raise ValueError("a generator with a label input needs num_classes (and one "
                         f"without must not get it): {len(inputs)} inputs, "
                         f"num_classes={num_classes}")
    return generator, GeneratorSpec(latent_dim, num_classes, label_first,
                                    style_based=is_style_based(generator))


def _write(generator: keras.Model, spec: GeneratorSpec, path: str, model_name: str) -> None:
    try:
        import tensorflow_serving.apis  # noqa: F401  (warmup records need its protos)
    except ImportError as error:
        raise ImportError(
            "export writes TF Serving warmup requests and needs tensorflow-serving-api "
            "(a kgan dependency): pip install tensorflow-serving-api"
        ) from error
    module, signatures = build_module(generator, spec)
    tf.saved_model.save(module, path, signatures=signatures)
    write_warmup(path, spec, model_name)
    info = {"latent_dim": spec.latent_dim, "num_classes": spec.num_classes,
            "image_shape": list(generator.outputs[0].shape[1:]),
            "max_batch_size": MAX_BATCH_SIZE}
    if spec.style_based:
        info["truncation"] = dict(TRUNCATION_INFO)
    with open(os.path.join(path, INFO_FILE), "w") as handle:
        json.dump(info, handle, indent=2)


def _verify(path: str, generator: keras.Model, spec: GeneratorSpec) -> None:
    """Loads the written SavedModel and checks one request against the Keras model (and
    one truncated request, psi = 0.5, for a style-based generator); a conditional one with
    its first and last class, so a class count the generator does not have fails here."""
    seeds = [0] if spec.num_classes is None else [0, 1]
    labels = None if spec.num_classes is None else [0, spec.num_classes - 1]
    psis = [None, 0.5] if spec.style_based else [None]
    try:
        exported = ExportedGenerator(path)
        served = [exported.generate(seeds, labels, truncation=psi) for psi in psis]
    except Exception as error:  # any failure here means "do not publish"
        hint = "" if labels is None else (
            f" (with classes 0 and {labels[-1]}: does the generator have "
            f"{spec.num_classes} classes? check num_classes / --num-classes)")
        raise ExportError(f"the export at {path} failed to load or run{hint}: "
                          f"{error_line(str(error))}") from error
    z = latents_from_seeds(tf.constant(seeds, tf.int64), spec.latent_dim)
    inputs = spec.model_inputs(z, None if labels is None else tf.constant(labels, tf.int32))
    seed = {"noise_seeds": tf.constant(seeds, tf.int64)} if spec.style_based else {}
    for psi, answer in zip(psis, served, strict=True):
        options = seed if psi is None else {
            **seed, "truncation_psi": tf.constant([psi] * len(seeds))}
        expected = to_uint8(generator(inputs, training=False, **options)).numpy()
        gap = np.abs(answer["images"].astype(int) - expected.astype(int)).max()
        if gap > 1:
            raise ExportError(f"the export at {path} answers differently from the Keras "
                              f"generator (max pixel difference {gap}, truncation {psi})")


def _publish(temp: str, model_dir: str, target: str | None, overwrite: bool,
             token: str) -> str:
    """Renames the verified temp folder to its version number; returns the version path."""
    if target is None:
        while True:
            target = os.path.join(model_dir, str(_next_version(model_dir)))
            try:
                os.rename(temp, target)
                return target
            except OSError as error:
                if error.errno not in _TAKEN:
                    raise
    if overwrite and os.path.exists(target):
        return _replace(temp, target, token)
    try:
        os.rename(temp, target)
    except OSError as error:
        if error.errno in _TAKEN:
            raise FileExistsError(f"version {target} appeared while exporting; pass "
                                  "overwrite=True to replace it") from error
        raise
    return target


def _replace(temp: str, target: str, token: str) -> str:
    # Move the old version aside (non-numeric name, so a server drops it), then rename;
    # the name shares the export's lock, so a stale-temp sweep leaves it alone.
    old = f"{os.path.dirname(target)}/{_TEMP_PREFIX}{token}.old"
    os.rename(target, old)
    try:
        os.rename(temp, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


def _next_version(model_dir: str) -> int:
    # Folders past int64 are no versions TF Serving can load: they do not count.
    numbers = [int(name) for name in os.listdir(model_dir) if is_version(name)]
    return max((n for n in numbers if n < INT64_MAX), default=0) + 1


class ExportedGenerator:
    """Calls an exported version from Python, validating requests first.

    The signatures reject bad input too, but a TensorSpec mismatch (wrong latent size,
    float64) surfaces from TF as an opaque function-signature error; this wrapper says
    what is wrong before calling.

    Generators with a mapping network (`truncation` is True) also take `truncation=psi`:
    one number for the whole request or one per row, in TRUNCATION_RANGE.

    Example:
        >>> served = ExportedGenerator("exports/digits")        # newest version; or .../1
        >>> served.generate([0, 1, 2])["images"].shape      # (3, H, W, C) uint8
        >>> served.generate([0, 1, 2], truncation=0.7)      # stylegan2 exports
    """

    def __init__(self, path: str | os.PathLike):
        """`path`: a version folder, or a model folder (its newest version, as kgan-demo,
        kgan-generate and TF Serving's default policy take)."""
        path = os.fspath(path)
        found = latest_version(path) if os.path.isdir(path) else None
        if found is None:
            raise FileNotFoundError(f"no SavedModel (saved_model.pb) in {path} or in its "
                                    "numbered version folders; pass EXPORT_DIR/<model> or "
                                    "EXPORT_DIR/<model>/<version>")
        self.path = found
        info = read_info_file(self.path)  # names a missing or damaged kgan.json
        try:
            self._loaded = tf.saved_model.load(self.path)
        except (tf.errors.OpError, ValueError, OSError) as error:
            cause = " ".join(str(error).split())[:150]
            raise ValueError(f"cannot load the SavedModel in {self.path} ({cause}): its files "
                             "are damaged; export the model again with kgan-export") from None
        inputs = self._loaded.signatures["serving_default"].structured_input_signature[1]
        self.latent_dim = int(inputs["z"].shape[-1])
        self.num_classes = info.get("num_classes")
        self.truncation = TRUNCATED_SIGNATURES["generate"] in self._loaded.signatures

    @property
    def signatures(self):
        """The loaded signatures by name (the TF functions TF Serving would run)."""
        return self._loaded.signatures

    def images(self, z, labels=None, truncation=None) -> np.ndarray:
        """Runs `serving_default` (`latents_truncated` with a truncation): float32
        latents [N, latent_dim] -> uint8 images."""
        z = check_latents(z, self.latent_dim)
        return self._run("serving_default", {"z": z}, labels, truncation)["images"]

    def generate(self, seeds, labels=None, truncation=None) -> dict[str, np.ndarray]:
        """Runs `generate` (`generate_truncated` with a truncation): int seeds [N] ->
        {"images", "png_bytes", "z"} as NumPy. A conditional generator's labels default to
        seed % num_classes, as `GAN.generate` and the serving client choose them."""
        seeds = check_seeds(seeds)
        if labels is None and self.num_classes:
            labels = labels_from_seeds(seeds, self.num_classes)
        return self._run("generate", {"seed": seeds}, labels, truncation)

    def _run(self, signature: str, inputs: dict, labels, truncation) -> dict[str, np.ndarray]:
        batch = len(next(iter(inputs.values())))
        labels = check_labels(labels, batch, self.num_classes)
        if labels is not None:
            inputs["label"] = labels
        if truncation is not None:
            if not self.truncation:
                raise ValueError(f"{self.path} takes no truncation: only generators with a "
                                 "mapping network (e.g. stylegan2) do; leave it out")
            inputs["truncation"] = check_truncation(truncation, batch)
            signature = TRUNCATED_SIGNATURES[signature]
        outputs = self._loaded.signatures[signature](
            **{key: tf.constant(value) for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}
