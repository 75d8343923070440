"""Export contract: signatures, server-side loading, warmup, graph hygiene, atomic versions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import assert_close_images, needs_proc_fd, record_syncs_and_renames, tiny_networks
from serving_fakes import run_in_progress
from tensorflow.core.protobuf import saved_model_pb2

import kgan
from kgan.cli import export as cli
from kgan.gan.sampling import latents_from_seeds
from kgan.images import to_uint8_numpy
from kgan.serving import export as export_module
from kgan.serving.export import MAX_BATCH_SIZE, ExportedGenerator, export_generator
from kgan.serving.warmup import read_warmup
from kgan.training import signals

LATENT, CLASSES = 8, 3
FAKES = os.path.join(os.path.dirname(__file__), "serving_fakes.py")
STATEFUL_RANDOM = {
    "RandomStandardNormal", "RandomUniform", "RandomUniformInt", "TruncatedNormal",
    "RandomShuffle", "Multinomial", "RandomGamma", "RandomPoisson", "RandomPoissonV2",
    "StatefulStandardNormal", "StatefulStandardNormalV2", "StatefulUniform",
    "StatefulUniformInt", "StatefulUniformFullInt", "StatefulTruncatedNormal",
    "StatefulRandomBinomial", "RngSkip", "RngReadAndSkip", "NonDeterministicInts",
}


def tiny_gan(num_classes=None, ema_decay=None, seed=0):
    keras.utils.set_random_seed(seed)
    generator, discriminator = tiny_networks("dcgan", num_classes=num_classes, resolution=8)
    return kgan.GAN(generator, discriminator, latent_dim=LATENT, num_classes=num_classes,
                    ema_decay=ema_decay)


def spread(generator, factor):
    """Scales the output layer so untrained images use the whole [-1, 1] range.

    A fresh generator's tanh outputs sit near 0 (every pixel ~128), which would let a
    wrong export pass an image comparison.
    """
    layer = generator.layers[-1]
    layer.kernel.assign(layer.kernel * factor)
    return generator


def keras_images(generator, z, labels=None):
    z = np.asarray(z, np.float32)
    inputs = z if labels is None else [z, np.asarray(labels, np.int32)]
    return to_uint8_numpy(generator(inputs, training=False))


# Generator outputs away from rounding boundaries, and the pixels they must become.
CONSTANT_OUTPUTS = [-1.5, -1.0, -0.9, -0.7, -0.5, -0.25, -0.2, 0.01,
                    0.25, 0.3, 0.5, 0.7, 0.9, 0.999, 1.0, 2.0]
CONSTANT_PIXELS = [0, 0, 13, 38, 64, 96, 102, 129, 159, 166, 191, 217, 242, 255, 255, 255]


def test_the_export_rounds_each_output_to_its_pixel_exactly(tmp_path):
    """A generator whose outputs are fixed constants (any z, any CPU): the served uint8
    pixels are round((x + 1) * 127.5), clipped; a floor or a shifted scale fails here."""
    z = keras.Input([LATENT])
    x = keras.layers.Dense(16, kernel_initializer="zeros",
                           bias_initializer=keras.initializers.Constant(CONSTANT_OUTPUTS))(z)
    generator = keras.Model(z, keras.layers.Reshape([4, 4, 1])(x), name="constant")
    served = ExportedGenerator(export_generator(generator, tmp_path))
    images = served.images(np.ones([2, LATENT], np.float32))
    np.testing.assert_array_equal(images.reshape(2, 16), [CONSTANT_PIXELS] * 2)
    np.testing.assert_array_equal(to_uint8_numpy(np.float32(CONSTANT_OUTPUTS)), CONSTANT_PIXELS)


def test_the_graph_and_numpy_conversions_agree_on_every_pixel_boundary():
    from kgan.serving.signatures import to_uint8

    halves = (np.arange(-2, 514, dtype=np.float32) / 2 / 127.5 - 1).astype(np.float32)
    np.testing.assert_array_equal(to_uint8(tf.constant(halves)).numpy(), to_uint8_numpy(halves))
    # Non-finite outputs have defined pixels too, the same in both, without NumPy's
    # "invalid value encountered in cast" warning.
    odd = np.float32([np.nan, np.inf, -np.inf, -np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(to_uint8_numpy(odd), [0, 255, 0, 0])
    np.testing.assert_array_equal(to_uint8(tf.constant(odd)).numpy(), [0, 255, 0, 0])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One unconditional generator and one conditional GAN with EMA, exported once."""
    root = tmp_path_factory.mktemp("exports")
    plain = spread(tiny_gan(seed=1).generator, 30.0)
    gan = tiny_gan(num_classes=CLASSES, ema_decay=0.9, seed=2)
    spread(gan.generator, 30.0)
    # The EMA copy draws the negative image, so exporting the raw generator would show.
    spread(gan.ema_generator, -30.0)
    return {
        "plain": (plain, export_generator(plain, root, model_name="plain")),
        "cond": (gan, export_generator(gan, root, model_name="cond")),
        "root": root,
    }


