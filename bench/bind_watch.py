"""Watch a namespace's pods on the real API server and time each one's bind (``spec.nodeName``
first set), decoding only those two fields: the bench process must stay light beside the
processes it measures."""

from __future__ import annotations

import threading
import time

import httpx
import msgspec


class _Meta(msgspec.Struct):
    name: str = ""
    resourceVersion: str = ""


class _Spec(msgspec.Struct):
    nodeName: str | None = None


class _Pod(msgspec.Struct):
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    spec: _Spec = msgspec.field(default_factory=_Spec)


class _Event(msgspec.Struct):
    type: str
    object: _Pod


class _List(msgspec.Struct):
    metadata: _Meta
    items: list[_Pod]


class BindWatch:
    """Records when each pod of ``namespace`` is first seen bound, from a watch started now."""

    def __init__(self, server: str, token: str, namespace: str) -> None:
        self.url = f"{server}/api/v1/namespaces/{namespace}/pods"
        self.client = httpx.Client(verify=False, headers={"Authorization": f"Bearer {token}"},
                                   timeout=httpx.Timeout(10, read=None))  # fmt: skip
        self.bound_at: dict[str, float] = {}
        self.changed = threading.Condition()
        self._stopping = False
        listed = msgspec.json.decode(self.client.get(self.url).content, type=_List)
        self._version = listed.metadata.resourceVersion
        self._thread = threading.Thread(target=self._run, name="bind-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        decoder = msgspec.json.Decoder(_Event)
        params = {"watch": "1", "resourceVersion": self._version, "allowWatchBookmarks": "true"}
        while not self._stopping:
            try:
                self._follow(decoder, params)
            except httpx.HTTPError:
                if self._stopping:
                    return
                raise

    def _follow(self, decoder: msgspec.json.Decoder[_Event], params: dict[str, str]) -> None:
        with self.client.stream("GET", self.url, params=params) as stream:
            for line in stream.iter_lines():
                if self._stopping:
                    return
                if not line:
                    continue
                event = decoder.decode(line)
                params["resourceVersion"] = event.object.metadata.resourceVersion
                name = event.object.metadata.name
                if event.type != "DELETED" and event.object.spec.nodeName and name:
                    with self.changed:
                        self.bound_at.setdefault(name, time.monotonic())
                        self.changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until ``count`` pods are bound; False on timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: len(self.bound_at) >= count, timeout)

    def close(self) -> None:
        self._stopping = True
        self.client.close()
