"""ApiServerStandIn: an in-memory kube-apiserver stand-in on a loopback port, for tests.

It serves the few endpoints the extender uses (list/watch/get Nodes and Pods, merge-patch Nodes,
bind and delete Pods) and answers with the status codes and bodies recorded from a real
kube-apiserver 1.36 in tests/fixtures/kube-apiserver/. It is not a cluster and not an API server.
Known differences from the real one: no auth, admission or validation beyond the recordings; no
managedFields upkeep; strategic merge patch is applied as a plain JSON merge patch (the same for
maps such as labels and annotations, not for lists with merge keys); label/field selectors are
refused (400); ``limit``/``continue`` page a list; a Pod DELETE is immediate (no graceful
termination); a Binding sets spec.nodeName (and its annotations) but no PodScheduled condition.
"""

from __future__ import annotations

import contextlib
import copy
import json
import queue
import re
import select
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes.client

from tests.standin import _wire
from tests.standin._wire import API_VERSIONS, JSON, KINDS

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "kube-apiserver"
DEFAULT_WATCH_TIMEOUT_SECONDS = 1800.0
"""Used when a watch has no ``timeoutSeconds`` (the real server picks 1800..3600 s)."""

_MERGE_PATCH_TYPES = ("application/merge-patch+json", "application/strategic-merge-patch+json")
_TRUE = ("1", "t", "T", "true", "True", "TRUE")  # Go's strconv.ParseBool
# (pattern, path template as the request counters name it, resource, endpoint kind)
_ROUTES: list[tuple[re.Pattern[str], str, str, str]] = [
    (re.compile(t.format(namespace="(?P<namespace>[^/]+)", name="(?P<name>[^/]+)")), t, r, e)
    for t, r, e in [
        ("/api/v1/nodes", "nodes", "collection"),
        ("/api/v1/nodes/{name}", "nodes", "object"),
        ("/api/v1/pods", "pods", "collection"),
        ("/api/v1/namespaces/{namespace}/pods", "pods", "collection"),
        ("/api/v1/namespaces/{namespace}/pods/{name}", "pods", "object"),
        ("/api/v1/namespaces/{namespace}/pods/{name}/binding", "pods", "binding"),
        ("/api/v1/namespaces/{namespace}/bindings", "pods", "binding"),  # create_namespaced_binding
        ("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases", "leases", "collection"),
        ("/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}", "leases", "object"),
        ("/apis/storage.k8s.io/v1/namespaces/{namespace}/csistoragecapacities",
         "csistoragecapacities", "collection"),
        ("/apis/storage.k8s.io/v1/namespaces/{namespace}/csistoragecapacities/{name}",
         "csistoragecapacities", "object"),
    ]
]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    """One watch event; ``object`` is the wire object (with kind/apiVersion)."""

    rv: int
    resource: str
    type: str
    object: JSON
    namespace: str = ""