def bad_requests():
    z = np.zeros([2, LATENT], np.float32)
    z[1, 3] = np.nan
    seeds_over = np.arange(MAX_BATCH_SIZE + 1, dtype=np.int64)
    as_list = lambda a: [a.tolist(), str(a.dtype)]  # noqa: E731
    return {
        "nan": {"signature": "serving_default", "inputs": {"z": as_list(z)}},
        "empty": {"signature": "generate", "inputs": {"seed": as_list(seeds_over[:0])}},
        "oversized": {"signature": "generate", "inputs": {"seed": as_list(seeds_over)}},
    }


@pytest.fixture(scope="module")
def session_run(exported, tmp_path_factory):
    """Runs every signature and the warmup file in a fresh process via tf.compat.v1."""
    work = tmp_path_factory.mktemp("session")
    z = np.random.default_rng(0).normal(size=[5, LATENT]).astype(np.float32)
    seeds = np.array([3, 0, 7, 7, 11], np.int64)
    labels = (seeds % CLASSES).astype(np.int32)
    inputs = {"plain/serving_default/z": z, "plain/generate/seed": seeds,
              "cond/serving_default/z": z, "cond/serving_default/label": labels,
              "cond/generate/seed": seeds, "cond/generate/label": labels,
              "cond/num_classes/seed": seeds, "plain/generate_png/seed": seeds,
              "cond/generate_png/seed": seeds, "cond/generate_png/label": labels}
    np.savez(work / "inputs.npz", **inputs)
    spec = {"exports": {tag: exported[tag][1] for tag in ("plain", "cond")},
            "inputs": str(work / "inputs.npz"), "outputs": str(work / "outputs.npz"),
            "bad": {"plain": bad_requests()}}
    (work / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, FAKES, str(work / "spec.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return results, dict(np.load(work / "outputs.npz", allow_pickle=True)), inputs


def test_session_outputs_match_keras_generator(exported, session_run):
    _, outputs, inputs = session_run
    plain, gan = exported["plain"][0], exported["cond"][0]
    z, seeds, labels = inputs["plain/serving_default/z"], inputs["plain/generate/seed"], \
        inputs["cond/generate/label"]
    seed_z = latents_from_seeds(seeds, LATENT).numpy()
    assert_close_images(outputs["plain/serving_default/images"], keras_images(plain, z))
    assert_close_images(outputs["plain/generate/images"], keras_images(plain, seed_z))
    np.testing.assert_allclose(outputs["plain/generate/z"], seed_z, rtol=1e-6)
    ema = gan.ema_generator
    assert_close_images(outputs["cond/serving_default/images"], keras_images(ema, z, labels))
    assert_close_images(outputs["cond/generate/images"], keras_images(ema, seed_z, labels))
    assert outputs["cond/generate/images"].dtype == np.uint8
    assert outputs["cond/generate/images"].shape == (5, 8, 8, 1)
    np.testing.assert_array_equal(outputs["cond/num_classes/num_classes"], [CLASSES] * 5)
    assert not any(key.startswith("plain/num_classes") for key in outputs)  # conditional only


def test_png_bytes_decode_to_images(session_run):
    _, outputs, _ = session_run
    for png, image in zip(outputs["cond/generate/png_bytes"], outputs["cond/generate/images"],
                          strict=True):
        np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), image)


def test_generate_png_answers_the_same_files_and_nothing_else(session_run):
    """REST sends every output of a signature: `generate_png` has the PNGs only."""
    _, outputs, _ = session_run
    for tag in ("plain", "cond"):
        assert [key for key in outputs if key.startswith(f"{tag}/generate_png/")] == [
            f"{tag}/generate_png/png_bytes"]
        assert list(outputs[f"{tag}/generate_png/png_bytes"]) == list(
            outputs[f"{tag}/generate/png_bytes"])


