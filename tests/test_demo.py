"""kgan-demo: backends against the Keras model, the app over HTTP, and the page in a real
headless Chromium, on the embedded backend and on the TF Serving stand-ins."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import assert_close_images
from PIL import Image
from serving_fakes import Backend as FakeServer
from serving_fakes import FlakyProxy, GrpcServer, RestServer

import kgan
from kgan.demo import backends, media, page, params
from kgan.demo.app import create_app
from kgan.demo.browser import IMAGES_READY, find_chromium, headless_chromium
from kgan.demo.server import BackgroundServer
from kgan.gan.sampling import latents_from_seeds
from kgan.images import to_uint8_numpy
from kgan.serving.client import GrpcClient, RestClient
from kgan.serving.limits import PNG_SIGNATURES
from kgan.serving.signatures import to_uint8

LATENT, CLASSES, RES = 4, 3, 8


def tiny_gan(num_classes=None, seed=0) -> kgan.GAN:
    keras.utils.set_random_seed(seed)
    generator, discriminator = kgan.networks.get("dcgan")(
        RES, 1, latent_dim=LATENT, num_classes=num_classes, base_filters=4)
    # An untrained tanh output sits near 0 (all pixels ~128); spread it so seeds differ.
    layer = generator.layers[-1]
    layer.kernel.assign(layer.kernel * 30.0)
    return kgan.GAN(generator, discriminator, latent_dim=LATENT, num_classes=num_classes)


def truncation_export(gan: kgan.GAN, path: str) -> str:
    """A stand-in for a StyleGAN-style export: `generate` and `serving_default` take a
    batched `truncation` (psi) that pulls latents towards their mean, z' = psi * z."""
    generator = gan.generator
    seed_spec = tf.TensorSpec([None], tf.int64, name="seed")
    psi_spec = tf.TensorSpec([None], tf.float32, name="truncation")
    z_spec = tf.TensorSpec([None, LATENT], tf.float32, name="z")

    def images(z, psi):
        return to_uint8(generator(z * psi[:, None], training=False))

    def generate(seed, truncation):
        z = latents_from_seeds(seed, LATENT)
        pixels = images(z, truncation)
        png = tf.map_fn(tf.io.encode_png, pixels, fn_output_signature=tf.string)
        return {"images": pixels, "png_bytes": png, "z": z}

    module = tf.Module()
    module.variables_ = [v.value for v in generator.variables]
    module.generate = tf.function(generate, input_signature=[seed_spec, psi_spec])
    module.serve = tf.function(lambda z, truncation: {"images": images(z, truncation)},
                               input_signature=[z_spec, psi_spec])
    version = os.path.join(path, "1")
    tf.saved_model.save(module, version, signatures={
        "serving_default": module.serve, "generate": module.generate})
    os.makedirs(os.path.join(version, "assets.extra"))
    with open(os.path.join(version, backends.INFO_FILE), "w") as handle:
        json.dump({"latent_dim": LATENT, "num_classes": None, "image_shape": [RES, RES, 1],
                   "truncation": {"default": 0.7, "min": 0.0, "max": 1.0}}, handle)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{name: (gan, export model folder)} for an unconditional, a conditional and a
    truncation model."""
    root = tmp_path_factory.mktemp("exports")
    plain, cond = tiny_gan(seed=1), tiny_gan(CLASSES, seed=2)
    kgan.export_generator(plain, root, model_name="plain")
    kgan.export_generator(cond, root, model_name="cond")
    return {"plain": (plain, str(root / "plain")), "cond": (cond, str(root / "cond")),
            "trunc": (plain, truncation_export(plain, str(root / "trunc")))}


@pytest.fixture(scope="module")
def embedded(models):
    return {name: backends.EmbeddedBackend(path) for name, (_, path) in models.items()}


def _decode(png: bytes) -> np.ndarray:
    image = np.array(Image.open(io.BytesIO(png)))
    return image[..., None] if image.ndim == 2 else image


# ----------------------------------------------------------------------- backends
def test_embedded_backend_matches_gan_generate(models, embedded):
    gan, _ = models["plain"]
    result = embedded["plain"].generate(range(5, 11))
    assert_close_images(result.images, to_uint8_numpy(gan.generate(6, seed=5)))
    np.testing.assert_allclose(result.z, latents_from_seeds(np.arange(5, 11), LATENT).numpy(),
                               atol=1e-6)
    assert all(np.array_equal(_decode(p), i) for p, i in zip(result.png, result.images,
                                                             strict=True))
    info = embedded["plain"].info
    assert (info.name, info.image_shape, info.latent_dim, info.num_classes, info.truncation) == (
        "plain", (RES, RES, 1), LATENT, None, None)


def test_conditional_labels_default_to_seed_mod_classes(models, embedded):
    gan, _ = models["cond"]
    backend = embedded["cond"]
    assert backend.info.num_classes == CLASSES
    assert_close_images(backend.generate(range(4)).images, to_uint8_numpy(gan.generate(4, seed=0)))
    fixed = backend.generate([0, 1], labels=[2, 2]).images
    assert_close_images(fixed, to_uint8_numpy(gan.generate(2, seed=0, labels=[2, 2])))
    assert not np.array_equal(fixed[0], backend.generate([0]).images[0])  # class 0 vs 2


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_serving_backend_gives_the_embedded_bytes(models, embedded, protocol):
    older = tuple(PNG_SIGNATURES.values())  # an export from before the PNG-only twins
    for name, local, hide in (("cond", False, ()), ("cond", True, ()), ("trunc", True, ()),
                              ("cond", False, older)):
        path = models[name][1]
        server = FakeServer(name, 1, backends.version_dir(path), labels={}, hide=hide)
        with (RestServer(server) if protocol == "rest" else GrpcServer(server)) as running:
            client = (RestClient(running.url, model=name) if protocol == "rest"
                      else GrpcClient(running.target, model=name))
            served = backends.ServingBackend(client, info_dir=path if local else None)
            try:
                assert served.info.num_classes == embedded[name].info.num_classes
                assert served.info.truncation == embedded[name].info.truncation or not local
                seeds = [3, 9, 2**40]
                assert served.generate(seeds).png == embedded[name].generate(seeds).png
                # The page's PNGs: from the PNG-only signature where the export has one.
                assert served.pngs(seeds) == embedded[name].generate(seeds).png
                assert bool(served.png_signatures) == (name == "cond" and not hide)
                np.testing.assert_array_equal(served.interpolate(1, 2, 5),
                                              embedded[name].interpolate(1, 2, 5))
            finally:
                served.close()


def test_truncation_is_a_capability_read_from_the_model(embedded):
    backend = embedded["trunc"]
    assert backend.info.truncation == backends.Truncation(0.7, 0.0, 1.0, rank=1)
    mean = backend.generate([1, 2, 3], truncation=0.0).images
    assert all(np.array_equal(image, mean[0]) for image in mean)  # psi 0: the mean image
    full = backend.generate([1, 2, 3], truncation=1.0).images
    assert not np.array_equal(full[0], full[1])
    # No value given: the model's default, not 1.
    np.testing.assert_array_equal(backend.generate([1]).images,
                                  backend.generate([1], truncation=0.7).images)
    with pytest.raises(ValueError, match="no truncation input"):
        embedded["plain"].generate([1], truncation=0.5)
    with pytest.raises(ValueError, match="from 0 to 1"):
        backend.generate([1], truncation=1.5)


def test_interpolation_runs_from_a_to_b(embedded):
    backend = embedded["cond"]
    frames = backend.interpolate(4, 7, 6, label=1)
    assert frames.shape == (6, RES, RES, 1)
    ends = backend.generate([4, 7], labels=[1, 1]).images
    np.testing.assert_array_equal(frames[[0, -1]], ends)  # the seeds' own images


@pytest.mark.parametrize("call, message", [
    (lambda b: b.generate([-2**63 - 1]), "seed must be a whole number from -9223372036854775808"),
    (lambda b: b.generate(["7"]), "seed must be a whole number"),
    (lambda b: b.generate([]), "at least one seed"),
    (lambda b: b.generate([1], labels=[3]), r"from 0 to 2 \(this model has 3 classes\)"),
    (lambda b: b.interpolate(1, 2, 1), "frames must be a whole number from 2 to 64"),
])
def test_backend_rejects_bad_requests_with_a_reason(embedded, call, message):
    with pytest.raises(ValueError, match=message):
        call(embedded["cond"])


# -------------------------------------------------------------------------- params
def test_page_parameters_and_permalinks(embedded):
    info = embedded["cond"].info
    first, second = params.parse_view({}, info), params.parse_view({}, info)
    assert first.random and first.seed != second.seed  # 1 in 2**31 to collide
    view = params.parse_view({"seed": "42", "n": "4", "label": "2"}, info)
    assert (view.seeds, view.label, view.random) == ([42, 43, 44, 45], 2, False)
    assert view.query() == "?seed=42&n=4&label=2"
    assert view.query(seed=43, n=1) == "?seed=43&label=2"
    between = params.parse_view({"a": "1", "b": "9", "frames": "5"}, info)
    assert (between.interpolation, between.a, between.b, between.frames) == (True, 1, 9, 5)
    assert between.query() == "?a=1&b=9&frames=5"


def test_permalinks_name_the_truncation_the_page_used(embedded):
    """Without truncation= a page uses the export's default psi (0.7 here, as kgan's
    stylegan2 exports), and says so in its permalink and caption."""
    info = embedded["trunc"].info
    view = params.parse_view({}, info)
    assert view.truncation == 0.7 and view.query() == f"?seed={view.seed}&truncation=0.7"
    assert params.parse_view({"a": "1", "b": "2"}, info).query() == (
        "?a=1&b=2&frames=24&truncation=0.7")
    assert params.parse_view({"seed": "1", "truncation": "1"}, info).truncation == 1.0
    html = page.render(info, params.parse_view({"seed": "5"}, info), {},
                       images=embedded["trunc"].generate([5]).png)
    assert 'alt="seed 5, truncation 0.7"' in html
    assert params.parse_view({"seed": "5"}, embedded["cond"].info).truncation is None


@pytest.mark.parametrize("blank", ["", " ", "%20"])
def test_a_blank_seed_draws_one(embedded, blank):
    view = params.parse_view({"seed": urllib.parse.unquote(blank)}, embedded["cond"].info)
    assert view.random


@pytest.mark.parametrize("query, message", [
    ({"seed": "abc"}, "seed must be a whole number from -9223372036854775808 to "
                      "9223372036854775807, got 'abc'"),
    ({"seed": "-3.5"}, "seed must be a whole number"),
    ({"seed": "1", "n": "65"}, "n (images in the grid) must be a whole number from 1 to 64"),
    ({"seed": "1", "label": "7"}, "label (this model has 3 classes) must be a whole number "
                                  "from 0 to 2, got '7'"),
    ({"seed": "1", "truncation": "0.5"}, "this model has no truncation input"),
    ({"a": "1"}, "b is missing"),
    ({"sed": "1"}, "unknown parameter 'sed'"),
    ({"seed": str(2**63 - 2), "n": "4"}, "leaves no room for 4 images"),
])
def test_bad_parameters_say_what_is_wrong(embedded, query, message):
    with pytest.raises(params.BadRequest) as error:
        params.parse_view(query, embedded["cond"].info)
    assert message in str(error.value)


def test_label_on_an_unconditional_model_is_refused(embedded):
    with pytest.raises(params.BadRequest, match="unconditional: it takes no label"):
        params.parse_view({"seed": "1", "label": "0"}, embedded["plain"].info)


# ----------------------------------------------------------------------- HTTP app
def _get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


@pytest.fixture(scope="module")
def servers(embedded, models):
    """The app on the embedded backends, and on TF Serving stand-ins (REST and gRPC)."""
    cond_path = backends.version_dir(models["cond"][1])
    fake = FakeServer("cond", 1, cond_path, labels={})
    with RestServer(fake) as rest, GrpcServer(fake) as grpc_server:
        served = {"rest": backends.ServingBackend(RestClient(rest.url, model="cond")),
                  "grpc": backends.ServingBackend(GrpcClient(grpc_server.target, model="cond"))}
        apps = {**{name: create_app(b) for name, b in embedded.items()},
                **{name: create_app(b) for name, b in served.items()}}
        with BackgroundServer(apps["plain"]) as plain, BackgroundServer(apps["cond"]) as cond, \
                BackgroundServer(apps["trunc"]) as trunc, \
                BackgroundServer(apps["rest"]) as via_rest, \
                BackgroundServer(apps["grpc"]) as via_grpc:
            yield {"plain": plain.url, "cond": cond.url, "trunc": trunc.url,
                   "rest": via_rest.url, "grpc": via_grpc.url}
        for backend in served.values():
            backend.close()


def test_files_match_the_backend(servers, embedded):
    status, png, headers = _get(servers["cond"] + "/image.png?seed=42&label=1")
    assert status == 200 and headers["content-type"] == "image/png"
    assert png == embedded["cond"].generate([42], labels=[1]).png[0]
    status, grid, _ = _get(servers["cond"] + "/grid.png?seed=0&n=4")
    assert status == 200 and _decode(grid).shape == (2 * (RES + 1) + 1,) * 2 + (1,)
    np.testing.assert_array_equal(  # the page's 4 images, tiled: PNGs are lossless
        _decode(grid), media.grid(embedded["cond"].generate(range(4)).images))
    status, gif, headers = _get(servers["cond"] + "/interpolation.gif?a=1&b=2&frames=5")
    frames = Image.open(io.BytesIO(gif))
    assert status == 200 and headers["content-type"] == "image/gif"
    assert (frames.n_frames, frames.size) == (8, (RES, RES))  # 5 there, 3 back
    info = json.loads(_get(servers["trunc"] + "/api/info")[1])
    assert info["truncation"]["default"] == 0.7 and info["backend"] == "embedded"


@pytest.mark.parametrize("name", ["rest", "grpc"])
def test_serving_app_serves_the_same_bytes(servers, name):
    for path in ("/image.png?seed=7", "/grid.png?seed=3&n=9&label=2"):
        assert _get(servers[name] + path)[1] == _get(servers["cond"] + path)[1]


def test_bad_requests_get_400_with_the_reason_and_the_app_keeps_serving(servers):
    status, body, _ = _get(servers["cond"] + "/image.png?seed=x")
    assert status == 400 and b"seed must be a whole number" in body
    status, body, _ = _get(servers["cond"] + "/?seed=1&label=9")
    assert status == 400 and b'id="error"' in body and b"from 0 to 2, got &#x27;9&#x27;" in body
    assert _get(servers["cond"] + "/?seed=1")[0] == 200


def test_a_dead_tf_serving_gives_502_and_the_page_says_so(models):
    fake = FakeServer("cond", 1, backends.version_dir(models["cond"][1]), labels={})
    with RestServer(fake) as rest:
        served = backends.ServingBackend(RestClient(rest.url, model="cond", timeout=5))
    with BackgroundServer(create_app(served)) as app:  # the server above is gone now
        status, body, _ = _get(app.url + "/?seed=1")
        assert status == 502 and b"cannot reach TF Serving" in body
        assert _get(app.url + "/api/info")[0] == 200
        status, body, _ = _get(app.url + "/?seed=3&n=4&label=2")  # the visitor's choices stay
        assert status == 502 and b'id="seed" value="3"' in body
        assert b"<option selected>4</option>" in body and b'value="2" selected' in body
        assert re.search(rb'id="new" href="/\?n=4&amp;label=2"', body)


# --------------------------------------------------------------------- the browser
@pytest.fixture(scope="module")
def browser():
    reason = find_chromium()[2]
    if reason:
        pytest.skip(reason)
    driver = headless_chromium()
    yield driver
    driver.quit()


def _visit(driver, url: str) -> list[dict]:
    """Loads a page and returns its decoded images ({id, src, width, height})."""
    driver.get(url)
    shown = driver.execute_async_script(IMAGES_READY)
    assert shown["ready"] >= 0, shown["images"]  # a decode failure returns -1 and the reason
    return shown["images"]


def _data_bytes(src: str) -> bytes:
    header, data = src.split(",", 1)
    assert header.startswith("data:image/")
    return base64.b64decode(data)


@pytest.mark.parametrize("name", ["cond", "rest"])  # embedded, and TF Serving over REST
def test_page_in_a_browser(browser, servers, embedded, name):
    url = servers[name]
    first = _visit(browser, url + "/")
    permalink = browser.current_url
    assert re.search(r"\?seed=\d+$", permalink)  # the drawn seed went into the address
    assert [(i["width"], i["height"]) for i in first] == [(RES, RES)]
    second = _visit(browser, url + "/")
    assert first[0]["src"] != second[0]["src"]  # a new image per visit
    again = _visit(browser, permalink)
    assert again[0]["src"] == first[0]["src"]  # the permalink reproduces it
    seed = int(permalink.rsplit("=", 1)[1])
    assert _data_bytes(first[0]["src"]) == embedded["cond"].generate([seed]).png[0]
    a, b = _visit(browser, url + "/?seed=42"), _visit(browser, url + "/?seed=42")
    assert _data_bytes(a[0]["src"]) == _data_bytes(b[0]["src"])
    download = browser.find_element("id", "download").get_attribute("href")
    assert _get(download)[1] == _data_bytes(a[0]["src"])


def test_bad_seed_and_label_show_a_message_and_the_app_keeps_serving(browser, servers):
    url = servers["cond"]
    for query, words in (("?seed=banana", "seed must be a whole number from -9223372036854775808"),
                         ("?seed=3&label=12", "this model has 3 classes")):
        assert _visit(browser, url + "/" + query) == []
        assert words in browser.find_element("id", "error").text
    assert len(_visit(browser, url + "/?seed=3")) == 1


def test_controls_follow_the_model(browser, servers, embedded):
    from selenium.webdriver.support.ui import Select

    _visit(browser, servers["plain"] + "/?seed=1")
    assert not browser.find_elements("id", "label")
    assert not browser.find_elements("id", "truncation")
    images = _visit(browser, servers["cond"] + "/?seed=5&n=4")
    assert [i["id"] for i in images] == [f"image-{k}" for k in range(4)]
    Select(browser.find_element("id", "label")).select_by_value("2")
    browser.find_element("id", "show").click()
    for _ in range(100):
        if "label=2" in browser.current_url:
            break
        time.sleep(0.05)
    assert "seed=5" in browser.current_url and "n=4" in browser.current_url
    assert "class 2" in browser.find_element("id", "image-0").get_attribute("alt")
    _visit(browser, servers["trunc"] + "/?seed=1")
    slider = browser.find_element("id", "truncation")
    assert (slider.get_attribute("value"), slider.get_attribute("max")) == ("0.7", "1")
    browser.execute_script("arguments[0].value = '0'", slider)
    browser.find_element("id", "show").click()
    for _ in range(100):
        if "truncation=0" in browser.current_url:
            break
        time.sleep(0.05)
    assert "truncation=0" in browser.current_url
    shown = browser.execute_async_script(IMAGES_READY)["images"]
    expected = embedded["trunc"].generate([1], truncation=0.0).png[0]
    assert _data_bytes(shown[0]["src"]) == expected
    assert browser.find_element("id", "truncation").get_attribute("value") == "0"


def test_keyboard_users_step_through_a_select_without_reloads(browser, servers):
    """Arrow keys on the focused class picker change it in place (WCAG 3.2.2, no change of
    context on input); Show then loads the choice."""
    from selenium.webdriver.common.keys import Keys

    _visit(browser, servers["cond"] + "/?seed=4")
    browser.execute_script("document.body.dataset.visit = 'first'")
    picker = browser.find_element("id", "label")
    picker.send_keys(Keys.ARROW_DOWN, Keys.ARROW_DOWN)  # "by seed" -> 0 -> 1
    time.sleep(0.3)
    assert browser.execute_script("return document.body.dataset.visit") == "first"
    assert browser.switch_to.active_element.get_attribute("id") == "label"
    assert browser.current_url.endswith("/?seed=4")
    browser.find_element("id", "show").click()
    for _ in range(100):
        if "label=1" in browser.current_url:
            break
        time.sleep(0.05)
    assert browser.current_url.endswith("/?seed=4&n=1&label=1")


def test_interpolation_animation_in_the_browser(browser, servers):
    images = _visit(browser, servers["rest"] + "/?a=1&b=2&frames=6&label=0")
    assert [(i["id"], i["width"]) for i in images] == [("animation", RES)]
    gif = Image.open(io.BytesIO(_data_bytes(images[0]["src"])))
    assert gif.n_frames == 10  # 6 there, 4 back


# --------------------------------------------------------------------- the command
def _python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout)


def test_help_does_not_import_tensorflow():
    result = _python("import sys\nfrom kgan.cli import demo\ntry:\n    demo.main(['--help'])\n"
                     "except SystemExit as e:\n    print('exit', e.code)\n"
                     "print('tf', 'tensorflow' in sys.modules)")
    assert "--serving-url" in result.stdout and "exit 0" in result.stdout
    assert "tf False" in result.stdout


def test_without_the_demo_extra_it_says_what_to_install():
    result = _python("import sys\nsys.modules['uvicorn'] = None  # as if not installed\n"
                     "from kgan.cli import demo\nsys.exit(demo.main(['exports/x']))")
    assert result.returncode == 2
    assert 'uvicorn' in result.stderr and 'pip install -e ".[demo]"' in result.stderr


def test_kgan_demo_serves_until_ctrl_c(models):
    process = subprocess.Popen(
        [sys.executable, "-m", "kgan.cli.demo", models["cond"][1], "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        assert url, line + process.stderr.read()
        status, body, _ = _get(url.group(1) + "/?seed=3&label=9")
        assert status == 400 and b"this model has 3 classes" in body
        assert _get(url.group(1) + "/?seed=3")[0] == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130


def test_kgan_demo_exit_codes_for_bad_input_and_a_taken_port(models, tmp_path, capsys):
    from kgan.cli import demo

    assert demo.main([str(tmp_path / "missing")]) == 2
    damaged = tmp_path / "damaged"
    shutil.copytree(backends.version_dir(models["plain"][1]), damaged / "1")
    (damaged / "1" / "saved_model.pb").write_bytes(b"\x0a\xff")  # half a file, say
    capsys.readouterr()
    assert demo.main([str(damaged)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "its files are damaged; export the model again with kgan-export")
    assert demo.main([models["plain"][1], "--num-classes", "3"]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert demo.main([models["plain"][1], "--port", str(taken.getsockname()[1])]) == 1


@pytest.mark.parametrize("ending", ["returns", "cancelled", "interrupted"])
@pytest.mark.parametrize("sig, stops", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, None)])
def test_the_first_signal_decides_how_serving_ends(monkeypatch, sig, stops, ending):
    """However uvicorn's re-raise of the signal surfaces through asyncio, Ctrl-C ends in
    KeyboardInterrupt (status 130) and SIGTERM in a normal return (status 0)."""
    import asyncio

    from kgan.demo import server

    def run(self, sockets=None):
        self.handle_exit(sig, None)
        if ending == "cancelled":
            raise asyncio.CancelledError
        if ending == "interrupted":
            raise KeyboardInterrupt

    monkeypatch.setattr(server._Server, "run", run)
    with socket.socket() as sock:
        if stops is None:
            assert server.serve(None, sock) is None
        else:
            with pytest.raises(stops):
                server.serve(None, sock)


def test_kgan_demo_over_tf_serving_and_when_it_is_down(models):
    fake = FakeServer("cond", 1, backends.version_dir(models["cond"][1]), labels={})
    with RestServer(fake) as rest:
        process = subprocess.Popen(
            [sys.executable, "-m", "kgan.cli.demo", "cond", "--serving-url", rest.url,
             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = process.stdout.readline()
            url = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            assert url and "serving" in line, line + process.stderr.read()
            status, body, _ = _get(url.group(1) + "/?seed=3&label=2")
            assert status == 200 and b"seed 3, class 2" in body
            # The page shows PNGs: it asks the PNG-only signature, no pixel arrays.
            asked = [r.get("signature_name") for r in rest.requests]
            assert "generate_png" in asked and "generate" not in asked, asked
        finally:
            process.send_signal(signal.SIGTERM)  # a service manager's stop: status 0
            assert process.wait(timeout=30) == 0
    down = _python(f"import sys\nfrom kgan.cli import demo\ncode = demo.main(['cond', "
                   f"'--serving-url', {rest.url!r}])\n"
                   "print('tf', 'tensorflow' in sys.modules)\nsys.exit(code)")
    assert down.returncode == 1 and "cannot reach TF Serving" in down.stderr
    assert "tf False" in down.stdout  # a page in front of TF Serving needs no TensorFlow


def test_kgan_demo_names_a_failing_or_slow_server_and_checks_num_classes(models, capsys):
    from kgan.cli import demo

    fake = FakeServer("cond", 1, backends.version_dir(models["cond"][1]), labels={})
    with RestServer(fake) as rest:
        with FlakyProxy(rest.url, status=502) as proxy:  # a gateway in trouble: exit 1
            assert demo.main(["cond", "--serving-url", proxy.url, "--port", "0"]) == 1
            error = capsys.readouterr().err
            assert f"server error (HTTP 502 from {proxy.url})" in error
            assert "--num-classes" not in error
        with FlakyProxy(rest.url, delay=2) as proxy:
            assert demo.main(["cond", "--serving-url", proxy.url, "--timeout", "0.5"]) == 1
            assert (f"no answer from TF Serving at {proxy.url} within 0.5 s; raise --timeout"
                    in capsys.readouterr().err)
        assert demo.main(["cond", "--serving-url", rest.url, "--num-classes", "12"]) == 2
        assert capsys.readouterr().err == (
            "kgan-demo: error: --num-classes 12 does not match the served model, which has 3 "
            "classes; drop --num-classes (the server says it)\n")
    assert demo.main(["cond", "--serving-url", "localhost:8501"]) == 2
    assert "must start with http:// or https://" in capsys.readouterr().err


def test_kgan_demo_points_a_run_in_progress_to_kgan_export(tmp_path, capsys):
    from kgan.cli import demo

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")  # a run with no final.keras yet
    assert demo.main([str(tmp_path / "run")]) == 2
    assert f"run kgan-export {tmp_path / 'run'} exports" in capsys.readouterr().err


def test_a_request_the_server_refuses_is_a_bad_request_not_a_failure(models):
    """The export's own check refusing a request is the visitor's error (400 on the page),
    in its words; only a server that fails is a 502."""
    fake = FakeServer("cond", 1, backends.version_dir(models["cond"][1]), labels={})
    with RestServer(fake) as rest:
        served = backends.ServingBackend(RestClient(rest.url, model="cond"))
        with pytest.raises(ValueError, match=r"^label must be < num_classes = 3$"):
            served._run("generate", {"seed": np.array([1]), "label": np.array([7], np.int32)})


def test_latency_benchmark_smoke(browser, tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
    import demo_latency

    out = tmp_path / "latency.json"
    result = demo_latency.main(["--resolution", "8", "--latent-dim", "4", "--base-filters", "4",
                                "--loads", "2", "--warmup", "1", "--images", "1,4",
                                "--out", str(out)])
    assert [(r["backend"], r["images"]) for r in result["rows"]] == [
        (name, n) for n in (1, 4) for name in ("embedded", "tf_serving_rest",
                                               "tf_serving_rest_without_generate_png",
                                               "tf_serving_grpc")]
    assert all(r["p50_ms"] > 0 and r["calls"] == 2 for r in result["rows"])
    assert json.loads(out.read_text())["rows"] == result["rows"]


def test_a_served_model_that_is_not_a_kgan_export_is_named(tmp_path):
    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2.0 * x},
                                input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "other" / "1"),
                        signatures={"serving_default": module.double})
    words = r"the served model 'other' is not a kgan export \(its signatures: serving_default;"
    with (RestServer(FakeServer("other", 1, str(tmp_path / "other" / "1"), labels={})) as rest,
          pytest.raises(ValueError, match=words)):
        backends.ServingBackend(RestClient(rest.url, model="other"))


CAPTION_BOXES = """
return [...document.querySelectorAll('figure')].map(f => {
  const c = f.querySelector('figcaption').getBoundingClientRect();
  const i = f.querySelector('img').getBoundingClientRect();
  return [c.left, c.right, c.top, c.bottom, i.left, i.right];
});"""


@pytest.mark.parametrize("query", ["?seed=2147483000&n=16", "?seed=-9000000000000&n=64"])
def test_grid_captions_stay_under_their_own_image(browser, servers, query):
    """Long seeds ("New image" draws up to 10 digits) wrap inside their cell instead of
    running into the neighbours' captions."""
    _visit(browser, servers["cond"] + "/" + query)
    boxes = browser.execute_script(CAPTION_BOXES)
    assert len(boxes) == int(query.rsplit("=", 1)[1])
    for left, right, _, _, image_left, image_right in boxes:
        assert image_left - 0.5 <= left and right <= image_right + 0.5
    for a, b in zip(boxes, boxes[1:], strict=False):  # neighbours never overlap
        assert a[1] <= b[0] + 0.5 or a[3] <= b[2] or b[3] <= a[2]


