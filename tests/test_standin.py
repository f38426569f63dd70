"""Conformance of the kube-apiserver stand-in with the recorded real answers, driven through the
real kubernetes client (CoreV1Api, watch.Watch).

The store is seeded with the recorded lists (global resourceVersion 256), so replaying the
recorded requests yields the recorded resourceVersions, and most answers can be compared
byte for byte. The one known difference: the stand-in does not maintain managedFields.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client
import pytest
import urllib3
from kubernetes.client import CoreV1Api, V1Binding, V1ObjectMeta, V1ObjectReference
from kubernetes.watch import Watch
from kubernetes.watch.watch import iter_resp_lines

from tests.standin import FIXTURES_DIR, ApiServerStandIn

WAIT = 5.0  # upper bound for awaiting something that is expected to happen
RESERVATIONS = "placement-extender.io/reservations"
NODE_PATCH = "/api/v1/nodes/{name}"
POD_BINDING = "/api/v1/namespaces/{namespace}/pods/{name}/binding"


def recorded(name: str) -> Any:
    """A recorded fixture: .json as a dict, .jsonl as a list of raw lines."""
    text = (FIXTURES_DIR / name).read_text()
    return text.splitlines() if name.endswith(".jsonl") else json.loads(text)


def wire(body: Any) -> bytes:
    """``body`` as the real server writes it: compact JSON and a newline."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def shape(value: Any) -> Any:
    """Keys recursively and leaf types; managedFields (not maintained) left out."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if k != "managedFields"}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of a wire object without metadata.managedFields."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def binding(name: str, node: str, uid: str | None = None) -> V1Binding:
    """The Binding the extender posts (apiVersion, kind, metadata name/namespace/uid, target)."""
    return V1Binding(
        api_version="v1", kind="Binding",
        metadata=V1ObjectMeta(name=name, namespace="default", uid=uid),
        target=V1ObjectReference(kind="Node", name=node),
    )


class WatchThread:
    """Runs ``Watch().stream(func, **kwargs)`` in a thread; events and the outcome are awaitable."""

    def __init__(self, func: Callable[..., Any], **kwargs: Any) -> None:
        self.watch = Watch()
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(func,), kwargs=kwargs, daemon=True)
        self._thread.start()

    def _run(self, func: Callable[..., Any], **kwargs: Any) -> None:
        try:
            for event in self.watch.stream(func, **kwargs):
                self.events.put(event)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def next(self) -> dict[str, Any]:
        return self.events.get(timeout=WAIT)

    def finished(self) -> bool:
        return self.done.wait(WAIT)


@pytest.fixture
def api() -> Iterator[ApiServerStandIn]:
    with ApiServerStandIn() as standin:
        standin.load_fixture_lists()
        yield standin


@pytest.fixture
def v1(api: ApiServerStandIn) -> Iterator[CoreV1Api]:
    with api.api_client() as client:
        yield CoreV1Api(client)


# ---------------------------------------------------------------------------------------- lists
def test_lists_answer_the_recorded_bodies(v1: CoreV1Api) -> None:
    nodes = v1.list_node(_preload_content=False)
    pods = v1.list_pod_for_all_namespaces(_preload_content=False)
    assert (nodes.status, nodes.data) == (200, wire(recorded("list-nodes.json")))
    assert (pods.status, pods.data) == (200, wire(recorded("list-pods.json")))

    typed = v1.list_node()
    assert typed.metadata.resource_version == "256"
    assert [n.metadata.resource_version for n in typed.items] == ["222", "223", "224", "225", "226"]
    in_default = v1.list_namespaced_pod("default", _preload_content=False)
    assert json.loads(in_default.data) == recorded("list-pods.json")


def test_list_resource_version_is_the_global_one(api: ApiServerStandIn, v1: CoreV1Api) -> None:
    api.set_pod_phase("default", "cpu-worker-1", "Running")  # a pod write moves the node list RV
    nodes = v1.list_node()
    assert nodes.metadata.resource_version == "257" == api.resource_version
    assert max(int(n.metadata.resource_version) for n in nodes.items) == 226
    pods = v1.list_pod_for_all_namespaces()
    assert pods.metadata.resource_version == "257"
    phase = {p.metadata.name: (p.status.phase, p.metadata.resource_version) for p in pods.items}
    assert phase["cpu-worker-1"] == ("Running", "257")


def test_get_missing_objects_is_the_recorded_not_found(v1: CoreV1Api) -> None:
    for call, kind in ((lambda: v1.read_node("nope"), "nodes"),
                       (lambda: v1.read_namespaced_pod("nope", "default"), "pods")):
        with pytest.raises(kubernetes.client.ApiException) as err:
            call()
        expected = recorded("binding-missing-pod.json")["body"]
        expected["details"]["kind"] = kind
        expected["message"] = f'{kind} "nope" not found'
        assert (err.value.status, err.value.body.encode()) == (404, wire(expected))
    assert v1.read_node("cpu-a").kind == "Node"


# ---------------------------------------------------------------------------------------- watch
def test_watch_from_list_rv_replays_the_recorded_stream(api: ApiServerStandIn,
                                                        v1: CoreV1Api) -> None:
    lines = recorded("watch-nodes-modified-deleted-bookmark.jsonl")
    resp = v1.list_node(watch=True, resource_version="256", allow_watch_bookmarks=True,
                        timeout_seconds=10, _preload_content=False)
    assert api.wait_for_watches(1, "nodes")
    v1.patch_node("cpu-a", {"metadata": {"resourceVersion": "222",
                                         "annotations": {RESERVATIONS: "{}"}}})
    api.delete_node("cpu-b")
    api.bookmark()
    got = []
    for line in iter_resp_lines(resp):
        got.append(line)
        if len(got) == 3:
            break
    resp.release_conn()

    assert resp.status == 200
    modified, want_modified = json.loads(got[0]), json.loads(lines[0])
    assert modified["type"] == "MODIFIED"
    assert without_managed_fields(modified["object"]) == without_managed_fields(
        want_modified["object"])
    assert shape(modified) == shape(want_modified)
    assert got[1:] == lines[1:]  # DELETED and BOOKMARK byte for byte


def test_watch_stream_through_the_client(api: ApiServerStandIn, v1: CoreV1Api) -> None:
    w = WatchThread(v1.list_node, resource_version="256", allow_watch_bookmarks=True,
                    timeout_seconds=10)
    api.delete_node("cpu-b")
    api.add_node({"metadata": {"name": "cpu-c"}})
    first, second = w.next(), w.next()
    assert (first["type"], first["object"].metadata.name) == ("DELETED", "cpu-b")
    assert (second["type"], second["object"].metadata.resource_version) == ("ADDED", "258")
    assert second["object"].kind == "Node" and second["object"].metadata.uid
    api.bookmark()
    mark = w.next()
    assert mark["type"] == "BOOKMARK" and mark["raw_object"]["metadata"] == {
        "resourceVersion": "258"}
    assert w.watch.resource_version == "258"
    w.watch.stop()
    assert w.finished()


def test_watch_without_resource_version_starts_with_the_current_state(
        api: ApiServerStandIn, v1: CoreV1Api) -> None:
    w = WatchThread(v1.list_namespaced_pod, namespace="default", timeout_seconds=10)
    added = [w.next() for _ in range(6)]
    assert {e["type"] for e in added} == {"ADDED"}
    assert [e["object"].metadata.name for e in added][:2] == ["best-effort-1", "best-effort-2"]
    api.set_pod_phase("default", "gpu-worker-2", "Running")
    event = w.next()
    assert (event["type"], event["object"].status.phase) == ("MODIFIED", "Running")
    w.watch.stop()
    assert w.finished()


def test_watch_ends_cleanly_at_timeout(v1: CoreV1Api) -> None:
    w = WatchThread(v1.list_node, resource_version="256", timeout_seconds=1)
    assert w.finished() and w.error is None and w.events.empty()


def test_expired_watch_gets_exactly_the_recorded_error(api: ApiServerStandIn,
                                                       v1: CoreV1Api) -> None:
    while api.resource_version != "277":  # the recording's state: compacted at 277
        api.set_pod_phase("default", "best-effort-1", f"Phase{api.resource_version}")
    api.compact()
    resp = v1.list_node(watch=True, resource_version="100", _preload_content=False)
    assert resp.status == 200
    assert list(iter_resp_lines(resp)) == recorded("watch-expired.jsonl")  # then the stream ends

    with pytest.raises(kubernetes.client.ApiException) as err:
        list(Watch().stream(v1.list_node, resource_version="100", timeout_seconds=5))
    assert err.value.status == 410
    assert err.value.reason == "Expired: too old resource version: 100 (277)"

    # Watching from the compaction point itself still works.
    w = WatchThread(v1.list_node, resource_version="277", timeout_seconds=10)
    api.delete_node("cpu-a")
    assert w.next()["type"] == "DELETED"
    w.watch.stop()


def test_compact_ends_open_watches_with_410(api: ApiServerStandIn, v1: CoreV1Api) -> None:
    w = WatchThread(v1.list_node, resource_version="256", timeout_seconds=10)
    assert api.wait_for_watches(1, "nodes")
    api.compact()
    assert w.finished()
    assert isinstance(w.error, kubernetes.client.ApiException) and w.error.status == 410
    assert w.error.reason == "Expired: too old resource version: 256 (256)"
    assert api.watch_count() == 0


def test_pause_and_resume_deliver_in_order(api: ApiServerStandIn, v1: CoreV1Api) -> None:
    early = WatchThread(v1.list_node, resource_version="256", allow_watch_bookmarks=True,
                        timeout_seconds=10)
    assert api.wait_for_watches(1, "nodes")
    api.pause_watches("nodes")
    v1.patch_node("cpu-a", {"metadata": {"labels": {"x": "1"}}})
    api.delete_node("gpu-t4-1")
    api.bookmark()
    api.add_node({"metadata": {"name": "cpu-c"}})
    late = WatchThread(v1.list_node, resource_version="256", allow_watch_bookmarks=True,
                       timeout_seconds=10)
    assert api.wait_for_watches(2, "nodes")
    # The store moved on while the watches did not: the stale-watch race.
    assert v1.read_node("cpu-a").metadata.resource_version == "257"
    with pytest.raises(queue.Empty):  # a bounded check that nothing was delivered
        early.events.get(timeout=0.2)
    assert late.events.empty()

    api.resume_watches("nodes")
    for w in (early, late):
        got = [w.next() for _ in range(4)]
        assert [(e["type"], e["raw_object"]["metadata"]["resourceVersion"]) for e in got] == [
            ("MODIFIED", "257"), ("DELETED", "258"), ("BOOKMARK", "258"), ("ADDED", "259")]
        w.watch.stop()


def test_drop_watches_ends_the_stream_and_a_rewatch_misses_nothing(
        api: ApiServerStandIn, v1: CoreV1Api) -> None:
    w = WatchThread(v1.list_node, resource_version="256", timeout_seconds=10)
    api.delete_node("cpu-b")
    assert w.next()["type"] == "DELETED"
    api.drop_watches()
    assert w.finished()
    assert isinstance(w.error, urllib3.exceptions.ProtocolError)  # "Response ended prematurely"
    api.delete_node("gpu-t4-1")  # while nobody watches

    again = WatchThread(v1.list_node, resource_version=w.watch.resource_version,
                        timeout_seconds=10)
    event = again.next()
    assert (event["type"], event["object"].metadata.name) == ("DELETED", "gpu-t4-1")
    assert api.request_count("WATCH", "/api/v1/nodes") == 2
    again.watch.stop()


# ---------------------------------------------------------------------------------------- patch
def test_patch_cas_ok_then_conflict(api: ApiServerStandIn, v1: CoreV1Api) -> None:
    patch = {"metadata": {"resourceVersion": "222", "annotations": {RESERVATIONS: "{}"}}}
    ok = v1.patch_node("cpu-a", patch, _preload_content=False)
    want_ok = recorded("patch-node-cas-ok.json")
    body = json.loads(ok.data)
    assert ok.status == want_ok["status"] == 200
    assert shape(body) == shape(want_ok["body"])
    assert without_managed_fields(body) == without_managed_fields(want_ok["body"])
    assert api.requests[-1].content_type == "application/strategic-merge-patch+json"

    with pytest.raises(kubernetes.client.ApiException) as err:
        v1.patch_node("cpu-a", patch)
    want_conflict = recorded("patch-node-cas-conflict.json")
    assert (err.value.status, err.value.body.encode()) == (409, wire(want_conflict["body"]))
    assert api.resource_version == "257"  # nothing written
    assert api.get_node("cpu-a")["metadata"]["resourceVersion"] == "257"
    assert api.request_count("PATCH", NODE_PATCH) == 2


def test_merge_patch_semantics_under_both_content_types(api: ApiServerStandIn,
                                                        v1: CoreV1Api) -> None:
    v1.patch_node("cpu-a", {"metadata": {"annotations": {"a": "1", "b": "2"}}},
                  _content_type="application/merge-patch+json")
    node = v1.patch_node("cpu-a", {"metadata": {"resourceVersion": "257",
                                                "annotations": {"a": None, "b": "3"}}})
    assert node.metadata.resource_version == "258"
    annotations = node.metadata.annotations
    assert "a" not in annotations and annotations["b"] == "3"
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations
    assert node.metadata.labels["pool"] == "default"
    # A patch that changes nothing writes nothing.
    same = v1.patch_node("cpu-a", {"metadata": {"annotations": {"b": "3"}}})
    assert same.metadata.resource_version == "258" == api.resource_version
    with pytest.raises(kubernetes.client.ApiException) as err:
        v1.patch_node("nope", {"metadata": {"labels": {"x": "1"}}})
    assert err.value.status == 404 and json.loads(err.value.body)["details"]["kind"] == "nodes"


# ---------------------------------------------------------------------------------------- binding
def test_binding_created(api: ApiServerStandIn, v1: CoreV1Api) -> None:
    pod = api.get_pod("default", "gpu-worker-1")
    assert pod is not None
    del pod["spec"]["nodeName"]  # recorded before it was bound
    api.update_pod(pod)
    w = WatchThread(v1.list_pod_for_all_namespaces, resource_version=api.resource_version,
                    timeout_seconds=10)
    resp = v1.create_namespaced_pod_binding(
        "gpu-worker-1", "default", binding("gpu-worker-1", "gpu-h100-1", pod["metadata"]["uid"]),
        _preload_content=False)
    want = recorded("binding-created.json")
    assert (resp.status, resp.data) == (want["status"], wire(want["body"]))
    assert api.request_count("POST", POD_BINDING) == 1
    sent = next(r for r in reversed(api.requests) if r.method == "POST").json()  # not a watch
    assert sent["target"] == {"kind": "Node", "name": "gpu-h100-1"}
    event = w.next()
    assert (event["type"], event["object"].spec.node_name) == ("MODIFIED", "gpu-h100-1")
    w.watch.stop()


@pytest.mark.parametrize(
    ("fixture", "pod", "uid"),
    [
        ("binding-already-assigned.json", "cpu-worker-1", None),
        ("binding-wrong-uid.json", "cpu-worker-1", "00000000-0000-0000-0000-000000000000"),
        ("binding-missing-pod.json", "nope", None),
    ],
)
def test_binding_failures(api: ApiServerStandIn, v1: CoreV1Api, fixture: str, pod: str,
                          uid: str | None) -> None:
    want = recorded(fixture)
    assert want["path"] == f"/api/v1/namespaces/default/pods/{pod}/binding"
    before = api.resource_version
    with pytest.raises(kubernetes.client.ApiException) as err:
        v1.create_namespaced_pod_binding(pod, "default", binding(pod, "cpu-a", uid),
                                         _preload_content=False)
    assert (err.value.status, err.value.body.encode()) == (want["status"], wire(want["body"]))
    assert shape(json.loads(err.value.body)) == shape(want["body"])
    assert api.resource_version == before


def test_client_quirk_binding_201_does_not_deserialize(api: ApiServerStandIn,
                                                       v1: CoreV1Api) -> None:
    """The 201 body is a Status, which the client cannot read as the declared V1Binding (required
    ``target``): it raises although the binding happened. Hence ``_preload_content=False``."""
    pod = api.get_pod("default", "best-effort-1")
    assert pod is not None
    del pod["spec"]["nodeName"]
    api.update_pod(pod)
    with pytest.raises(ValueError, match="target"):
        v1.create_namespaced_pod_binding("best-effort-1", "default",
                                         binding("best-effort-1", "cpu-b"))
    assert api.get_pod("default", "best-effort-1")["spec"]["nodeName"] == "cpu-b"


# ---------------------------------------------------------------------------------------- faults
def test_fail_next_hang_times_the_client_out_once(api: ApiServerStandIn, v1: CoreV1Api) -> None:
    api.fail_next("PATCH", r"^/api/v1/nodes/cpu-a$", hang_seconds=3)
    patch = {"metadata": {"labels": {"x": "1"}}}
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        v1.patch_node("cpu-a", patch, _request_timeout=0.3)
    assert api.get_node("cpu-a")["metadata"]["labels"].get("x") is None  # not applied
    assert v1.patch_node("cpu-a", patch, _request_timeout=WAIT).metadata.labels["x"] == "1"
    assert api.request_count("PATCH", NODE_PATCH) == 2


def test_fail_next_hang_on_get_is_retried_by_urllib3(api: ApiServerStandIn,
                                                     v1: CoreV1Api) -> None:
    """Client quirk: urllib3's default Retry re-sends a GET after a read timeout."""
    api.fail_next("GET", r"^/api/v1/nodes/cpu-a$", hang_seconds=3)
    assert v1.read_node("cpu-a", _request_timeout=0.3).metadata.name == "cpu-a"
    assert api.request_count("GET", "/api/v1/nodes/{name}") == 2


