"""Runs the demo app with uvicorn: in the foreground (kgan-demo) or on a thread (tests).

The socket is bound here, before uvicorn starts, so port 0 works (the OS picks a free
port and `url` says which) and a port already in use fails with a plain OSError
instead of uvicorn's exit.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time

import uvicorn


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Terminated(Exception):
    """SIGTERM arrived: a normal stop (docker stop, systemd), not an interruption."""


def _terminated(signum, frame):
    raise _Terminated


class _Server(uvicorn.Server):
    """uvicorn's server, noting the signals it stopped on (`stopped_by`)."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.stopped_by: list[int] = []

    def handle_exit(self, sig: int, frame) -> None:
        self.stopped_by.append(sig)
        super().handle_exit(sig, frame)


def serve(app, sock: socket.socket, log_level: str = "warning") -> None:
    """Serves until SIGTERM (returns) or Ctrl-C (raises KeyboardInterrupt).

    uvicorn shuts down gracefully on either, then restores the previous handlers and
    re-raises the signal it caught. That re-raise depends on the process: a job started in
    the background (`cmd &`, nohup, some CI runners) inherits SIGINT ignored, so Ctrl-C's
    re-raise does nothing and `run` returns; under Python 3.11's asyncio runner it can
    also surface as a cancellation. So the outcome follows the first signal uvicorn
    noted, not how `run` ended. Main thread only.
    """
    server = _Server(uvicorn.Config(app, log_level=log_level, access_log=False,
                                    lifespan="off"))
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        server.run(sockets=[sock])
    except (_Terminated, KeyboardInterrupt, asyncio.CancelledError) as error:
        if not server.stopped_by:  # a signal before uvicorn took them over
            if isinstance(error, _Terminated):
                return
            raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if server.stopped_by and server.stopped_by[0] == signal.SIGINT:
        raise KeyboardInterrupt


class BackgroundServer:
    """The app on 127.0.0.1 (random port) in a thread; `with BackgroundServer(app) as s: s.url`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self._sock = bind(host, port)
        self.url = url_of(self._sock)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)  # off the main thread it leaves signals alone
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