def test_warmup_records_parse_and_run(exported, session_run):
    results, _, _ = session_run
    warmed = {"plain": ["generate", "generate_png", "serving_default"],
              "cond": ["generate", "generate_png", "num_classes", "serving_default"]}
    for tag in ("plain", "cond"):
        assert sorted(set(results[tag]["warmup"])) == warmed[tag]
        logs = read_warmup(exported[tag][1])
        assert all(log.HasField("predict_log") for log in logs)
        assert {log.predict_log.request.model_spec.name for log in logs} == {tag}
    cond_inputs = {tuple(sorted(log.predict_log.request.inputs))
                   for log in read_warmup(exported["cond"][1])}
    assert cond_inputs == {("label", "z"), ("label", "seed"), ("seed",)}  # + num_classes


def test_graph_rejects_bad_requests_with_clear_messages(session_run):
    errors = session_run[0]["plain"]["errors"]
    assert "kgan: z contains NaN or Inf" in errors["nan"]
    assert "kgan: empty batch" in errors["empty"]
    assert f"at most {MAX_BATCH_SIZE}" in errors["oversized"]


def _graph(version_dir):
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as handle:
        saved.ParseFromString(handle.read())
    return saved.meta_graphs[0].graph_def


def graph_nodes(version_dir):
    graph = _graph(version_dir)
    yield from graph.node
    for function in graph.library.function:
        yield from function.node_def


# The ops the TensorFlow of the newest TF Serving release registers (design.md: exports
# must run there, while kgan trains on a newer TensorFlow); made from that release's
# wheel by tests/data/make_tf_serving_ops.py.
TF_SERVING_OPS = os.path.join(os.path.dirname(__file__), "data", "tf_serving_ops.txt")


def ops_unknown_to_tf_serving(version_dir) -> list[str]:
    """The ops of an export's graph and functions that TF_SERVING_OPS lacks."""
    with open(TF_SERVING_OPS) as handle:
        known = {line.strip() for line in handle if line.strip() and not line.startswith("#")}
    functions = {f.signature.name for f in _graph(version_dir).library.function}
    used = {node.op for node in graph_nodes(version_dir)} - functions  # calls name them
    return sorted(used - known)


def assert_servable_graph(version_dir):
    """float32 only, no XLA, no stateful random ops (correctness rule 6), and only ops the
    newest TF Serving release runs."""
    ops = set()
    for node in graph_nodes(version_dir):
        ops.add(node.op)
        assert not node.attr["_XlaMustCompile"].b, node.name
        for value in node.attr.values():
            types = list(value.list.type) + [value.type]
            assert tf.float16.as_datatype_enum not in types, (node.name, node.op)
            assert tf.bfloat16.as_datatype_enum not in types, (node.name, node.op)
    assert not ops & STATEFUL_RANDOM
    assert any(op.startswith("StatelessRandom") for op in ops)
    assert ops_unknown_to_tf_serving(version_dir) == []


@pytest.mark.parametrize("network", [  # dcgan and stylegan2: the exports above and in
    n for n in kgan.networks.NAMES if n not in ("mlp", "dcgan", "stylegan2")])  # its file
def test_every_family_exports_a_graph_tf_serving_runs(network, tmp_path):
    generator, _ = tiny_networks(network, channels=3, num_classes=3)
    assert_servable_graph(export_generator(generator, tmp_path, num_classes=3))


def test_an_op_newer_than_tf_serving_is_caught(tmp_path):
    """DecodeJxl arrived in TensorFlow 2.21, after the newest TF Serving (2.20)."""
    module = tf.Module()
    module.decode = tf.function(lambda data: {"image": tf.raw_ops.DecodeJxl(contents=data)},
                                input_signature=[tf.TensorSpec([], tf.string)])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.decode})
    assert ops_unknown_to_tf_serving(tmp_path) == ["DecodeJxl"]


def test_graph_is_float32_stateless_and_not_xla(exported):
    for tag in ("plain", "cond"):
        assert_servable_graph(exported[tag][1])


