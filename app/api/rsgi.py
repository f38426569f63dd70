"""granian's native interface (RSGI) in front of the extender's ASGI application.

Under granian every ASGI ``receive`` and ``send`` is a hand-over between the event loop and
granian's Rust threads; a hot verb takes three of them under ASGI (the body, the reply's head,
its body) and one under RSGI (the body; the reply is handed over without waiting). So the hot
verbs are served here as :class:`app.api.hotpath.HotPath` serves them under uvicorn — the same
handlers, body limit and read timeout — and every other route goes to the ASGI application
through a bridge that passes the whole request in and the whole response out (none of those
routes streams).
"""

from __future__ import annotations

import asyncio
from typing import Any

from app.api.hotpath import (
    ASGIApp,
    BodyTooLarge,
    HotPath,
    Message,
    declared_too_large,
    error_body,
    too_large,
    too_slow,
)

_JSON = ("content-type", "application/json")


class RSGIFront:
    """An RSGI application serving ``hot``'s verbs itself and the rest through ``hot.fallback``."""

    def __init__(self, hot: HotPath) -> None:
        self.hot = hot

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        handler = self.hot.handlers.get(scope.path)
        if handler is None:
            await _bridge(self.hot.fallback, scope, proto)
            return
        if scope.method != "POST":
            _reply(proto, 405, error_body("use POST"), [("allow", "POST")])
            return
        try:
            async with asyncio.timeout(self.hot.read_timeout):
                body = await _read(proto, scope.headers.get("content-length"), self.hot.max_body)
        except BodyTooLarge:
            _reply(proto, *too_large(self.hot.max_body))
            return
        except TimeoutError:
            _reply(proto, *too_slow(self.hot.read_timeout), [("connection", "close")])
            return
        status, reply = await handler(body)
        _reply(proto, status, reply)


async def _read(proto: Any, content_length: str | None, limit: int) -> bytes:
    """The body, or :class:`BodyTooLarge` once it passes ``limit`` bytes."""
    if declared_too_large(content_length, limit):
        raise BodyTooLarge
    if content_length is not None:  # the server delivers no more than declared
        body: bytes = await proto()
        return body
    chunks: list[bytes] = []
    size = 0
    async for chunk in proto:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _reply(
    proto: Any, status: int, body: bytes, extra: list[tuple[str, str]] | None = None
) -> None:
    headers = [_JSON, ("content-length", str(len(body))), *(extra or ())]
    proto.response_bytes(status, headers, body)


async def _bridge(app: ASGIApp, scope: Any, proto: Any) -> None:
    """One request to the ASGI ``app``: its whole body in, its whole response out."""
    body: bytes = await proto()
    asgi_scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "raw_path": scope.path.encode(),
        "query_string": scope.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()
        ],
        "client": _address(scope.client),
        "server": _address(scope.server),
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    done = asyncio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop()
        await done.wait()  # no disconnect is reported: the response is whole or nothing
        return {"type": "http.disconnect"}

    status = 500
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1"))
                       for k, v in message.get("headers", ())]  # fmt: skip
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(asgi_scope, receive, send)
    finally:
        done.set()
    proto.response_bytes(status, headers, b"".join(chunks))


def _address(text: str) -> tuple[str, int] | None:
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None
