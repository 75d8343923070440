"""The demo web app: a Starlette application over one `Backend`.

Routes (all GET; the query string is the whole state, see `kgan.demo.params`):

| path | returns |
|---|---|
| `/` | the page: `?seed=N[&n=K][&label=L][&truncation=T]`, or `?a=A&b=B[&frames=F]` |
| `/image.png` | one image as PNG, same parameters (n = 1) |
| `/grid.png` | the page's grid as one PNG |
| `/interpolation.gif` | the interpolation animation |
| `/api/info` | the model description as JSON |

A bad parameter gives the page (or a text body for files) with status 400 and a
message naming the parameter; a backend failure (TF Serving down) gives 502 and the
server's words. Neither stops the app. Model calls run in Starlette's thread pool,
so a slow generation never blocks other visitors' requests.

Example:
    >>> app = create_app(EmbeddedBackend("exports/digits"))
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import dataclasses

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kgan.demo import media, page
from kgan.demo.backends import Backend
from kgan.demo.params import BadRequest, View, parse_view
from kgan.images import decode_pngs

_GIF_FPS = 12.0
# A drawn seed must not be cached (each visit is new); a given seed names fixed bytes.
_NO_STORE = {"Cache-Control": "no-store"}


class _BackendFailed(RuntimeError):
    """The model call failed for a reason other than the request (server down, ...)."""


def create_app(backend: Backend) -> Starlette:
    """Builds the app serving `backend`'s generator; `app.state.backend` holds it."""
    info = backend.info

    def pngs(view: View) -> list[bytes]:
        return _call(backend.pngs, view.seeds, _labels(view), view.truncation)

    def animation(view: View) -> bytes:
        frames = _call(backend.interpolate, view.a, view.b, view.frames, view.label,
                       view.truncation)
        return media.gif_bytes(media.bounce(frames), _GIF_FPS)

    def home(request: Request) -> Response:
        query, view = dict(request.query_params), None
        try:
            view = parse_view(query, info)
            if view.interpolation:
                html = page.render(info, view, query, animation=animation(view))
            else:
                html = page.render(info, view, query, images=pngs(view))
        except BadRequest as error:
            return HTMLResponse(page.render(info, None, query, error=str(error)), 400)
        except _BackendFailed as error:  # the request was fine: keep its seed, grid, class
            return HTMLResponse(page.render(info, view, query, error=str(error)), 502)
        return HTMLResponse(html, headers=_NO_STORE if view.random else None)

    def image_png(request: Request) -> Response:
        return _file(request, lambda view: pngs(dataclasses.replace(view, n=1))[0],
                     "image/png")

    def grid_png(request: Request) -> Response:
        def make(view: View) -> bytes:  # from the PNGs: lossless, and a small REST reply
            return media.png_bytes(media.grid(decode_pngs(pngs(view))))

        return _file(request, make, "image/png")

    def interpolation_gif(request: Request) -> Response:
        def make(view: View) -> bytes:
            if not view.interpolation:
                raise BadRequest("an interpolation needs a and b seeds: ?a=1&b=2")
            return animation(view)

        return _file(request, make, "image/gif")

    def _file(request: Request, make, media_type: str) -> Response:
        try:
            view = parse_view(dict(request.query_params), info)
            return Response(make(view), media_type=media_type,
                            headers=_NO_STORE if view.random else None)
        except BadRequest as error:
            return PlainTextResponse(str(error), 400)
        except _BackendFailed as error:
            return PlainTextResponse(str(error), 502)

    def api_info(request: Request) -> Response:
        return JSONResponse({**dataclasses.asdict(info), "backend": backend.kind})

    app = Starlette(routes=[
        Route("/", home), Route("/image.png", image_png), Route("/grid.png", grid_png),
        Route("/interpolation.gif", interpolation_gif), Route("/api/info", api_info),
    ])
    app.state.backend = backend
    return app


def _labels(view: View):
    return None if view.label is None else np.full(view.n, view.label, np.int32)


def _call(method, *args):
    """Runs a backend call; request errors become BadRequest, the rest _BackendFailed."""
    try:
        return method(*args)
    except ValueError as error:
        raise BadRequest(str(error)) from None
    except Exception as error:  # the page reports any backend failure and keeps serving
        text = " ".join(str(error).split()) or type(error).__name__
        raise _BackendFailed(f"the generator failed: {text}") from None