def test_seed_gives_same_image_alone_and_in_any_batch(exported):
    served = ExportedGenerator(exported["plain"][1])
    alone = served.generate([7])["images"][0]
    batch = served.generate([3, 7, 1, 7])["images"]
    # Other batch sizes run other kernels: the stated tolerance is one grey level.
    assert_close_images(batch[1], alone)
    assert_close_images(batch[3], alone)
    np.testing.assert_array_equal(served.generate([7])["images"][0], alone)  # same call
    assert np.abs(batch[0].astype(int) - alone.astype(int)).mean() > 5
    assert np.abs(batch[0].astype(int) - batch[2].astype(int)).mean() > 5


def test_generate_matches_gan_generate_with_ema(exported):
    gan, path = exported["cond"]
    served = ExportedGenerator(path)
    seeds = np.arange(10, 14)
    assert (served.latent_dim, served.num_classes) == (LATENT, CLASSES)
    images = served.generate(seeds, seeds % CLASSES)["images"]
    assert_close_images(images, to_uint8_numpy(gan.generate(4, seed=10)))
    raw = keras_images(gan.generator, latents_from_seeds(seeds, LATENT), seeds % CLASSES)
    assert np.abs(images.astype(int) - raw.astype(int)).mean() > 10  # EMA, not raw G


@pytest.mark.parametrize("z, message", [
    (np.zeros([2, LATENT + 1], np.float32), r"shape \[N, 8\]"),
    (np.zeros([2, LATENT], np.float64), "must be float32, got float64"),
    (np.full([1, LATENT], np.nan, np.float32), "NaN or Inf in rows \\[0\\]"),
    (np.zeros([0, LATENT], np.float32), "empty batch"),
    (np.zeros([MAX_BATCH_SIZE + 1, LATENT], np.float32), "above MAX_BATCH_SIZE"),
])
def test_python_callers_get_clear_messages(exported, z, message):
    with pytest.raises(ValueError, match=message):
        ExportedGenerator(exported["plain"][1]).images(z)


def test_labels_are_checked(exported):
    served = ExportedGenerator(exported["cond"][1])
    # Seeds alone draw the default classes, seed % 3, as GAN.generate and the client do.
    np.testing.assert_array_equal(served.generate([4, -1])["images"],
                                  served.generate([4, -1], [1, 2])["images"])
    with pytest.raises(ValueError, match="conditional: pass labels"):
        served.images(np.zeros((2, served.latent_dim), np.float32))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        served.generate([1, 2], [0, 3])
    with pytest.raises(tf.errors.InvalidArgumentError, match="kgan: label must be < num"):
        served._loaded.signatures["generate"](seed=tf.constant([1], tf.int64),
                                              label=tf.constant([5], tf.int32))


def numeric_dirs(model_dir):
    return sorted(int(n) for n in os.listdir(model_dir) if n.isdigit())


def test_concurrent_exports_get_distinct_versions(exported, tmp_path):
    plain = exported["plain"][0]
    paths, errors = [], []

    def run():
        try:
            paths.append(export_generator(plain, tmp_path, model_name="m"))
        except Exception as error:  # surfaced by the assert below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(os.path.basename(p) for p in paths) == ["1", "2"]
    assert sorted(os.listdir(tmp_path / "m")) == ["1", "2"]


def test_rename_is_the_arbiter(exported, tmp_path, monkeypatch):
    # Another exporter publishes version 1 between our listing and our rename.
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"theirs")
    numbers = iter([1, 2])
    monkeypatch.setattr(export_module, "_next_version", lambda _: next(numbers))
    path = export_generator(exported["plain"][0], tmp_path)
    assert os.path.basename(path) == "2"
    assert (tmp_path / "1" / "saved_model.pb").read_bytes() == b"theirs"


@pytest.mark.parametrize("stage", ["write_warmup", "_verify"])
def test_failed_export_leaves_no_version_and_no_temp(exported, tmp_path, monkeypatch, stage):
    plain = exported["plain"][0]
    first = export_generator(plain, tmp_path)
    before = sorted(os.listdir(first))

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, stage, fail)
    with pytest.raises(OSError, match="No space left"):
        export_generator(plain, tmp_path)
    assert os.listdir(tmp_path) == ["1"]
    assert sorted(os.listdir(first)) == before


