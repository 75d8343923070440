"""Page-to-image latency of kgan-demo in a real headless Chromium, embedded vs TF Serving.

For each backend (the export loaded in-process; the TF Serving stand-in of
tests/serving_fakes.py over REST and over gRPC, which loads the export as the server
does; REST once more with the export's PNG-only signatures hidden, as an older export,
whose page gets `generate`'s pixel arrays too) and each grid size (1 and 16 images),
the browser loads `/?seed=S&n=N` with a new seed each time and the page reports, from
its own clock, when every image has been decoded: `performance.now()` after
`img.decode()` of all images, i.e. the time from navigation start to pixels (request,
model call, PNG encoding, transfer, parse, decode). Beside it, the backend call alone
(`backend.pngs`, what the page asks) in this process, the model's share. Reported:
p50 / p99 / mean over `--loads` loads after `--warmup`.

Run:
    python benchmarks/demo_latency.py --out benchmarks/results/demo_latency.json
    python benchmarks/demo_latency.py --export exports/digits     # a trained model
    python benchmarks/demo_latency.py --export exports/digits --screenshot docs/demo_page.png \\
        --loads 0                                                  # only the screenshot

Expect tens of milliseconds for one 32x32 image, most of it the model call and the
browser's navigation; the stand-in adds a local HTTP or gRPC round trip and JSON or
proto encoding. It is a Python server, not tensorflow_model_server: the comparison
shows the cost of the hop, not TF Serving's own speed. Needs chromium, chromedriver
and the dev extra.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # serving_fakes
import common  # noqa: E402


def export_model(args, root: str) -> str:
    """A freshly initialised DCGAN export (latency does not depend on training)."""
    import keras

    import kgan

    keras.utils.set_random_seed(0)
    generator, discriminator = kgan.networks.get("dcgan")(
        args.resolution, args.channels, args.latent_dim, base_filters=args.base_filters)
    gan = kgan.GAN(generator, discriminator, latent_dim=args.latent_dim)
    return kgan.export_generator(gan, root, model_name="bench")


def page_load(driver, url: str, seed: int, n: int) -> dict:
    """One visit of `/?seed=S&n=N`, in seconds from navigation start: every image decoded
    ("page"), the request sent ("request"), and request to last byte ("response", the
    server's share)."""
    from kgan.demo.browser import IMAGES_READY

    driver.get(f"{url}/?seed={seed}&n={n}")
    shown = driver.execute_async_script(IMAGES_READY)
    if shown["ready"] < 0 or len(shown["images"]) != n:
        raise RuntimeError(f"the page did not show {n} images: {shown['images']}")
    return {"page": shown["ready"] / 1e3, "request": shown["request"] / 1e3,
            "response": shown["response"] / 1e3}


def measure(driver, apps: dict, n: int, loads: int, warmup: int) -> list[dict]:
    """Rows for grid size n. Backends take turns load by load, so a busy spell on the
    (shared) machine hits all of them alike; each load asks for new seeds."""
    timings = {name: {"page": [], "request": [], "response": [], "call": []} for name in apps}
    for index in range(warmup + loads):
        seed = 1_000_000 * n + index * n
        for name, (backend, url) in apps.items():
            visit = page_load(driver, url, seed, n)
            other = range(seed + 500_000, seed + 500_000 + n)  # not the page's seeds
            call = common.timed(lambda b=backend, seeds=other: b.pngs(seeds))
            if index >= warmup:
                for key, value in (*visit.items(), ("call", call)):
                    timings[name][key].append(value)
    return [{"backend": name, "images": n, **common.percentiles_ms(t["page"]),
             "to_request_p50_ms": _p50(t["request"]), "response_p50_ms": _p50(t["response"]),
             "backend_call_p50_ms": _p50(t["call"])} for name, t in timings.items()]


def _p50(seconds: list) -> float:
    return common.percentiles_ms(seconds)["p50_ms"]


def start_backends(export: str, stack: contextlib.ExitStack) -> dict:
    """{name: backend} for embedded and the TF Serving stand-ins (REST, gRPC), running
    until `stack` closes."""
    from serving_fakes import Backend as FakeServer
    from serving_fakes import GrpcServer, RestServer

    from kgan.demo.backends import EmbeddedBackend, ServingBackend, model_name, version_dir
    from kgan.serving.client import GrpcClient, RestClient
    from kgan.serving.limits import PNG_SIGNATURES

    name, path = model_name(export), version_dir(export)
    fake = FakeServer(name, int(os.path.basename(path)), path, labels={})
    rest = stack.enter_context(RestServer(fake))
    grpc_server = stack.enter_context(GrpcServer(fake))
    grpc_backend = ServingBackend(GrpcClient(grpc_server.target, model=name), info_dir=export)
    stack.callback(grpc_backend.close)
    # The same export without its PNG-only signatures, as one made before them: the page
    # then gets `generate`'s reply, pixel arrays and latents included.
    older = FakeServer(name, int(os.path.basename(path)), path, labels={},
                       hide=tuple(PNG_SIGNATURES.values()))
    older_rest = stack.enter_context(RestServer(older))
    return {"embedded": EmbeddedBackend(export),
            "tf_serving_rest": ServingBackend(RestClient(rest.url, model=name),
                                              info_dir=export),
            "tf_serving_rest_without_generate_png": ServingBackend(
                RestClient(older_rest.url, model=name), info_dir=export),
            "tf_serving_grpc": grpc_backend}


def screenshot(export: str, path: str, query: str) -> str:
    """Saves a screenshot of the embedded demo page at `query` to `path` (PNG)."""
    from kgan.demo.app import create_app
    from kgan.demo.backends import EmbeddedBackend
    from kgan.demo.browser import IMAGES_READY, headless_chromium
    from kgan.demo.server import BackgroundServer

    driver = headless_chromium(width=900, height=860)
    try:
        with BackgroundServer(create_app(EmbeddedBackend(export))) as server:
            driver.get(server.url + "/" + query)
            driver.execute_async_script(IMAGES_READY)
            # Fit the window to the page so the picture ends where the page does.
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(900, height + 140)  # + the window frame headless keeps
            driver.save_screenshot(path)
    finally:
        driver.quit()
    return path


def run(args) -> dict:
    from kgan.demo.app import create_app
    from kgan.demo.browser import headless_chromium
    from kgan.demo.server import BackgroundServer

    machine, rows = common.machine(), []
    with tempfile.TemporaryDirectory() as root, contextlib.ExitStack() as stack:
        export = args.export or os.path.dirname(export_model(args, root))
        apps = {}
        for name, backend in start_backends(export, stack).items():
            server = stack.enter_context(BackgroundServer(create_app(backend)))
            apps[name] = (backend, server.url)
        driver = headless_chromium()
        stack.callback(driver.quit)
        for n in args.images:
            rows += measure(driver, apps, n, args.loads, args.warmup)
    return {"benchmark": "demo_latency",
            "settings": {**vars(args), "export": args.export or "fresh DCGAN (settings)"},
            "machine": machine, "rows": rows, "load_average_at_end": common.load_average(),
            "time": time.strftime("%F %T")}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export", help="an export folder (default: a fresh DCGAN at the sizes "
                                    "below, the digits demo's shape)")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--base-filters", type=int, default=64)
    p.add_argument("--images", default="1,16", type=lambda s: [int(n) for n in s.split(",")],
                   help="grid sizes to time")
    p.add_argument("--loads", type=int, default=100, help="timed page loads per cell")
    p.add_argument("--warmup", type=int, default=5, help="untimed loads first")
    p.add_argument("--screenshot", help="also save a screenshot of the page here (PNG)")
    p.add_argument("--screenshot-query", default="?seed=7&n=16",
                   help="the page the screenshot shows")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--out", help="write the JSON result here")
    args = p.parse_args(argv)
    if args.quick:
        args.resolution, args.latent_dim, args.base_filters = 8, 4, 4
        args.loads, args.warmup = 3, 1
    return args


def main(argv=None) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parse_args(argv)
    result = {}
    if args.loads > 0:
        result = run(args)
        common.print_table(result["rows"], ["backend", "images", "p50_ms", "p99_ms", "mean_ms",
                                            "to_request_p50_ms", "response_p50_ms",
                                            "backend_call_p50_ms"],
                           "Page to decoded image(s), headless Chromium")
        common.write_json(result, args.out)
    if args.screenshot:
        if not args.export:
            raise SystemExit("--screenshot needs --export (a trained model is worth showing)")
        print(screenshot(args.export, args.screenshot, args.screenshot_query))
    return result


if __name__ == "__main__":
    main()
