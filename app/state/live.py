"""Snapshot source: the live API server, with client-go informer semantics.

For each kind (nodes, pods, and the ledger Leases of ``app.state.ledger``) a thread lists, then
watches from the list's resourceVersion with bookmarks, following every event's resourceVersion.
An ``Expired`` (410) answer re-lists that kind alone and replaces it in the snapshot, leaving the
others untouched; readiness drops while it does. Network errors reconnect the watch from the last
resourceVersion after a jittered exponential backoff. The kubernetes client is blocking, so the
threads do the I/O and JSON decoding and hand finished records to the event loop, which alone
mutates the snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgspec
from kubernetes.client.exceptions import ApiException

from app.config import Settings
from app.kube import KubeApi
from app.state.ledger import ledger_of
from app.state.readiness import Readiness
from app.state.records import node_facts, pod_facts
from app.state.snapshot import NodeParsing, Snapshot
from app.wire.quantity import QuantityError
from app.wire.types import (
    AccountedPod,
    Lease,
    LeaseList,
    Metadata,
    Node,
    NodeList,
    PodList,
    Status,
    WatchEvent,
)

log = logging.getLogger(__name__)

NODES = "nodes"
PODS = "pods"
LEDGERS = "ledgers"
KINDS = (NODES, PODS, LEDGERS)
GONE = 410
WATCH_EVENTS = ("lists", "watches", "relists", "watch_errors")  # counted per kind
LIST_PAGE = 500  # objects per list page, as client-go's pager

_event_decoder = msgspec.json.Decoder(WatchEvent)
_status_decoder = msgspec.json.Decoder(Status)
_meta_decoder = msgspec.json.Decoder(Metadata)


class Expired(Exception):
    """The watch's resourceVersion is too old (HTTP 410 / ERROR event): re-list."""


class Backoff:
    """Jittered exponential backoff: uniform in [0, min(cap, base·2^n)] ("full jitter")."""

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.attempt = base, cap, 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return self.rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.attempt = 0


@dataclass(frozen=True)
class Kind:
    """How one resource kind is listed, decoded and applied to the snapshot."""

    name: str
    call: Callable[..., Any]
    list_decoder: msgspec.json.Decoder[Any]
    item_decoder: msgspec.json.Decoder[Any]
    facts: Callable[[Any], Any]
    key: Callable[[Any], str]
    upsert_many: Callable[[list[Any]], None]
    keep_only: Callable[[set[str]], None]
    upsert: Callable[[Any], None]
    delete: Callable[[str], None]
    known: Callable[[Any], bool] = lambda _: False
    """Whether the snapshot already holds this exact version (the binder applies its own
    ledger writes from their replies: their watch echoes need no further work)."""


def _lines(response: Any) -> Iterator[bytes]:
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        while (end := buffer.find(b"\n")) != -1:
            line, buffer = buffer[:end], buffer[end + 1 :]
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


