"""A bare ASGI front for the hot verbs: no framework machinery on kube-scheduler's path.

Reads the body (413 past the limit), calls the verb's handler with the bytes, sends its reply.
Everything else goes to the wrapped application.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from app.wire.codec import encode

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[[bytes], Awaitable[tuple[int, bytes]]]

_JSON_HEADERS = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    pass


def too_large(limit: int) -> tuple[int, bytes]:
    """The reply to a body over ``limit`` bytes."""
    return 413, error_body(f"request body over {limit} bytes")


def too_slow(read_timeout: float | None) -> tuple[int, bytes]:
    """The reply to a body that did not arrive in time (the connection is closed after it)."""
    return 408, error_body(f"request body not received within {read_timeout:g}s")


def declared_too_large(content_length: bytes | str | None, limit: int) -> bool:
    """Whether a Content-Length header already says the body is over ``limit`` bytes."""
    return content_length is not None and content_length.isdigit() and int(content_length) > limit


async def read_body(receive: Receive, scope: Scope, limit: int) -> bytes:
    """The request body, or :class:`BodyTooLarge` once it passes ``limit`` bytes."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and declared_too_large(value, limit):
            raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *(extra or ())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_body(message: str) -> bytes:
    return encode({"Error": message})


class HotPath:
    """Serve ``POST <path>`` for the given handlers; delegate everything else."""

    def __init__(
        self,
        fallback: ASGIApp,
        handlers: dict[str, Handler],
        max_body: int,
        read_timeout: float | None = None,
    ) -> None:
        self.fallback = fallback
        self.handlers = handlers
        self.max_body = max_body
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None:
            await self.fallback(scope, receive, send)
            return
        if scope["method"] != "POST":
            await send_json(send, 405, error_body("use POST"), [(b"allow", b"POST")])
            return
        try:
            async with asyncio.timeout(self.read_timeout):
                body = await read_body(receive, scope, self.max_body)
        except BodyTooLarge:
            await send_json(send, *too_large(self.max_body))
            return
        except TimeoutError:
            await send_json(send, *too_slow(self.read_timeout), [(b"connection", b"close")])
            return
        status, reply = await handler(body)
        await send_json(send, status, reply)
