"""HTTP on loopback only: every request the runner itself sends goes through here."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

LOOPBACK = "127.0.0.1"


class RunError(RuntimeError):
    """A step of the run failed; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def require_loopback(url: str) -> None:
    """Refuse any URL whose host is not this machine's loopback."""
    host = urllib.parse.urlsplit(url).hostname
    if host not in (LOOPBACK, "localhost", "::1"):
        raise RunError(f"refusing to send load-test traffic to {host}: loopback only")


def is_listening(port: int, timeout: float = 1.0) -> bool:
    """True once something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_get(url: str, timeout: float = 2.0) -> int:
    """The status of a GET (an HTTP error status is returned, not raised)."""
    require_loopback(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def http_get_text(url: str, timeout: float = 5.0) -> str | None:
    """The body of a GET, or None when the server cannot be reached or answers an error."""
    require_loopback(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return str(r.read().decode(errors="replace"))
    except OSError:
        return None


def http_post(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    """POST a JSON body: (status, reply body), whatever the status."""
    require_loopback(url)
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()
    except OSError as e:
        raise RunError(f"POST {url}: {e}") from e


def get_json(url: str, timeout: float = 30.0) -> Any:
    """GET and decode JSON; any failure is a RunError naming the URL."""
    require_loopback(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
        raise RunError(f"GET {url}: {e}") from e
