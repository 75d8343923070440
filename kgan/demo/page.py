"""The demo's one HTML page, rendered on the server.

Images travel inside the page as data: URIs, so a visit is one request and one batched
model call whatever the grid size, and what the browser shows is byte for byte what the
PNG download returns. Forms submit with GET, so every state of the page has an address;
the little JavaScript there only adds comfort (the slider's value, putting a freshly
drawn seed into the address bar). Choosing in a select never submits by itself: a
keyboard user steps through the options with the arrow keys (each step is a `change`)
and then presses Show (WCAG 3.2.2, on input).
"""

from __future__ import annotations

import base64
import math
from html import escape
from urllib.parse import urlencode

from kgan.demo.model import ModelInfo
from kgan.demo.params import GRID_SIZES, View

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:860px;padding:16px;
color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0}.meta{color:#666;margin:2px 0 14px}
form{display:flex;flex-wrap:wrap;gap:10px 14px;align-items:end;margin:10px 0}
label{display:flex;flex-direction:column;font-size:12px;color:#555}
input,select,button,.button{font:inherit;padding:5px 8px;border:1px solid #bbb;border-radius:6px;
background:#fff;color:#1d1d1f;text-decoration:none}
input[name=seed],input[name=a],input[name=b]{width:9em}input[name=frames]{width:4em}
button,.button{cursor:pointer;background:#1d4ed8;color:#fff;border-color:#1d4ed8}
.button.light{background:#fff;color:#1d4ed8}
.error{background:#fee2e2;border:1px solid #ef4444;color:#7f1d1d;padding:10px 12px;
border-radius:6px}
.grid{display:grid;gap:8px;margin:14px 0}
figure{margin:0;width:min-content;text-align:center}
figcaption{font-size:12px;color:#555;margin-top:4px;overflow-wrap:anywhere}
.download.button{font-size:13px;padding:3px 8px}figcaption .download.button{margin-left:6px}
img.sample{image-rendering:pixelated;background:#000;border-radius:4px;display:block}
section{border-top:1px solid #ddd;margin-top:18px;padding-top:6px}h2{font-size:17px;margin:6px 0}
"""

_SCRIPT = """
for (const r of document.querySelectorAll('input[type=range]')) {
  const out = document.getElementById(r.id + '-value');
  r.addEventListener('input', () => { out.textContent = Number(r.value).toFixed(2); });
}
// When every image is decoded, from navigation start (the latency benchmark reads it).
window.kganImagesReady = Promise.all([...document.images].map(i => i.decode()))
  .then(() => performance.now(), e => -1);
const permalink = document.body.dataset.permalink;
if (permalink) history.replaceState(null, '', permalink);
"""


def render(info: ModelInfo, view: View | None, query: dict, images: list[bytes] | None = None,
           animation: bytes | None = None, error: str | None = None) -> str:
    """The whole page; `view` None (with `error`) renders the controls from the raw query."""
    permalink = view.query() if view is not None and view.random and not error else ""
    body = [_header(info), _controls(info, view, query)]
    if error:
        body.append(f'<p id="error" class="error" role="alert">{escape(error)}</p>')
    if images:
        body.append(_grid(info, view, images))
    body.append(_interpolation(info, view, query, animation))
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>kgan demo: {escape(info.name)}</title><style>{_STYLE}</style></head>"
            f"<body data-permalink=\"{escape(permalink)}\">{''.join(body)}"
            f"<script>{_SCRIPT}</script></body></html>")


def _header(info: ModelInfo) -> str:
    height, width, channels = info.image_shape
    classes = f"{info.num_classes} classes" if info.conditional else "unconditional"
    extra = ", truncation" if info.truncation else ""
    return (f"<header><h1>{escape(info.name)}</h1><p class=\"meta\">{width}&times;{height}, "
            f"{channels} channel{'s' if channels > 1 else ''}, latent {info.latent_dim}, "
            f"{classes}{extra} &middot; {escape(info.source)}</p></header>")


def _value(view: View | None, query: dict, name: str, default: str = "") -> str:
    """The field's value: the parsed view's, or what the visitor typed when it was bad."""
    if view is not None:
        value = getattr(view, name)
        return "" if value is None else str(value)
    return str(query.get(name, default))


def _common_fields(info: ModelInfo, view: View | None, query: dict, prefix: str) -> str:
    fields = []
    if info.conditional:
        chosen = _value(view, query, "label")
        options = ['<option value="">by seed</option>'] + [
            f'<option value="{k}"{" selected" if chosen == str(k) else ""}>{k}</option>'
            for k in range(info.num_classes)]
        fields.append(f'<label>Class<select name="label" id="{prefix}label">'
                      f'{"".join(options)}</select></label>')
    spec = info.truncation
    if spec is not None:
        value = _value(view, query, "truncation") or f"{spec.default:g}"
        try:
            shown = f"{float(value):.2f}"
            # A permalink's psi off the 0.05 grid (0.73) stays as it is when Show is pressed.
            step = "0.05" if abs(float(value) * 20 - round(float(value) * 20)) < 1e-9 else "any"
        except ValueError:
            shown, step = escape(value), "0.05"
        fields.append(
            f'<label>Truncation <span><input type="range" name="truncation" '
            f'id="{prefix}truncation" min="{spec.minimum:g}" max="{spec.maximum:g}" '
            f'step="{step}" value="{escape(value)}"> <output id="{prefix}truncation-value">'
            f'{shown}</output></span></label>')
    return "".join(fields)


def _controls(info: ModelInfo, view: View | None, query: dict) -> str:
    seed = "" if view is not None and view.interpolation else _value(view, query, "seed")
    n = _value(view, query, "n", "1") if not (view and view.interpolation) else "1"
    shown = set(GRID_SIZES) | ({int(n)} if n.isascii() and n.isdigit() and 1 <= int(n) <= max(
        GRID_SIZES) else set())  # a permalink's n=5 is kept, not reset to 1 by Show
    sizes = "".join(f'<option{" selected" if n == str(k) else ""}>{k}</option>'
                    for k in sorted(shown))
    # A new image keeps the valid choices (grid size, class, truncation), never a bad one.
    fresh = {} if view is None else {"n": None if view.interpolation or view.n == 1 else view.n,
                                     "label": view.label, "truncation": view.truncation}
    kept = urlencode({k: v for k, v in fresh.items() if v is not None})
    new = f"/?{kept}" if kept else "/"
    return (f'<form id="controls" method="get" action="/">'
            f'<label>Seed<input name="seed" id="seed" value="{escape(seed)}" '
            f'inputmode="numeric" autocomplete="off"></label>'
            f'<label>Images<select name="n" id="n">{sizes}</select></label>'
            f'{_common_fields(info, view, query, "")}'
            f'<button type="submit" id="show">Show</button>'
            f'<a class="button light" id="new" href="{escape(new)}">New image</a></form>')


def _grid(info: ModelInfo, view: View, images: list[bytes]) -> str:
    width = info.image_shape[1]
    columns = math.ceil(math.sqrt(len(images)))
    cell = max(width, 384 // columns)
    figures = []
    for index, (seed, png) in enumerate(zip(view.seeds, images, strict=True)):
        link = view.query(seed=seed, n=1)
        label = view.label if view.label is not None else (
            seed % info.num_classes if info.conditional else None)
        caption = f"seed {seed}" + (f", class {label}" if label is not None else "")
        alt = caption + _psi(view)
        if len(images) == 1:  # a grid names the psi once, below it
            caption = alt
        data = base64.b64encode(png).decode("ascii")
        # One image gets a download button; grid cells link to their own page, which has one.
        download = "" if len(images) > 1 else (
            f'<a class="download button light" id="download" download="{escape(info.name)}-'
            f'seed{seed}.png" href="/image.png{escape(link)}">Download PNG</a>')
        figures.append(
            f'<figure><a href="{escape(link)}"><img class="sample" id="image-{index}" '
            f'src="data:image/png;base64,{data}" width="{cell}" height="{cell}" '
            f'alt="{escape(alt)}" data-seed="{seed}"></a><figcaption>'
            f'<a href="{escape(link)}">{escape(caption)}</a>{download}</figcaption></figure>')
    grid_link = ""
    if len(images) > 1:
        psi = f" All at truncation {view.truncation:g}." if view.truncation is not None else ""
        grid_link = (f'<p>{psi.strip()} <a class="download button light" id="download" '
                     f'download="{escape(info.name)}-grid-{view.seed}.png" href="/grid.png'
                     f'{escape(view.query())}">Download the grid as PNG</a></p>')
    return (f'<main id="result"><div class="grid" style="grid-template-columns:repeat('
            f'{columns},{cell}px)">{"".join(figures)}</div>{grid_link}</main>')


def _psi(view: View) -> str:
    """The truncation a caption names (the permalink has it too), or nothing."""
    return "" if view.truncation is None else f", truncation {view.truncation:g}"


def _interpolation(info: ModelInfo, view: View | None, query: dict,
                   animation: bytes | None) -> str:
    interpolating = view is not None and view.interpolation
    a = _value(view, query, "a") if interpolating or view is None else str(view.seed)
    b = _value(view, query, "b") if interpolating or view is None else str(view.seed + 1)
    frames = _value(view, query, "frames", "24") if interpolating or view is None else "24"
    shown = ""
    if animation is not None:
        side = max(info.image_shape[1], 256)
        data = base64.b64encode(animation).decode("ascii")
        shown = (f'<figure><img class="sample" id="animation" src="data:image/gif;base64,'
                 f'{data}" width="{side}" height="{side}" alt="seed {view.a} to seed '
                 f'{view.b}"><figcaption>seed {view.a} &rarr; seed {view.b}, {view.frames} '
                 f'frames{_psi(view)} <a class="download button light" id="download" download="'
                 f'{escape(info.name)}-{view.a}-{view.b}.gif" href="/interpolation.gif'
                 f'{escape(view.query())}">Download GIF</a></figcaption></figure>')
    return (f'<section id="interpolation"><h2>Interpolate between two seeds</h2>'
            f'<form method="get" action="/"><label>From seed<input name="a" id="a" '
            f'value="{escape(a)}" inputmode="numeric"></label><label>To seed<input name="b" '
            f'id="b" value="{escape(b)}" inputmode="numeric"></label><label>Frames<input '
            f'name="frames" id="frames" value="{escape(frames)}" inputmode="numeric"></label>'
            f'{_common_fields(info, view, query, "i-")}'
            f'<button type="submit" id="interpolate">Interpolate</button></form>{shown}'
            f'</section>')