@needs_proc_fd
def test_a_version_is_synced_to_disk_before_its_rename_publishes_it(exported, tmp_path,
                                                                    monkeypatch):
    events = record_syncs_and_renames(monkeypatch)
    version = export_generator(exported["plain"][0], tmp_path)
    publish = [i for i, e in enumerate(events) if e[0] == "rename" and e[2] == version]
    assert len(publish) == 1, events
    temp = events[publish[0]][1]
    synced_before = {e[1] for e in events[:publish[0]] if e[0] == "sync"}
    files = {os.path.join(temp, os.path.relpath(os.path.join(folder, name), version))
             for folder, _, names in os.walk(version) for name in names}
    assert files and files <= synced_before  # saved_model.pb, variables, warmup, kgan.json
    assert ("sync", str(tmp_path)) in events[publish[0]:]  # the rename itself is durable


def test_existing_version_is_refused_unless_overwrite(exported, tmp_path):
    plain, path = exported["plain"]
    export_generator(plain, tmp_path, version=3)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_generator(plain, tmp_path, version=3)
    other = spread(tiny_gan(seed=5).generator, 30.0)
    assert export_generator(other, tmp_path, version=3, overwrite=True).endswith("3")
    assert os.listdir(tmp_path) == ["3"]
    z = latents_from_seeds([0, 1], LATENT).numpy()
    assert_close_images(ExportedGenerator(tmp_path / "3").images(z), keras_images(other, z))


def test_a_version_folder_past_int64_does_not_set_the_next_version(exported, tmp_path):
    os.makedirs(tmp_path / str(2**64))  # e.g. made by hand; TF Serving cannot load it
    os.makedirs(tmp_path / "4")
    os.makedirs(tmp_path / "\u00b2")  # "²": str.isdigit says yes, int() and TF Serving no
    os.makedirs(tmp_path / ("\u0663" * 2))  # Arabic-Indic 33: no version for TF Serving either
    assert export_generator(exported["plain"][0], tmp_path).endswith(os.sep + "5")


def test_bad_arguments(exported, tmp_path):
    plain = exported["plain"][0]
    for version in (0, 2**63):  # TF Serving's versions are int64
        with pytest.raises(ValueError, match=r"positive integer up to 2\*\*63 - 1"):
            export_generator(plain, tmp_path, version=version)
    with pytest.raises(ValueError, match="needs num_classes"):
        export_generator(exported["cond"][0].generator, tmp_path)
    with pytest.raises(ValueError, match="kgan.GAN or a keras.Model"):
        export_generator("generator.keras", tmp_path)
    with pytest.raises(ValueError, match=r"num_classes=5 disagrees with the GAN, which has 3 "):
        export_generator(exported["cond"][0], tmp_path, num_classes=5)
    with pytest.raises(ValueError, match=r"which has no classes \(it is unconditional\)"):
        export_generator(tiny_gan(), tmp_path, num_classes=5)
    assert not any(n.isdigit() for n in os.listdir(tmp_path))


