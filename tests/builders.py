"""Builders for v1 Node / Pod dicts in the API's shape, and snapshots made from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from app.config import Settings, load_settings
from app.extender import Extender
from app.state.ledger import Reservation, format_ledger, ledger_of
from app.state.records import node_facts, pod_facts
from app.state.snapshot import NodeParsing, Snapshot
from app.wire.types import Lease, Node, Pod

P = "placement-extender.io/"
FIXTURES = Path(__file__).parent / "fixtures"
GPU = "nvidia.com/gpu"


def node(
    name: str,
    *,
    cpu: str = "16",
    memory: str = "64Gi",
    pods: str = "110",
    gpus: int = 0,
    product: str | None = None,
    gpu_memory: int | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    resource_version: str = "1",
) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
    all_labels = {"kubernetes.io/hostname": name}
    if gpus:
        allocatable[GPU] = str(gpus)
    if product:
        all_labels["nvidia.com/gpu.product"] = product
    if gpu_memory is not None:
        all_labels["nvidia.com/gpu.memory"] = str(gpu_memory)
    all_labels.update(labels or {})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": resource_version,
            "labels": all_labels,
            "annotations": annotations or {},
        },
        "status": {"allocatable": allocatable, "capacity": dict(allocatable)},
    }


def pod(
    name: str,
    *,
    namespace: str = "default",
    node_name: str | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    gpus: int = 0,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    phase: str = "Pending",
    uid: str | None = None,
    priority: int | None = None,
    nominated: str | None = None,
    terminating: bool = False,
) -> dict[str, Any]:
    requests: dict[str, str] = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    if gpus:
        requests[GPU] = str(gpus)
    spec: dict[str, Any] = {
        "containers": [{"name": "main", "image": "busybox", "resources": {"requests": requests}}]
    }
    if node_name:
        spec["nodeName"] = node_name
    if priority is not None:
        spec["priority"] = priority
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": uid or f"uid-{namespace}-{name}",
        "labels": labels or {},
        "annotations": annotations or {},
    }
    if terminating:
        metadata["deletionTimestamp"] = "2026-12-01T10:00:00Z"
    status: dict[str, Any] = {"phase": phase}
    if nominated:
        status["nominatedNodeName"] = nominated
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status}


def lease(
    node_name: str,
    entries: list[Reservation] = (),  # type: ignore[assignment]
    *,
    text: str | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    """A node's ledger Lease as the extender writes it (``text``: the raw annotation)."""
    return {
        "metadata": {
            "name": node_name,
            "namespace": namespace,
            "labels": {P + "ledger": "node"},
            "annotations": {P + "reservations": format_ledger(entries) if text is None else text},
        },
        "spec": {},
    }


def snapshot_of(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]] = (),  # type: ignore[assignment]
    settings: Settings | None = None,
    clock: Any = None,
    leases: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> Snapshot:
    settings = settings or load_settings()
    parsing = NodeParsing.from_settings(settings)
    snapshot = Snapshot(parsing, clock) if clock else Snapshot(parsing)
    for item in nodes:
        snapshot.set_node(
            node_facts(
                msgspec.convert(item, Node), parsing.keys, parsing.gpu_resource, parsing.gpu_aliases
            )
        )
    for item in pods:
        snapshot.set_pod(pod_facts(msgspec.convert(item, Pod)))
    for item in leases:
        snapshot.set_ledger(ledger_of(msgspec.convert(item, Lease), parsing.keys.reservations))
    return snapshot


def extender_of(
    nodes: list[dict[str, Any]],
    pods: list[dict[str, Any]] = (),
    **settings: Any,  # type: ignore[assignment]
) -> Extender:
    config = load_settings(**settings)
    return Extender(config, snapshot_of(nodes, pods, config))


def args_body(pod_obj: dict[str, Any], names: list[str]) -> bytes:
    """A names-mode ExtenderArgs body as kube-scheduler sends it."""
    return json.dumps({"Pod": pod_obj, "Nodes": None, "NodeNames": names}).encode()


def recorded(name: str) -> dict[str, Any]:
    """A recorded kube-scheduler call from tests/fixtures/kube-scheduler/."""
    data: dict[str, Any] = json.loads((FIXTURES / "kube-scheduler" / f"{name}.json").read_text())
    return data