def test_fail_next_status(api: ApiServerStandIn, v1: CoreV1Api) -> None:
    api.fail_next("POST", r"/binding$", status=503)
    with pytest.raises(kubernetes.client.ApiException) as err:
        v1.create_namespaced_pod_binding("nope", "default", binding("nope", "cpu-a"))
    assert err.value.status == 503
    assert json.loads(err.value.body)["reason"] == "ServiceUnavailable"
    with pytest.raises(kubernetes.client.ApiException) as err:  # once only: now the real answer
        v1.create_namespaced_pod_binding("nope", "default", binding("nope", "cpu-a"))
    assert err.value.status == 404
    assert api.request_count("POST", POD_BINDING) == 2


def test_delete_pod_returns_the_object_and_emits_deleted(api: ApiServerStandIn,
                                                         v1: CoreV1Api) -> None:
    w = WatchThread(v1.list_namespaced_pod, namespace="default", resource_version="256",
                    timeout_seconds=10)
    deleted = v1.delete_namespaced_pod("cpu-worker-2", "default")
    assert deleted.metadata.name == "cpu-worker-2" and deleted.metadata.resource_version == "257"
    event = w.next()
    assert (event["type"], event["object"].metadata.name) == ("DELETED", "cpu-worker-2")
    assert api.get_pod("default", "cpu-worker-2") is None
    w.watch.stop()


def test_load_objects_seeds_a_store_without_events() -> None:
    with ApiServerStandIn() as standin:
        loaded = standin.load_objects([
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "uid": "u1"},
             "spec": {"nodeName": "n1"}},
        ])
        assert loaded == 2 and standin.resource_version == "3"
        with standin.api_client() as client:
            v1 = CoreV1Api(client)
            pod = json.loads(v1.read_namespaced_pod("p1", "default", _preload_content=False).data)
            assert pod["metadata"]["uid"] == "u1" and pod["metadata"]["resourceVersion"] == "3"
            assert pod["metadata"]["namespace"] == "default" and pod["spec"]["nodeName"] == "n1"
            [node] = json.loads(v1.list_node(_preload_content=False).data)["items"]
            assert node["metadata"]["uid"] and node["metadata"]["resourceVersion"] == "2"
            with pytest.raises(kubernetes.client.ApiException) as err:  # no history before it
                list(Watch().stream(v1.list_node, resource_version="1", timeout_seconds=5))
            assert err.value.status == 410
        with pytest.raises(ValueError, match="neither Node nor Pod"):
            standin.load_objects([{"kind": "Service", "metadata": {"name": "s"}}])