class Watcher:
    """List-then-watch loop for one kind, on its own thread."""

    def __init__(
        self,
        kind: Kind,
        post: Callable[..., None],
        readiness: Readiness,
        settings: Settings,
        counters: dict[str, int],
    ) -> None:
        self.kind = kind
        self.post = post
        self.readiness = readiness
        self.timeout = settings.kube.watch_timeout_seconds
        self.backoff = Backoff(0.2, settings.kube.resync_backoff_max_seconds)
        self.counters = counters
        for event in WATCH_EVENTS:  # exported from zero, so rate() and increase() see the first
            counters.setdefault(f"{kind.name}_{event}", 0)
        self.stopped = threading.Event()
        self._response: Any = None
        self.thread = threading.Thread(target=self.run, name=f"watch-{kind.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        response = self._response
        connection = getattr(response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            # Closing the response here would wait for the reading thread; shutting the
            # socket down ends its blocking read at once instead.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        version: str | None = None
        while not self.stopped.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                self.backoff.reset()
            except Expired:
                self._count("relists")
                log.info("watch expired, re-listing", extra={"kind": self.kind.name})
                version = None
            except Exception as exc:
                if self.stopped.is_set():
                    break
                if isinstance(exc, ApiException) and exc.status == GONE:
                    self._count("relists")
                    version = None
                    continue
                self._count("watch_errors")
                # Until a watch is open again this replica's view may be stale: out of the
                # Service, so kube-scheduler calls a replica that still sees the cluster.
                self.post(self.readiness.loading, self.kind.name)
                delay = self.backoff.next()
                log.warning(
                    "watch failed, reconnecting",
                    extra={
                        "kind": self.kind.name,
                        "error": repr(exc),
                        "retry_in_s": round(delay, 3),
                    },
                )
                self.stopped.wait(delay)

    def _count(self, name: str) -> None:
        key = f"{self.kind.name}_{name}"
        self.counters[key] = self.counters.get(key, 0) + 1

    def _list(self) -> str:
        """List in pages (as client-go's pager does), hand each page to the loop as it comes
        — the loop keeps serving between pages — then drop what the list no longer has."""
        kind = self.kind
        self.post(self.readiness.loading, kind.name)
        seen: set[str] = set()
        token = ""
        while True:
            page = {"_continue": token} if token else {}
            response = kind.call(limit=LIST_PAGE, _request_timeout=(10, 120), **page)
            listed = kind.list_decoder.decode(response.data)
            records = [r for r in map(self._facts, listed.items) if r is not None]
            seen.update(kind.key(item) for item in listed.items)
            self.post(kind.upsert_many, records)
            token = listed.metadata.continue_
            if not token:
                break
        self.post(kind.keep_only, seen)
        self._count("lists")  # before readiness: whoever sees the replica ready sees the list
        self.post(self.readiness.loaded, kind.name)
        return str(listed.metadata.resourceVersion)

    def _facts(self, item: Any) -> Any:
        try:
            return self.kind.facts(item)
        except QuantityError as exc:
            log.warning(
                "skipping unreadable object", extra={"kind": self.kind.name, "error": str(exc)}
            )
            return None

    def _watch(self, version: str) -> str:
        response = self.kind.call(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.timeout,
            _request_timeout=(10, self.timeout + 30),
        )
        self._response = response
        self._count("watches")
        self.post(self.readiness.loaded, self.kind.name)
        try:
            if self.stopped.is_set():  # stop() ran before the response was published
                return version
            for line in _lines(response):
                version = self._handle(_event_decoder.decode(line), version)
        finally:
            self._response = None
            response.release_conn()
        return version

    def _handle(self, event: WatchEvent, version: str) -> str:
        kind = self.kind
        if event.type == "ERROR":
            status = _status_decoder.decode(event.object)
            if status.code == GONE:
                raise Expired(status.message)
            raise RuntimeError(f"watch error {status.code} {status.reason}: {status.message}")
        if event.type == "BOOKMARK":
            return _meta_decoder.decode(event.object).metadata.resourceVersion or version
        item = kind.item_decoder.decode(event.object)
        if event.type == "DELETED":
            self.post(kind.delete, kind.key(item))
        elif not kind.known(item):
            record = self._facts(item)
            if record is not None:
                self.post(kind.upsert, record)
        return str(item.metadata.resourceVersion or version)


def _pod_key(pod: AccountedPod) -> str:
    meta = pod.metadata
    return meta.uid or f"{meta.namespace}/{meta.name}"


class ClusterWatch:
    """Keeps a snapshot in step with the API server (nodes, pods and node ledgers), one
    thread per kind."""

    def __init__(self, settings: Settings, api: KubeApi, readiness: Readiness) -> None:
        self.settings = settings
        self.api = api
        self.readiness = readiness
        self.snapshot = Snapshot(NodeParsing.from_settings(settings))
        self.watchers: list[Watcher] = []
        self.counters: dict[str, int] = {}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start listing and watching; records are applied on ``loop``."""
        snapshot = self.snapshot
        parsing = snapshot.parsing

        def post(function: Callable[..., None], *args: Any) -> None:
            loop.call_soon_threadsafe(function, *args)

        def to_node(node: Node) -> Any:
            return node_facts(node, parsing.keys, parsing.gpu_resource, parsing.gpu_aliases)

        def ledger_known(lease: Lease) -> bool:
            held = snapshot.ledgers.get(lease.metadata.name)  # a read from this thread: atomic
            version = lease.metadata.resourceVersion
            return held is not None and bool(version) and held.resource_version == version

        list_ledgers = partial(
            self.api.list_leases,
            self.settings.kube.ledger_namespace,
            parsing.keys.ledger_selector,
        )

        kinds = [
            Kind(NODES, self.api.list_nodes, msgspec.json.Decoder(NodeList),
                 msgspec.json.Decoder(Node), to_node, lambda n: n.metadata.name,
                 snapshot.set_nodes, snapshot.keep_only_nodes, snapshot.set_node,
                 snapshot.delete_node),
            Kind(PODS, self.api.list_pods, msgspec.json.Decoder(PodList),
                 msgspec.json.Decoder(AccountedPod), partial(pod_facts, keys=parsing.keys),
                 _pod_key,
                 snapshot.set_pods, snapshot.keep_only_pods, snapshot.set_pod,
                 snapshot.delete_pod),
            Kind(LEDGERS, list_ledgers, msgspec.json.Decoder(LeaseList),
                 msgspec.json.Decoder(Lease), partial(ledger_of, key=parsing.keys.reservations),
                 lambda lease: lease.metadata.name, snapshot.set_ledgers,
                 snapshot.keep_only_ledgers, snapshot.set_ledger, snapshot.delete_ledger,
                 ledger_known),
        ]  # fmt: skip
        self.watchers = [
            Watcher(kind, post, self.readiness, self.settings, self.counters) for kind in kinds
        ]
        for watcher in self.watchers:
            watcher.start()

    async def stop(self) -> None:
        for watcher in self.watchers:
            await asyncio.to_thread(watcher.stop)
        for watcher in self.watchers:
            await asyncio.to_thread(watcher.thread.join, 5)
