"""The floor: a bare ASGI extender that decodes and re-encodes, with no policy at all.

It is what the extender is compared against, under the same server settings:

    python -m uvicorn loadtest.floor:app --host 127.0.0.1 --port 8899 \\
        --http httptools --loop uvloop --no-access-log --log-level warning

- ``POST /filter``: keeps every candidate. Names mode answers ``{"NodeNames": [...],
  "FailedNodes": {}, "FailedAndUnresolvableNodes": {}, "Error": ""}``; full-nodes mode echoes
  ``Nodes.items`` in ``Nodes`` (kube-scheduler scores only what the reply lists).
- ``POST /prioritize``: ``[{"Host": name, "Score": 0}, ...]`` for every candidate.
- ``POST /bind``: ``{"Error": ""}`` (no API write).
- ``GET /healthz``, ``GET /readyz``: 200.

``FLOOR_DECODE=generic`` (default) decodes the whole body into Python objects, as orjson.loads
would (the floor of shared/docs/performance.md). ``FLOOR_DECODE=typed`` decodes only what an
extender must read (msgspec structs, the pod and node objects kept as raw JSON): a leaner floor.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]

_encode = msgspec.json.Encoder().encode
_decode_any = msgspec.json.Decoder().decode


class _NodeList(msgspec.Struct):
    items: list[msgspec.Raw] | None = None


class _Args(msgspec.Struct):
    """ExtenderArgs, typed only as deep as the floor uses it."""

    Pod: msgspec.Raw = msgspec.Raw(b"null")  # any JSON, kept undecoded
    Nodes: _NodeList | None = None
    NodeNames: list[str] | None = None


class _NodeName(msgspec.Struct):
    class _Meta(msgspec.Struct):
        name: str = ""

    metadata: _Meta = msgspec.field(default_factory=_Meta)


_decode_args = msgspec.json.Decoder(_Args).decode
_decode_node_name = msgspec.json.Decoder(_NodeName).decode
TYPED = os.environ.get("FLOOR_DECODE", "generic") == "typed"


def _names_and_items(body: bytes) -> tuple[list[str] | None, list[Any] | None]:
    """Candidate names (names mode) or node items (full mode) of an ExtenderArgs body."""
    if TYPED:
        args = _decode_args(body)
        items = args.Nodes.items if args.Nodes is not None else None
        return args.NodeNames, items
    obj = _decode_any(body)
    if not isinstance(obj, dict):
        raise msgspec.ValidationError("ExtenderArgs must be an object")
    nodes = obj.get("Nodes")
    items = nodes.get("items") if isinstance(nodes, dict) else None
    return obj.get("NodeNames"), items


def _item_name(item: Any) -> str:
    if isinstance(item, msgspec.Raw):
        return _decode_node_name(item).metadata.name
    return str(item.get("metadata", {}).get("name", ""))


def filter_reply(body: bytes) -> bytes:
    names, items = _names_and_items(body)
    if names is None and items is not None:
        return _encode(
            {
                "NodeNames": None,
                "Nodes": {"metadata": {}, "items": items},
                "FailedNodes": {},
                "FailedAndUnresolvableNodes": {},
                "Error": "",
            }
        )
    return _encode(
        {
            "NodeNames": names or [],
            "FailedNodes": {},
            "FailedAndUnresolvableNodes": {},
            "Error": "",
        }
    )


def prioritize_reply(body: bytes) -> bytes:
    names, items = _names_and_items(body)
    if names is None:
        names = [_item_name(i) for i in items or ()]
    return _encode([{"Host": n, "Score": 0} for n in names])


def bind_reply(body: bytes) -> bytes:
    _decode_any(body)
    return b'{"Error":""}'


ROUTES: dict[str, Callable[[bytes], bytes]] = {
    "/filter": filter_reply,
    "/prioritize": prioritize_reply,
    "/bind": bind_reply,
}


async def _respond(send: Send, status: int, body: bytes, headers: list[Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    method = scope["method"]
    if method == "GET" and path in ("/healthz", "/readyz", "/livez"):
        await _respond(send, 200, b"ok", _TEXT)
        return
    handler = ROUTES.get(path)
    if handler is None:
        await _respond(send, 404, b"not found", _TEXT)
        return
    if method != "POST":
        await _respond(send, 405, b"method not allowed", _TEXT)
        return
    chunks = []
    more = True
    while more:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        more = msg.get("more_body", False)
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    try:
        reply = handler(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        await _respond(send, 400, _encode({"Error": f"bad request body: {exc}"}), _JSON)
        return
    await _respond(send, 200, reply, _JSON)