def test_show_keeps_a_permalinks_grid_size_and_truncation(browser, servers):
    """n=5 is no preset grid size and 0.73 is off the slider's 0.05 steps: pressing Show
    on that permalink's page must not turn them into n=1 and 0.75."""
    images = _visit(browser, servers["trunc"] + "/?seed=5&n=5&truncation=0.73")
    assert len(images) == 5
    browser.find_element("id", "show").click()
    for _ in range(100):
        if "truncation=0.73" in browser.current_url and "n=5" in browser.current_url:
            break
        time.sleep(0.05)
    assert "seed=5" in browser.current_url and "n=5" in browser.current_url
    assert "truncation=0.73" in browser.current_url


def test_the_server_not_a_stale_local_export_describes_the_served_model(models, tmp_path):
    """`kgan-demo EXPORT --serving-url` where the local folder holds another version than
    the one served: the page takes the image size and classes from the server."""
    stale = tmp_path / "cond" / "9"
    (stale / "assets.extra").mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"")
    (stale / "assets.extra" / "kgan.json").write_text(json.dumps(
        {"latent_dim": 99, "num_classes": 7, "image_shape": [64, 64, 3]}))
    fake = FakeServer("cond", 1, backends.version_dir(models["cond"][1]), labels={})
    with RestServer(fake) as rest:
        served = backends.ServingBackend(RestClient(rest.url, model="cond"),
                                         info_dir=str(tmp_path / "cond"))
    assert (served.info.image_shape, served.info.num_classes) == ((RES, RES, 1), 3)
    assert served.info.latent_dim == LATENT
