"""Frozen per-node and per-pod records: the facts the policy needs, parsed once per change."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from app.contract import GFD_MEMORY_LABEL, GFD_PRODUCT_LABEL, SPOT_LABELS, Keys
from app.wire.quantity import QuantityError, quantity_to_int
from app.wire.requests import pod_requests
from app.wire.types import AccountedPod, Node, Pod

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


def stable_hash64(text: str) -> int:
    """First 64 bits of sha256(text): the per-name key of rendezvous hashing."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the policy knows of one node, parsed from its labels and status."""

    name: str
    resource_version: str
    allocatable: Mapping[str, int]
    gpu_type: str | None
    gpu_memory_mib: int
    pool: str
    pool_only: bool
    pool_priority: int
    preemptible: bool
    problems: tuple[str, ...] = ()
    """Labels, capacity or ledger that could not be read: the node is not used until fixed."""
    name_hash: int = field(default=0)
    uid: str = ""


@dataclass(frozen=True, slots=True)
class PodFacts:
    """A pod as the snapshot counts it: where it is bound and what it takes there."""

    uid: str
    namespace: str
    name: str
    node_name: str | None
    phase: str | None
    requests: Mapping[str, int]
    container_id: str = ""
    """The pod's container ID if it names one and is pending (bound pods do not need it)."""
    priority: int = 0
    """``spec.priority`` (0 when absent, as kube-scheduler reads it)."""
    nominated_node: str | None = None
    """``status.nominatedNodeName``: the node whose room a preemptor waits for."""
    terminating: bool = False
    """``metadata.deletionTimestamp`` is set: being deleted, it holds its room until gone."""

    @property
    def holds_resources(self) -> bool:
        return bool(self.node_name) and self.phase not in TERMINAL_PHASES

    @property
    def waits(self) -> bool:
        """Not bound yet, nor finished."""
        return not self.node_name and self.phase not in TERMINAL_PHASES

    @property
    def nominated(self) -> str | None:
        """The node this pod's nomination holds room on: it waits (and is not being deleted,
        so kube-scheduler will still place it) and kube-scheduler nominated it there."""
        if self.nominated_node and self.waits and not self.terminating:
            return self.nominated_node
        return None


WorkloadKey = tuple[str, str, tuple[tuple[str, int], ...]]


def workload_key(pod: PodFacts) -> WorkloadKey | None:
    """Pods with the same key are replicas of one workload as far as placement goes: same
    namespace, container ID and requests. None when the pod names no container ID."""
    if not pod.container_id:
        return None
    return (pod.namespace, pod.container_id, tuple(sorted(pod.requests.items())))


def annotation_or_label(
    key: str, annotations: Mapping[str, str] | None, labels: Mapping[str, str] | None
) -> str | None:
    """A pod fact that may be set either way: the annotation wins."""
    value = (annotations or {}).get(key)
    return (labels or {}).get(key) if value is None else value


_string_map = msgspec.json.Decoder(dict[str, str] | None)


def _string_map_of(value: Mapping[str, str] | msgspec.Raw | None) -> Mapping[str, str] | None:
    if isinstance(value, msgspec.Raw):
        return _string_map.decode(value) if value else None
    return value


def normalise_gpu_product(product: str, aliases: Mapping[str, str]) -> str:
    """GFD product → GPU type: the alias table first, else the product without its vendor."""
    if product in aliases:
        return aliases[product]
    for vendor in ("NVIDIA-", "Tesla-"):
        if product.startswith(vendor):
            return product[len(vendor) :]
    return product


def node_facts(node: Node, keys: Keys, gpu_resource: str, aliases: Mapping[str, str]) -> NodeFacts:
    """Parse a node. Unreadable facts become ``problems`` rather than exceptions."""
    meta = node.metadata
    labels = meta.labels or {}
    problems: list[str] = []

    allocatable: dict[str, int] = {}
    for resource, value in (node.status.allocatable or {}).items():
        try:
            allocatable[resource] = quantity_to_int(resource, value)
        except QuantityError as exc:
            problems.append(f"allocatable {resource}: {exc}")

    def integer_label(key: str) -> int:
        text = labels.get(key)
        if text is None:
            return 0
        try:
            return int(text)
        except ValueError:
            problems.append(f"label {key}={text!r} is not an integer")
            return 0

    gpu_type = labels.get(keys.gpu_type)
    if gpu_type is None and GFD_PRODUCT_LABEL in labels:
        gpu_type = normalise_gpu_product(labels[GFD_PRODUCT_LABEL], aliases)
    if gpu_type is None and allocatable.get(gpu_resource, 0) > 0:
        gpu_type = "unknown"

    preemptible = labels.get(keys.preemptible) == "true" or any(
        labels.get(label) == value for label, value in SPOT_LABELS.items()
    )
    return NodeFacts(
        name=meta.name,
        resource_version=meta.resourceVersion,
        allocatable=allocatable,
        gpu_type=gpu_type,
        gpu_memory_mib=integer_label(GFD_MEMORY_LABEL),
        pool=labels.get(keys.pool, ""),
        pool_only=labels.get(keys.pool_only) == "true",
        pool_priority=integer_label(keys.pool_priority),
        preemptible=preemptible,
        problems=tuple(problems),
        name_hash=stable_hash64(meta.name),
        uid=meta.uid,
    )


def pod_facts(pod: Pod | AccountedPod, keys: Keys | None = None) -> PodFacts:
    """Parse a pod for accounting. Raises ``QuantityError`` if a request is malformed. With
    ``keys``, a pending pod's container ID is read too (an unreadable label map reads as none)."""
    meta = pod.metadata
    container_id = ""
    if keys is not None and not pod.spec.nodeName:
        try:
            found = annotation_or_label(
                keys.container_id, _string_map_of(meta.annotations), _string_map_of(meta.labels)
            )
        except msgspec.DecodeError:
            found = None
        container_id = sys.intern(found) if found else ""
    return PodFacts(
        uid=meta.uid or f"{meta.namespace}/{meta.name}",
        namespace=meta.namespace,
        name=meta.name,
        node_name=pod.spec.nodeName or None,
        phase=pod.status.phase,
        requests=pod_requests(pod),
        container_id=container_id,
        priority=pod.spec.priority or 0,
        nominated_node=pod.status.nominatedNodeName or None,
        terminating=meta.deletionTimestamp is not None,
    )
