"""`kgan-train --download` without a network fails in seconds, not after TFDS's retries.

Offline, TFDS's `download_and_prepare` retries for minutes before it gives up, and it
leaves `*.tmp.*` folders in the data dir. Before TFDS starts, `check_download` opens
one TCP connection to the host TFDS downloads from (or to the HTTPS proxy the
environment names), with a 3 s limit on the name look-up and the connection together.
When that fails and the data is not prepared already, it raises a `ConfigError` that says
how to bring the data without a network (`tfds build` elsewhere, then `--data-dir`).

Standard library only (TFDS is imported only to ask whether the data is prepared).
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
import urllib.request

from kgan.training.errors import ConfigError

__all__ = ["DOWNLOAD_HOST", "TIMEOUT_S", "check_download", "probe"]

#: TFDS's own files and most of its datasets (mnist, cifar10, ...) are on Google Cloud Storage.
DOWNLOAD_HOST = ("storage.googleapis.com", 443)
TIMEOUT_S = 3.0


def probe(address: tuple[str, int] = DOWNLOAD_HOST, timeout: float = TIMEOUT_S) -> str | None:
    """Why `address` (or the HTTPS proxy in the environment) cannot be reached within
    `timeout` seconds, or None when a TCP connection opens.

    The look-up runs in a daemon thread: `getaddrinfo` has no timeout of its own, and a
    machine without DNS can make it wait far longer than the connection would.
    """
    host, port = _proxy() or address
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(_reason(error))

    thread = threading.Thread(target=connect, name="kgan-network-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer from {host}:{port} within {timeout:g} s"
    return None if outcome[0] is None else f"{host}:{port}: {outcome[0]}"


def _proxy() -> tuple[str, int] | None:
    url = urllib.request.getproxies().get("https")
    if not url:
        return None
    parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)


def _reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return f"name look-up failed ({error.strerror or error})"
    if isinstance(error, TimeoutError):
        return "the connection timed out"
    return error.strerror or type(error).__name__


def check_download(dataset: str, data_dir: str | None, download: bool) -> None:
    """Fails fast, with the ways out, when `--download` needs a network this machine lacks.

    Does nothing without `download`, for sources other than TFDS, or when the data is
    prepared already (then nothing will be downloaded).

    Raises:
        ConfigError: the download host cannot be reached and the data is not prepared.
    """
    if not download or not _is_tfds(dataset):
        return
    problem = probe()
    if problem is None or _prepared(dataset, data_dir):
        return
    where = f"--data-dir {data_dir}" if data_dir else "--data-dir DIR"
    raise ConfigError(
        f"--download needs the internet, but {problem}; prepare {dataset!r} on a machine "
        f"with internet (tfds build {dataset} --data_dir=DIR), copy DIR here and pass "
        f"{where} without --download")


def _is_tfds(dataset: str) -> bool:
    from kgan.data.registry import find_source

    try:
        return find_source(dataset).kind == "tfds"
    except ValueError:
        return False  # the run itself reports the name


def _prepared(dataset: str, data_dir: str | None) -> bool:
    """Whether TFDS has `dataset` on disk already (False when it cannot tell)."""
    try:
        from kgan.data.tfds_source import get_builder

        return bool(get_builder(dataset, data_dir).is_prepared())
    except Exception:  # an unknown name or a damaged folder: the run reports it
        return False