def test_mixed_precision_generator_exports_float32(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(3)
        generator, _ = kgan.networks.dcgan(resolution=8, channels=1, latent_dim=LATENT,
                                           base_filters=4)
        spread(generator, 10.0)
        # Training exports at the end of the run, with the mixed policy still set.
        path = export_generator(generator, tmp_path)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert any(layer.compute_dtype == "float16" for layer in generator.layers)
    assert_servable_graph(path)
    z = latents_from_seeds(np.arange(4), LATENT).numpy()
    served = ExportedGenerator(path).images(z).astype(int)
    # float16 compute differs a little from the float32 export; the images agree closely.
    gap = np.abs(served - keras_images(generator, z).astype(int))
    assert gap.max() <= 6 and gap.mean() < 1
    assert served.std() > 20


def test_cli_exports_gan_file_and_run_dir(exported, tmp_path, capsys):
    gan = exported["cond"][0]
    run_dir = tmp_path / "run7"
    run_dir.mkdir()
    gan.save(run_dir / "final.keras")
    assert cli.main([str(run_dir), str(tmp_path / "exports")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(tmp_path / "exports" / "run7" / "1")
    served = ExportedGenerator(printed)
    assert_close_images(served.generate([4], [1])["images"],
                        ExportedGenerator(exported["cond"][1]).generate([4], [1])["images"])
    exported["plain"][0].save(tmp_path / "g.keras")
    assert cli.main([str(tmp_path / "g.keras"), str(tmp_path / "exports"),
                     "--model-name", "digits", "--version", "4"]) == 0
    assert capsys.readouterr().out.strip().endswith(os.path.join("digits", "4"))


def _cli_error(capsys, code, *argv):
    assert cli.main([str(a) for a in argv]) == code
    error = capsys.readouterr().err
    assert error.startswith("kgan-export: error: ") and error.count("\n") == 1, error
    return error


USER_LAYERS = """
import keras

@keras.saving.register_keras_serializable(package="user")
class PixelNorm(keras.layers.Layer):
    def call(self, x):
        return x * keras.ops.rsqrt(keras.ops.mean(x * x, axis=-1, keepdims=True) + 1e-8)
"""


def test_a_model_with_its_own_layers_exports_with_import(tmp_path, capsys, monkeypatch):
    """kgan-export --import MODULE loads a model whose layers MODULE registers; without
    it, the error names the class and the flag (not Keras's pages of config); a JAX
    process passes the modules that registered classes (`_registering_modules`)."""
    (tmp_path / "user_layers_mod.py").write_text(USER_LAYERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import user_layers_mod

    generator = keras.Sequential([keras.Input((4,)), user_layers_mod.PixelNorm(),
                                  keras.layers.Dense(16), keras.layers.Reshape((4, 4, 1)),
                                  keras.layers.Activation("tanh")])
    discriminator = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                      keras.layers.Dense(1)])
    kgan.GAN(generator, discriminator, latent_dim=4).save(tmp_path / "mine.keras")
    assert "user_layers_mod" in export_module._registering_modules()
    # export_keras_file (kgan-train's export on JAX) passes them by default.
    commands = []
    with monkeypatch.context() as patch:
        patch.setattr(export_module.subprocess, "run", lambda command, **_: commands.append(
            command) or subprocess.CompletedProcess(command, 0, "exports/mine/1\n", ""))
        export_module.export_keras_file(tmp_path / "mine.keras", tmp_path / "exports", "mine")
    assert "--import=user_layers_mod" in commands[0]
    registry = keras.saving.get_custom_objects()
    monkeypatch.delitem(registry, "user>PixelNorm")  # as in a process that never imported it
    monkeypatch.delitem(sys.modules, "user_layers_mod")
    error = _cli_error(capsys, 2, tmp_path / "mine.keras", tmp_path / "exports")
    assert error.endswith("it uses PixelNorm, which is not registered in this process: pass "
                          "--import user_layers_mod (the module that registers it with "
                          "keras.saving.register_keras_serializable)\n")
    assert cli.main([str(tmp_path / "mine.keras"), str(tmp_path / "exports"),
                     "--import", "user_layers_mod"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "exports" / "mine" / "1")


def test_cli_bad_input_exits_2_in_one_line(exported, tmp_path, capsys):
    assert "does not exist" in _cli_error(capsys, 2, tmp_path / "missing", tmp_path)
    (tmp_path / "notes.txt").write_text("hi")
    assert "is not a .keras file" in _cli_error(capsys, 2, tmp_path / "notes.txt", tmp_path)
    # Training writes final.keras, never model.keras or checkpoints/*.keras.
    legacy = tmp_path / "legacy"
    (legacy / "checkpoints").mkdir(parents=True)
    exported["plain"][0].save(legacy / "model.keras")
    exported["plain"][0].save(legacy / "checkpoints" / "epoch-1.keras")
    assert "is not a kgan run directory (no final.keras or config.json)" in _cli_error(
        capsys, 2, legacy, tmp_path / "exports")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    assert "has no final.keras and no checkpoint yet: the run has not trained long enough" \
        in _cli_error(capsys, 2, unfinished, tmp_path / "exports")
    assert "is a file, not a folder" in _cli_error(
        capsys, 2, legacy / "model.keras", tmp_path / "notes.txt")
    assert not (tmp_path / "exports").exists()


def test_a_run_in_progress_exports_its_newest_checkpoint(tmp_path, capsys):
    """As stylegan2-ada exports any snapshot: a run still training has no final.keras,
    so kgan-export restores its newest checkpoint (on the run's backend) and says which."""
    gan, run_dir = run_in_progress(tmp_path, steps_done=3, steps_per_epoch=5)
    before = _files_and_times(run_dir)
    assert cli.main([run_dir, str(tmp_path / "exports")]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "exports" / "digits" / "1")
    assert err.endswith(f"kgan: {run_dir} has not finished (no final.keras): using its newest "
                        "checkpoint, step 3 (epoch 1 of 2, batch 3)\n")
    served = ExportedGenerator(out.strip()).generate([0, 1, 12], [0, 1, 2])["images"]
    assert_close_images(served, keras_images(gan.sampling_generator, latents_from_seeds(
        [0, 1, 12], 8).numpy(), np.array([0, 1, 2])))
    assert _files_and_times(run_dir) == before  # a run that is training is only read


def _files_and_times(folder) -> dict[str, int]:
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(folder) for f in files}


def test_checkpoints_restore_on_the_backend_the_run_trained_on(tmp_path, monkeypatch):
    """A JAX run's checkpoint is read by a JAX process, whatever this one runs; where that
    backend is missing, the error says so and what else works."""
    from kgan.training import sources

    run_dir = tmp_path / "jaxrun"
    (run_dir / "backup").mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"backend": "jax"}))
    (run_dir / "backup" / "ckpt-7.index").write_bytes(b"")
    seen = {}

    def run(argv, env, **kwargs):
        seen.update(env=env["KERAS_BACKEND"], argv=argv)
        return subprocess.CompletedProcess(argv, 1, "", "ModuleNotFoundError: No module "
                                                        "named 'jax'\n")

    monkeypatch.setattr(sources.subprocess, "run", run)
    with pytest.raises(sources.SourceError, match=r"No module named 'jax'; its checkpoints "
                       r"load only on the backend it trained on \(jax\): install it, or "
                       r"wait for final.keras, which loads on either"):
        sources.find_model_file(str(run_dir))
    assert seen["env"] == "jax" and seen["argv"][1:3] == ["-m", "kgan.training.sources"]


