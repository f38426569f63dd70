"""Nodes and pods as plain API objects (no kubelet, as in kube-scheduler's scheduler_perf), and
waiting for kube-scheduler's verdicts by watching the API server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import msgspec
from kubernetes import watch
from kubernetes.client import CoordinationV1Api, CoreV1Api, RbacAuthorizationV1Api
from kubernetes.client.exceptions import ApiException

from app.config import load_settings
from app.contract import Keys
from tests.controlplane.cluster import EXTENDER_NAMESPACE

JSON = dict[str, Any]
KEYS = Keys(load_settings().prefix)
GPU = load_settings().gpu_resource
NAMESPACE = "default"


def node(
    name: str,
    *,
    cpu: str = "16",
    memory: str = "64Gi",
    pods: int = 110,
    gpus: int = 0,
    labels: dict[str, str] | None = None,
) -> JSON:
    """A Node with its status (capacity = allocatable, Ready)."""
    allocatable = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    if gpus:
        allocatable[GPU] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "status": {
            "capacity": allocatable,
            "allocatable": allocatable,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "e2e node"}
            ],
        },
    }


def pod(
    name: str,
    *,
    scheduler: str,
    cpu: str = "100m",
    memory: str = "128Mi",
    gpus: int = 0,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    namespace: str = NAMESPACE,
) -> JSON:
    """A one-container pod for ``scheduler``."""
    requests: JSON = {"cpu": cpu, "memory": memory}
    limits: JSON = {}
    if gpus:
        requests[GPU] = limits[GPU] = str(gpus)
    resources: JSON = {"requests": requests} | ({"limits": limits} if limits else {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels or {},
            "annotations": annotations or {},
        },
        "spec": {
            "schedulerName": scheduler,
            "containers": [
                {"name": "main", "image": "registry.k8s.io/pause:3.10", "resources": resources}
            ],
        },
    }


def http_client(core: CoreV1Api) -> httpx.Client:
    """A plain HTTP client with ``core``'s server and credentials. Creating objects through the
    kubernetes client costs ~40 ms of CPU each (it validates every body with pydantic): 10,000
    pods would take minutes of the CPU the benchmarks measure."""
    config = core.api_client.configuration
    headers = {"Content-Type": "application/json"}
    token = next(iter(config.api_key.values()), None)
    if token:
        headers["Authorization"] = token
    return httpx.Client(base_url=config.host, verify=False, headers=headers, timeout=60,
                        limits=httpx.Limits(max_connections=32))  # fmt: skip


def _post(client: httpx.Client, path: str, obj: JSON) -> JSON:
    reply = client.post(path, content=msgspec.json.encode(obj))
    if reply.status_code >= 300:
        raise RuntimeError(f"POST {path}: {reply.status_code} {reply.text[:300]}")
    created: JSON = reply.json()
    return created


def create_nodes(core: CoreV1Api, nodes: Iterable[JSON], threads: int = 16) -> None:
    """Create each node, then PATCH its status (creation ignores status)."""
    with http_client(core) as client:

        def one(obj: JSON) -> None:
            _post(client, "/api/v1/nodes", {k: v for k, v in obj.items() if k != "status"})
            name = obj["metadata"]["name"]
            reply = client.patch(
                f"/api/v1/nodes/{name}/status",
                content=msgspec.json.encode({"status": obj["status"]}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            reply.raise_for_status()

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, nodes))


def create_pods(core: CoreV1Api, pods: Iterable[JSON], threads: int = 16) -> list[JSON]:
    """Create the pods; returns them as the API server stored them (with UIDs)."""
    with http_client(core) as client:

        def one(obj: JSON) -> JSON:
            namespace = obj["metadata"]["namespace"]
            return _post(client, f"/api/v1/namespaces/{namespace}/pods", obj)

        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(one, pods))


def delete_all(core: CoreV1Api, namespace: str = NAMESPACE) -> None:
    """Every pod in ``namespace`` (at once: no kubelet to wait for), every node, and their
    ledger Leases (no garbage collector runs here to follow their owner references)."""
    core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
    core.delete_collection_node()
    CoordinationV1Api(core.api_client).delete_collection_namespaced_lease(
        EXTENDER_NAMESPACE, label_selector=KEYS.ledger_selector
    )


def ledger_text(core: CoreV1Api, node_name: str) -> str:
    """The raw ledger of ``node_name`` ("" if it has no ledger Lease)."""
    try:
        found = CoordinationV1Api(core.api_client).read_namespaced_lease(
            node_name, EXTENDER_NAMESPACE
        )
    except ApiException as exc:
        if exc.status == 404:
            return ""
        raise
    annotations = found.metadata.annotations if found.metadata else None
    return str((annotations or {}).get(KEYS.reservations, ""))


def apply_rbac(core: CoreV1Api, rbac: RbacAuthorizationV1Api, objects: Iterable[JSON]) -> None:
    """Create ClusterRoles, Roles and their bindings, and the namespaces the namespaced ones
    live in (already present is fine)."""
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if namespace:
            _ignore_conflict(core.create_namespace, {"metadata": {"name": namespace}})
        if obj["kind"] == "ClusterRole":
            _ignore_conflict(rbac.create_cluster_role, obj)
        elif obj["kind"] == "ClusterRoleBinding":
            _ignore_conflict(rbac.create_cluster_role_binding, obj)
        elif obj["kind"] == "Role":
            _ignore_conflict(rbac.create_namespaced_role, namespace, obj)
        else:
            _ignore_conflict(rbac.create_namespaced_role_binding, namespace, obj)


def _ignore_conflict(create: Callable[..., Any], *args: Any) -> None:
    try:
        create(*args)
    except ApiException as exc:
        if exc.status != 409:
            raise


def unschedulable(obj: JSON) -> bool:
    """kube-scheduler has given up on the pod for now (condition PodScheduled=False)."""
    return any(
        c.get("type") == "PodScheduled" and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in (obj.get("status") or {}).get("conditions") or ()
    )  # fmt: skip


def bound_node(obj: JSON) -> str | None:
    node_name: str | None = (obj.get("spec") or {}).get("nodeName")
    return node_name


def settled(obj: JSON) -> bool:
    """Bound, or marked unschedulable."""
    return bound_node(obj) is not None or unschedulable(obj)


def watch_pods(
    core: CoreV1Api,
    done: Callable[[dict[str, JSON]], bool],
    *,
    timeout: float,
    namespace: str = NAMESPACE,
    on_event: Callable[[str, JSON], None] | None = None,
) -> dict[str, JSON]:
    """Watch the namespace's pods until ``done(pods by name)`` holds; the pods then.

    Raises TimeoutError with a summary when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    listed = core.api_client.sanitize_for_serialization(core.list_namespaced_pod(namespace))
    pods: dict[str, JSON] = {p["metadata"]["name"]: p for p in listed["items"]}
    version = listed["metadata"]["resourceVersion"]
    while not done(pods):
        left = deadline - time.monotonic()
        if left <= 0:
            summary = {
                "bound": sum(1 for p in pods.values() if bound_node(p)),
                "unschedulable": sum(1 for p in pods.values() if unschedulable(p)),
                "total": len(pods),
            }
            raise TimeoutError(f"pods did not settle in {timeout:g}s: {summary}")
        stream = watch.Watch().stream(
            core.list_namespaced_pod, namespace, resource_version=version,
            timeout_seconds=max(1, int(left)), allow_watch_bookmarks=True,
        )  # fmt: skip
        for event in stream:
            obj = event["raw_object"]
            version = obj["metadata"]["resourceVersion"]
            if event["type"] == "BOOKMARK":
                continue
            name = obj["metadata"]["name"]
            if event["type"] == "DELETED":
                pods.pop(name, None)
            else:
                pods[name] = obj
            if on_event is not None:
                on_event(event["type"], obj)
            if done(pods):
                break
    return pods


def all_settled(names: Iterable[str]) -> Callable[[dict[str, JSON]], bool]:
    """``done`` for :func:`watch_pods`: every named pod is bound or unschedulable."""
    wanted = set(names)

    def done(pods: dict[str, JSON]) -> bool:
        return all(n in pods and settled(pods[n]) for n in wanted)

    return done