@dataclass(eq=False)
class _Watch:
    resource: str
    namespace: str | None
    bookmarks: bool
    since: int
    last_rv: str  # for the 410 message if compact() ends this watch
    selector: str = ""  # key=value, or empty
    queue: queue.Queue[Event | None] = field(default_factory=queue.Queue)
    dropped: bool = False

    def offer(self, ev: Event) -> None:
        if ev.resource != self.resource:
            return
        if ev.type == "BOOKMARK":  # never one older than what this watch has been promised
            if self.bookmarks and ev.rv >= self.since:
                self.queue.put(ev)
            return
        if ev.rv <= self.since or (self.namespace is not None and ev.namespace != self.namespace):
            return
        if not _selected(ev.object, {"labelSelector": self.selector}):
            return
        self.last_rv = str(ev.rv)
        self.queue.put(ev)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the stand-in received it."""

    method: str
    target: str
    template: str
    content_type: str | None
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int | None
    hang_seconds: float | None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a real API server does not refuse connection bursts

    def __init__(self, standin: ApiServerStandIn) -> None:
        super().__init__((standin.host, standin.port), _Handler)
        self.standin = standin


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # As Go's net/http (so kube-apiserver) does: without it, a response's body write waits
        # for the client's delayed ACK of the headers write (Nagle): ~40 ms on every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.standin._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.standin._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.standin._handle(self)

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def send_json(self, code: int, body: JSON) -> None:
        data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def abort(self) -> None:
        """Close the connection without finishing the response."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def stream(self, w: _Watch, timeout: float, stopping: threading.Event) -> None:
        """Write watch events as chunked JSON lines until timeout, ERROR, drop or stop."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        deadline = time.monotonic() + timeout
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    ev = w.queue.get(timeout=min(remaining, 0.1))
                except queue.Empty:
                    if stopping.is_set() or self._client_gone():
                        return self.abort()
                    continue
                if ev is None or w.dropped or stopping.is_set():
                    return self.abort()
                line = json.dumps({"type": ev.type, "object": ev.object}, separators=(",", ":"))
                self._chunk(line.encode() + b"\n")
                if ev.type == "ERROR":
                    break
            self._chunk(b"")  # the terminating chunk: a clean end of the stream
        except OSError:
            self.abort()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class ApiServerStandIn:
    """In-memory kube-apiserver stand-in on 127.0.0.1:<ephemeral>, run in a background thread.

    ``host`` (IPv4) and ``port`` choose another listen address (``port=0``: an ephemeral one).

    Use as a context manager (``with ApiServerStandIn() as api: ...``) or start()/stop().
    All test-control methods are thread-safe. Objects are plain dicts as the API returns them.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._lock = threading.RLock()
        self._watches_changed = threading.Condition(self._lock)
        self._objects: dict[str, dict[tuple[str, str], JSON]] = {r: {} for r in KINDS}
        self._rv = 1
        self._compacted = 0  # a watch from a resourceVersion below this gets 410 Expired
        self._log: list[Event] = []
        self._watches: list[_Watch] = []
        self._held: dict[str, list[Event] | None] = dict.fromkeys(KINDS)  # None: not paused
        self._faults: list[_Fault] = []
        self._pages: dict[str, tuple[str, list[JSON]]] = {}  # continue token → (rv, rest)
        self._counts: Counter[tuple[str, str]] = Counter()
        self._requests: list[RecordedRequest] = []
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> ApiServerStandIn:
        """Listen on an ephemeral loopback port and serve in a daemon thread."""
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="apiserver-standin", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection (watches end abruptly)."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self.drop_watches()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> ApiServerStandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` (``http://127.0.0.1:<port>`` by default)."""
        assert self._server is not None, "start() the stand-in first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    def api_client(self, **config: Any) -> kubernetes.client.ApiClient:
        """A kubernetes ApiClient for this stand-in; ``config`` sets Configuration attributes."""
        return make_api_client(self.base_url, **config)

    # ----------------------------------------------------------------------------- store
    @property
    def resource_version(self) -> str:
        """The current global resourceVersion."""
        with self._lock:
            return str(self._rv)

    def load_fixture_lists(self, directory: Path = FIXTURES_DIR) -> None:
        """Seed an empty store with list-nodes.json and list-pods.json, keeping their
        resourceVersions; the global resourceVersion becomes the lists' (256) and older history
        counts as compacted. No watch events are emitted."""
        with self._lock:
            if any(self._objects.values()):
                raise ValueError("load_fixture_lists() needs an empty store")
            for resource, filename in (("nodes", "list-nodes.json"), ("pods", "list-pods.json")):
                body = json.loads((directory / filename).read_text())
                for item in body["items"]:
                    self._objects[resource][self._key(item)] = copy.deepcopy(item)
                self._rv = max(self._rv, int(body["metadata"]["resourceVersion"]))
            self._compacted = self._rv

    def load_objects(self, objects: Iterable[JSON]) -> int:
        """Bulk-seed the store with v1 Nodes and Pods (told apart by ``kind``), for large
        clusters: like add_node/add_pod (namespace, uid, creationTimestamp filled in; the next
        resourceVersion each) but with no watch events, no copies (the store takes the objects
        over; kind/apiVersion are dropped) and older history counted as compacted.
        Returns how many objects were loaded."""
        resources = {kind: resource for resource, kind in KINDS.items()}
        count = 0
        with self._lock:
            for item in objects:
                resource = resources.get(item.get("kind", ""))
                if resource is None:
                    raise ValueError(f"kind {item.get('kind')!r} is neither Node nor Pod")
                obj = {k: v for k, v in item.items() if k not in ("kind", "apiVersion")}
                meta = obj["metadata"] = dict(obj.get("metadata") or {})
                if resource == "pods":
                    meta.setdefault("namespace", "default")
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", _now())
                if self._key(obj) in self._objects[resource]:
                    raise ValueError(f"{resource} {self._key(obj)} already exists")
                self._rv += 1
                meta["resourceVersion"] = str(self._rv)
                self._objects[resource][self._key(obj)] = obj
                count += 1
            self._compacted = self._rv
        return count

    def add_node(self, obj: JSON) -> JSON:
        """Create a Node (uid/creationTimestamp filled in if absent); emits ADDED."""
        return self._add("nodes", obj)

    def add_pod(self, obj: JSON) -> JSON:
        """Create a Pod (namespace defaults to "default"); emits ADDED."""
        return self._add("pods", obj)

    def update_node(self, obj: JSON) -> JSON:
        """Replace an existing Node wholesale; emits MODIFIED."""
        return self._replace("nodes", obj)

    def update_pod(self, obj: JSON) -> JSON:
        """Replace an existing Pod wholesale; emits MODIFIED."""
        return self._replace("pods", obj)

    def delete_node(self, name: str) -> JSON:
        """Delete a Node; emits DELETED carrying the deletion resourceVersion."""
        with self._lock:
            return self._commit("nodes", "DELETED", self._require("nodes", "", name))

    def delete_pod(self, namespace: str, name: str) -> JSON:
        """Delete a Pod at once (no graceful termination); emits DELETED."""
        with self._lock:
            return self._commit("pods", "DELETED", self._require("pods", namespace, name))

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> JSON:
        """Set status.phase of a Pod; emits MODIFIED."""
        with self._lock:
            pod = copy.deepcopy(self._require("pods", namespace, name))
            pod.setdefault("status", {})["phase"] = phase
            return self._commit("pods", "MODIFIED", pod)

    def get_node(self, name: str) -> JSON | None:
        """A copy of the stored Node (no kind/apiVersion), or None."""
        with self._lock:
            return copy.deepcopy(self._objects["nodes"].get(("", name)))

    def add_lease(self, obj: JSON) -> JSON:
        """Add a Lease (its ``metadata.namespace`` is required)."""
        return self._add("leases", obj)

    def get_lease(self, namespace: str, name: str) -> JSON | None:
        """The stored Lease, or None."""
        with self._lock:
            return copy.deepcopy(self._objects["leases"].get((namespace, name)))

    def get_object(self, resource: str, namespace: str, name: str) -> JSON | None:
        """A copy of any stored object (no kind/apiVersion), or None."""
        with self._lock:
            return copy.deepcopy(self._objects[self._resource(resource)].get((namespace, name)))

    def get_pod(self, namespace: str, name: str) -> JSON | None:
        """A copy of the stored Pod (no kind/apiVersion), or None."""
        with self._lock:
            return copy.deepcopy(self._objects["pods"].get((namespace, name)))

    # ----------------------------------------------------------------------------- watches
    def bookmark(self) -> None:
        """Send a BOOKMARK at the current resourceVersion to every watch that allows them."""
        with self._lock:
            for resource in KINDS:
                self._dispatch(Event(self._rv, resource, "BOOKMARK",
                                     _wire.bookmark(resource, self._rv)))

    def compact(self) -> None:
        """Expire every resourceVersion below the current one: later watches from an older one,
        and every open watch, get the 410 ERROR event and end."""
        with self._lock:
            self._compacted = self._rv
            self._log = [e for e in self._log if e.rv > self._compacted]
            for w in list(self._watches):
                w.queue.put(Event(self._rv, w.resource, "ERROR",
                                  _wire.expired(w.last_rv, self._compacted)))
                self._unregister(w)

    def drop_watches(self) -> None:
        """Abruptly close every open watch connection (undelivered events are lost)."""
        with self._lock:
            for w in list(self._watches):
                w.dropped = True
                w.queue.put(None)
                self._unregister(w)

    def pause_watches(self, resource: str) -> None:
        """Hold back watch events (and bookmarks) for "nodes" or "pods" until resume."""
        with self._lock:
            if self._held[self._resource(resource)] is None:
                self._held[resource] = []

    def resume_watches(self, resource: str) -> None:
        """Deliver the held-back events for "nodes" or "pods", in order."""
        with self._lock:
            held, self._held[self._resource(resource)] = self._held[resource] or [], None
            for ev in held:
                self._dispatch(ev)

    def watch_count(self, resource: str | None = None) -> int:
        """Open watches (of one resource, or all)."""
        with self._lock:
            return sum(1 for w in self._watches if resource in (None, w.resource))

    def wait_for_watches(self, count: int, resource: str | None = None,
                         timeout: float = 5.0) -> bool:
        """Block until at least ``count`` watches are open; False on timeout."""
        with self._watches_changed:
            return self._watches_changed.wait_for(
                lambda: self.watch_count(resource) >= count, timeout)

    # ----------------------------------------------------------------------------- faults, counters
    def fail_next(self, method: str, path_regex: str, status: int | None = None,
                  hang_seconds: float | None = None) -> None:
        """Make the next request matching ``method`` and ``path_regex`` (re.search on path and
        query) fail once: hang ``hang_seconds`` first if given, then answer a Status with
        ``status``, or, without a status, close the connection unanswered."""
        if status is None and hang_seconds is None:
            raise ValueError("give a status, hang_seconds or both")
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), status,
                                       hang_seconds))

    def request_count(self, method: str, template: str) -> int:
        """Requests received for (method, path template), e.g. ("PATCH", "/api/v1/nodes/{name}").
        Watches count under method "WATCH"; injected failures count too."""
        with self._lock:
            return self._counts[(method.upper(), template)]

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order."""
        with self._lock:
            return list(self._requests)

    # ----------------------------------------------------------------------------- internals
    @staticmethod
    def _key(obj: JSON) -> tuple[str, str]:
        meta = obj["metadata"]
        return meta.get("namespace", ""), meta["name"]

    @staticmethod
    def _resource(resource: str) -> str:
        if resource not in KINDS:
            raise ValueError(f"resource must be one of {sorted(KINDS)}, not {resource!r}")
        return resource

    def _require(self, resource: str, namespace: str, name: str) -> JSON:
        try:
            return self._objects[resource][(namespace, name)]
        except KeyError:
            raise KeyError(f"{resource} {namespace}/{name} does not exist") from None

    def _add(self, resource: str, obj: JSON) -> JSON:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if resource == "pods":
            meta.setdefault("namespace", "default")
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        with self._lock:
            if self._key(obj) in self._objects[resource]:
                raise ValueError(f"{resource} {self._key(obj)} already exists")
            return self._commit(resource, "ADDED", obj)

    def _replace(self, resource: str, obj: JSON) -> JSON:
        obj = copy.deepcopy(obj)
        with self._lock:
            current = self._require(resource, *self._key(obj))
            for k in ("uid", "creationTimestamp"):
                obj["metadata"].setdefault(k, current["metadata"][k])
            return self._commit(resource, "MODIFIED", obj)

    def _commit(self, resource: str, type_: str, obj: JSON) -> JSON:
        """Write (or delete) ``obj`` at a new resourceVersion and emit its event. Lock held."""
        self._rv += 1
        obj = copy.deepcopy(obj)
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = self._key(obj)
        if type_ == "DELETED":
            del self._objects[resource][key]
        else:
            self._objects[resource][key] = obj
        ev = Event(self._rv, resource, type_, _wire.with_kind(resource, obj), key[0])
        self._log.append(ev)
        self._dispatch(ev)
        return copy.deepcopy(ev.object)

    def _dispatch(self, ev: Event) -> None:
        held = self._held[ev.resource]
        if held is not None:
            held.append(ev)
            return
        for w in self._watches:
            w.offer(ev)

    def _unregister(self, w: _Watch) -> None:
        with self._watches_changed:
            if w in self._watches:
                self._watches.remove(w)
                self._watches_changed.notify_all()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _take_fault(self, method: str, target: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.method == method and f.pattern.search(target):
                    self._faults.remove(f)
                    return f
        return None

    def _handle(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        route = next(((r, m) for r in _ROUTES if (m := r[0].fullmatch(url.path))), None)
        is_watch = h.command == "GET" and query.get("watch") in _TRUE
        template = route[0][1] if route else url.path
        with self._lock:
            self._counts[("WATCH" if is_watch else h.command, template)] += 1
            self._requests.append(RecordedRequest(h.command, h.path, template,
                                                  h.headers.get("Content-Type"), body))
        fault = self._take_fault(h.command, h.path)
        if fault is not None:
            if fault.hang_seconds:
                self._stopping.wait(fault.hang_seconds)
            if fault.status is None:
                return h.abort()
            return h.send_json(fault.status, _wire.status(fault.status, "injected by the stand-in"))
        if route is None:
            return h.send_json(404, _wire.no_route())
        (_, _, resource, endpoint), match = route
        ns, name = match.groupdict().get("namespace"), match.groupdict().get("name")
        selector = query.get("labelSelector", "")
        if endpoint == "collection" and (
            query.get("fieldSelector") or (selector and not _EQUALITY.fullmatch(selector))
        ):
            return h.send_json(400, _wire.status(400, "the stand-in implements only label "
                                                      "selectors of the form key=value"))
        try:
            if endpoint == "collection" and h.command == "GET" and is_watch:
                return self._watch(h, resource, ns, query)
            handler = {
                ("collection", "GET"): lambda: self._list(resource, ns, query),
                ("object", "GET"): lambda: self._get(resource, ns or "", name or ""),
                ("object", "PATCH"): lambda: self._patch(resource, ns or "", name or "",
                                                         h.headers.get("Content-Type"), body),
                ("object", "DELETE"): lambda: self._delete(resource, ns or "", name or "")
                if resource != "nodes" else (405, _wire.status(405, "the stand-in implements "
                                                               "DELETE of nodes in Python only")),
                ("collection", "POST"): lambda: self._create(resource, ns or "", body)
                if resource in ("leases", "csistoragecapacities")
                else (405, _wire.method_not_allowed()),
                ("binding", "POST"): lambda: self._bind(ns or "", name, body),
            }.get((endpoint, h.command))
            code, answer = handler() if handler else (405, _wire.method_not_allowed())
        except Exception as exc:  # a stand-in bug must answer, not hang the client
            code, answer = 500, _wire.status(500, f"stand-in error: {exc!r}")
        h.send_json(code, answer)

    def _list(self, resource: str, namespace: str | None,
              query: dict[str, str]) -> tuple[int, JSON]:
        """A list; with ``limit`` a page of it, the rest served from the same snapshot through
        the ``continue`` token, as the real server's pager does."""
        token = query.get("continue")
        with self._lock:
            if token:
                if token not in self._pages:
                    gone = "the continue token is not valid"
                    return 410, _wire.status(410, gone, reason="Expired")
                rv, items = self._pages.pop(token)
            else:
                rv = str(self._rv)
                items = [copy.deepcopy(o) for k, o in sorted(self._objects[resource].items())
                         if namespace in (None, k[0]) and _selected(o, query)]
            limit = int(query.get("limit") or 0)
            metadata: JSON = {"resourceVersion": rv}
            if 0 < limit < len(items):
                items, rest = items[:limit], items[limit:]
                metadata["continue"] = next_token = uuid.uuid4().hex
                metadata["remainingItemCount"] = len(rest)
                self._pages[next_token] = (rv, rest)
            return 200, {"kind": KINDS[resource] + "List", "apiVersion": API_VERSIONS[resource],
                         "metadata": metadata, "items": items}

    def _get(self, resource: str, namespace: str, name: str) -> tuple[int, JSON]:
        with self._lock:
            obj = self._objects[resource].get((namespace, name))
            if obj is None:
                return 404, _wire.not_found(resource, name)
            return 200, _wire.with_kind(resource, obj)

    def _patch(self, resource: str, namespace: str, name: str, content_type: str | None,
               body: bytes) -> tuple[int, JSON]:
        ctype = (content_type or "").split(";")[0].strip()
        if ctype not in _MERGE_PATCH_TYPES:
            return 415, _wire.status(415, f"the stand-in does not implement patch type {ctype!r}")
        try:
            patch = json.loads(body)
        except ValueError:
            patch = None
        if not isinstance(patch, dict):
            return 400, _wire.status(400, "the patch body must be a JSON object")
        with self._lock:
            current = self._objects[resource].get((namespace, name))
            if current is None:
                return 404, _wire.not_found(resource, name)
            wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                return 409, _wire.conflict_modified(resource, name)
            patched = _wire.merge_patch(current, patch)
            patched["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            if patched == current:  # a no-op patch writes nothing: same resourceVersion, no event
                return 200, _wire.with_kind(resource, current)
            return 200, self._commit(resource, "MODIFIED", patched)

    def _create(self, resource: str, namespace: str, body: bytes) -> tuple[int, JSON]:
        try:
            obj = json.loads(body)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or not (obj.get("metadata") or {}).get("name"):
            return 400, _wire.status(400, "the stand-in needs an object with metadata.name")
        meta = obj["metadata"]
        if meta.get("namespace", namespace) != namespace:
            return 400, _wire.status(400, "the namespace of the provided object does not match "
                                          "the namespace sent on the request")
        meta["namespace"] = namespace
        for server_set in ("resourceVersion", "uid", "creationTimestamp"):
            meta.pop(server_set, None)
        with self._lock:
            if (namespace, meta["name"]) in self._objects[resource]:
                return 409, _wire.already_exists(resource, meta["name"])
            meta["uid"], meta["creationTimestamp"] = str(uuid.uuid4()), _now()
            return 201, self._commit(resource, "ADDED", obj)

    def _delete(self, resource: str, namespace: str, name: str) -> tuple[int, JSON]:
        with self._lock:
            obj = self._objects[resource].get((namespace, name))
            if obj is None:
                return 404, _wire.not_found(resource, name)
            return 200, self._commit(resource, "DELETED", obj)

    def _bind(self, namespace: str, url_name: str | None, body: bytes) -> tuple[int, JSON]:
        try:
            binding = json.loads(body)
            meta, node = binding.get("metadata") or {}, (binding.get("target") or {}).get("name")
        except (ValueError, AttributeError):
            return 400, _wire.status(400, "the Binding body must be a JSON object")
        name = meta.get("name") or ""
        if url_name is not None and url_name != name:
            return 400, _wire.status(400, "name in URL does not match name in Binding object")
        if meta.get("namespace", namespace) != namespace:
            return 400, _wire.status(400, "the namespace of the provided object does not match "
                                          "the namespace sent on the request")
        if not node:
            return 400, _wire.status(400, "the stand-in needs target.name in a Binding")
        with self._lock:
            pod = self._objects["pods"].get((namespace, name))
            if pod is None:
                return 404, _wire.not_found("pods", name)
            if meta.get("uid") and meta["uid"] != pod["metadata"]["uid"]:
                return 409, _wire.uid_precondition_failed(namespace, name, meta["uid"],
                                                          pod["metadata"]["uid"])
            if assigned := pod.get("spec", {}).get("nodeName"):
                return 409, _wire.already_assigned(name, assigned)
            pod = copy.deepcopy(pod)
            pod.setdefault("spec", {})["nodeName"] = node
            if meta.get("annotations"):
                pod["metadata"].setdefault("annotations", {}).update(meta["annotations"])
            self._commit("pods", "MODIFIED", pod)
            return 201, _wire.created()

    def _watch(self, h: _Handler, resource: str, namespace: str | None,
               query: dict[str, str]) -> None:
        rv = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT_SECONDS)
        if rv not in ("", "0") and not rv.isdigit():
            return h.send_json(400, _wire.status(400, f"invalid resourceVersion {rv!r}"))
        with self._lock:
            if rv in ("", "0"):  # "any"/"most recent": synthetic ADDED for the current state
                since = self._rv
                backlog = [Event(int(o["metadata"]["resourceVersion"]), resource, "ADDED",
                                 _wire.with_kind(resource, o), k[0])
                           for k, o in sorted(self._objects[resource].items())
                           if namespace in (None, k[0]) and _selected(o, query)]
            else:
                since = int(rv)
                held = {id(e) for e in self._held[resource] or []}
                backlog = [e for e in self._log if e.resource == resource and e.rv > since
                           and id(e) not in held and namespace in (None, e.namespace)
                           and _selected(e.object, query)]
            w = _Watch(resource, namespace, query.get("allowWatchBookmarks") in _TRUE, since,
                       str(since), query.get("labelSelector", ""))
            if since < self._compacted:
                w.queue.put(Event(self._rv, resource, "ERROR", _wire.expired(rv, self._compacted)))
            else:
                for ev in backlog:
                    w.queue.put(ev)
                    w.last_rv = str(ev.rv)
                with self._watches_changed:
                    self._watches.append(w)
                    self._watches_changed.notify_all()
        try:
            h.stream(w, timeout, self._stopping)
        finally:
            self._unregister(w)


_EQUALITY = re.compile(r"[^=,!\s]+=[^=,!\s]*")


def _selected(obj: JSON, query: dict[str, str]) -> bool:
    """Whether ``obj`` matches the query's label selector (``key=value`` or none)."""
    selector = query.get("labelSelector", "")
    if not selector:
        return True
    key, _, value = selector.partition("=")
    return bool((obj.get("metadata", {}).get("labels") or {}).get(key) == value)


def make_api_client(base_url: str, **config: Any) -> kubernetes.client.ApiClient:
    """A kubernetes ApiClient for ``base_url`` with no auth; ``config`` sets Configuration
    attributes (e.g. ``retries=False``)."""
    configuration = kubernetes.client.Configuration()
    configuration.host = base_url
    for key, value in config.items():
        setattr(configuration, key, value)
    return kubernetes.client.ApiClient(configuration)