def test_final_keras_exports_under_the_runs_name(exported, tmp_path, capsys):
    run_dir = tmp_path / "digits"
    run_dir.mkdir()
    exported["plain"][0].save(run_dir / "final.keras")
    assert cli.default_model_name(str(run_dir / "final.keras")) == "digits"
    assert cli.main([str(run_dir / "final.keras"), str(tmp_path / "exports")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "exports" / "digits" / "1")


def test_exported_generator_takes_a_model_folder(exported, tmp_path):
    """As kgan-demo and kgan-generate do (serving/README: `ExportedGenerator("exports/faces")`)."""
    model_folder = os.path.dirname(exported["plain"][1])
    newest = max((v for v in os.listdir(model_folder) if v.isdigit()), key=int)
    assert ExportedGenerator(model_folder).path == os.path.join(model_folder, newest)
    assert kgan.serving.ExportedGenerator is ExportedGenerator  # the README's spelling
    with pytest.raises(FileNotFoundError, match="no SavedModel .* pass EXPORT_DIR/<model>"):
        ExportedGenerator(tmp_path / "nothing")


def test_cli_run_dir_exit_codes(exported, tmp_path, capsys, monkeypatch):
    from kgan.cli import exits

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    exported["plain"][0].save(run_dir / "final.keras")
    out = tmp_path / "exports"
    assert cli.main([str(run_dir), str(out), "--version", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "run" / "2")
    assert "already exists" in _cli_error(capsys, 2, run_dir, out, "--version", "2")

    def fail(error):
        def export(*args, **kwargs):
            raise error
        return export

    monkeypatch.setattr(export_module, "export_generator",
                        fail(export_module.ExportError("answers differently")))
    assert "answers differently" in _cli_error(capsys, 1, run_dir, out)
    monkeypatch.setattr(export_module, "export_generator",
                        fail(OSError(28, "No space left on device")))
    assert "No space left on device" in _cli_error(capsys, 1, run_dir, out)
    for error, code, words in [(KeyboardInterrupt(), 130, "interrupted"),
                               (exits.Terminated(), 143, "stopped by SIGTERM")]:
        monkeypatch.setattr(export_module, "export_generator", fail(error))
        assert cli.main([str(run_dir), str(out)]) == code
        assert capsys.readouterr().err == f"kgan-export: {words}; nothing was published\n"
    assert sorted(os.listdir(out / "run")) == ["2"]

    def published_while_a_signal_was_dropped(*args, **kwargs):
        signals.record(signal.SIGTERM)  # as when Python drops the handler's exception
        return str(out / "run" / "2")

    monkeypatch.setattr(export_module, "export_generator", published_while_a_signal_was_dropped)
    assert cli.main([str(run_dir), str(out)]) == 143  # answered once the work is done
    printed = capsys.readouterr()
    assert printed.out.strip() == str(out / "run" / "2")
    assert printed.err == "kgan-export: stopped by SIGTERM after its work was done; nothing " \
                          "was lost\n"


# ------------------------------------------------------------- wrong-rank requests
@pytest.mark.parametrize("signature, inputs, message", [
    ("serving_default", {"z": np.zeros(LATENT, np.float32)}, "z must be a matrix [N, 8]"),
    ("serving_default", {"z": np.zeros([1, 2, LATENT], np.float32)},
     "z must be a matrix [N, 8]"),
    ("generate", {"seed": np.int64(3)}, "seed must be a list [N] of integers"),
    ("generate", {"seed": np.zeros([2, 1], np.int64)}, "seed must be a list [N] of integers"),
], ids=["z_rank1", "z_rank3", "seed_rank0", "seed_rank2"])
def test_signatures_name_a_wrong_rank(exported, signature, inputs, message):
    loaded = tf.saved_model.load(exported["plain"][1])
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    assert f"kgan: {message}" in caught.value.message


def test_wrong_rank_label_is_named(exported):
    loaded = tf.saved_model.load(exported["cond"][1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="kgan: label must be a list"):
        loaded.signatures["generate"](seed=tf.constant([1, 2], tf.int64),
                                      label=tf.constant([[0], [1]], tf.int32))


# ------------------------------------------------------------- stale temporary folders
def _temp(model_dir, name, age_seconds):
    path = model_dir / name
    path.mkdir() if "." not in name[5:] else path.write_text("")
    stamp = os.path.getmtime(path) - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_stale_temps_go_live_and_new_ones_stay(exported, tmp_path):
    import fcntl

    model_dir = tmp_path / "m"
    model_dir.mkdir()
    hour = 3600
    dead = _temp(model_dir, ".tmp-" + "a" * 32, hour)
    _temp(model_dir, ".tmp-" + "a" * 32 + ".lock", hour)  # left unlocked by a killed export
    legacy = _temp(model_dir, ".tmp-old-" + "b" * 32, hour)
    live = _temp(model_dir, ".tmp-" + "c" * 32, hour)
    lock = _temp(model_dir, ".tmp-" + "c" * 32 + ".lock", hour)
    recent = model_dir / (".tmp-" + "d" * 32)  # newer than this process: maybe its own
    recent.mkdir()
    mine = model_dir / ".tmp-notes"
    mine.mkdir()
    with open(lock) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a live export elsewhere
        export_generator(exported["plain"][0], model_dir)
    assert not dead.exists() and not legacy.exists()
    assert live.exists() and lock.exists() and recent.exists() and mine.exists()
    assert sorted(n for n in os.listdir(model_dir) if not n.startswith(".")) == ["1"]


KILLED_EXPORT = """
import os, signal, sys
import keras
import kgan
from kgan.serving import export

def killed(*args, **kwargs):  # SIGKILL after the SavedModel is written, before publishing
    os.kill(os.getpid(), signal.SIGKILL)

export._verify = killed
export.export_generator(keras.models.load_model(sys.argv[1]), sys.argv[2], model_name="m")
"""


def test_export_killed_mid_way_is_cleaned_by_the_next_one(exported, tmp_path):
    model = tmp_path / "g.keras"
    exported["plain"][0].save(model)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    killed = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(model), str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=180)
    assert killed.returncode == -9, killed.stderr[-2000:]
    left = sorted(os.listdir(tmp_path / "m"))
    assert len(left) == 2 and all(n.startswith(".tmp-") for n in left)
    assert os.path.isfile(tmp_path / "m" / left[0] / "saved_model.pb")
    done = subprocess.run([sys.executable, "-m", "kgan.cli.export", str(model), str(tmp_path),
                           "--model-name", "m"], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "m")) == ["1"]


def test_a_class_count_the_generator_does_not_have_is_not_published(tmp_path):
    """A bare conditional generator says nothing of its classes: too many is caught by
    the export's own check with the last class, before any version appears."""
    generator, _ = tiny_networks("dcgan", num_classes=3, resolution=8)
    with pytest.raises(export_module.ExportError) as caught:
        export_generator(generator, tmp_path, num_classes=5)
    message = str(caught.value)
    assert "with classes 0 and 4: does the generator have 5 classes?" in message
    assert "indices[1] = 4 is not in [0, 3)" in message and "\n" not in message
    assert os.listdir(tmp_path) == []
    assert export_generator(generator, tmp_path, num_classes=3).endswith("1")
