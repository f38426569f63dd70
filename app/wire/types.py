"""The JSON shapes the extender reads, typed only as deep as they are used.

Field names follow the Go structs: kube-scheduler's ``extender/v1`` types have no JSON tags, so
their keys are the Go field names (``Pod``, ``NodeNames``...); ``core/v1`` objects use their JSON
tags (``metadata``, ``spec``...). Every other field of a Pod or Node is skipped by the decoder.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

QuantityText = str | int | float
ResourceList = dict[str, QuantityText]


class ResourceRequirements(msgspec.Struct, omit_defaults=True):
    requests: ResourceList | None = None
    limits: ResourceList | None = None


class Container(msgspec.Struct, omit_defaults=True):
    name: str = ""
    resources: ResourceRequirements | None = None
    restartPolicy: str | None = None


class ObjectMeta(msgspec.Struct, omit_defaults=True):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    deletionTimestamp: str | None = None
    """Set while the object is being deleted (a terminating pod still holds its room)."""


class PodSpec(msgspec.Struct, omit_defaults=True):
    containers: list[Container] = msgspec.field(default_factory=list)
    initContainers: list[Container] | None = None
    overhead: ResourceList | None = None
    resources: ResourceRequirements | None = None
    """Pod-level resources (PodLevelResources): when set they replace the containers' sum."""
    nodeName: str | None = None
    priority: int | None = None
    """Filled from the pod's PriorityClass by admission; kube-scheduler's queue sorts on it and
    preemption compares it (absent counts 0)."""


class PodStatus(msgspec.Struct, omit_defaults=True):
    phase: str | None = None
    nominatedNodeName: str | None = None
    """Set by kube-scheduler's preemption: the node whose room the pod waits for."""


class Pod(msgspec.Struct, omit_defaults=True):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)


class QueuedMeta(ObjectMeta, omit_defaults=True):
    creationTimestamp: datetime | None = None


class QueuedPod(Pod, omit_defaults=True):
    """A pending pod with what kube-scheduler's queue orders it by (``simulate`` reads these):
    ``spec.priority``, then the creation time."""

    metadata: QueuedMeta = msgspec.field(default_factory=QueuedMeta)


class NodeStatus(msgspec.Struct, omit_defaults=True):
    allocatable: ResourceList | None = None
    capacity: ResourceList | None = None


class Node(msgspec.Struct, omit_defaults=True):
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    status: NodeStatus = msgspec.field(default_factory=NodeStatus)


class RawNodeList(msgspec.Struct):
    """``Nodes`` in full-nodes mode: items kept raw so kept nodes are echoed byte for byte."""

    items: list[msgspec.Raw] | None = None


class ExtenderArgs(msgspec.Struct, forbid_unknown_fields=True):
    """kube-scheduler's ``ExtenderArgs`` (filter and prioritize bodies). A key spelled any
    other way sends the body to the codec's case-insensitive path."""

    Pod: Pod | None = None
    Nodes: RawNodeList | None = None
    NodeNames: list[str] | None = None


NULL = msgspec.Raw(b"null")
"""A raw JSON ``null``."""


class ExtenderArgsRawNames(msgspec.Struct, forbid_unknown_fields=True):
    """``ExtenderArgs`` with ``NodeNames`` left undecoded (``null`` when absent).

    kube-scheduler sends the same name list pod after pod while the cluster is unchanged; kept
    raw, a list seen before is recognised by its bytes instead of being decoded name by name.
    """

    Pod: Pod | None = None
    Nodes: RawNodeList | None = None
    NodeNames: msgspec.Raw = msgspec.field(default_factory=lambda: NULL)


class ExtenderBindingArgs(msgspec.Struct, forbid_unknown_fields=True):
    """kube-scheduler's ``ExtenderBindingArgs`` (bind body); other spellings as above."""

    PodName: str = ""
    PodNamespace: str = ""
    PodUID: str = ""
    Node: str = ""


class VictimMeta(msgspec.Struct):
    uid: str = ""


class VictimPod(msgspec.Struct):
    """A victim in ``NodeNameToVictims``: a whole v1.Pod, of which only the UID is read (what
    the snapshot counts for it is looked up by UID)."""

    metadata: VictimMeta = msgspec.field(default_factory=VictimMeta)


class Victims(msgspec.Struct, forbid_unknown_fields=True):
    """``extender/v1.Victims`` (nodeCacheCapable false): whole pods."""

    Pods: list[VictimPod | None] | None = None
    NumPDBViolations: int = 0


class MetaPod(msgspec.Struct, forbid_unknown_fields=True):
    UID: str = ""


class MetaVictims(msgspec.Struct, forbid_unknown_fields=True):
    """``extender/v1.MetaVictims`` (nodeCacheCapable true, and every reply): UIDs."""

    Pods: list[MetaPod | None] | None = None
    NumPDBViolations: int = 0


class ExtenderPreemptionArgs(msgspec.Struct, forbid_unknown_fields=True):
    """kube-scheduler's ``ExtenderPreemptionArgs`` (preempt body): the preemptor and, per
    candidate node, the victims kube-scheduler chose; the unused map arrives as ``null``.
    Keys spelled another way (at any level) send the body to the codec's case-insensitive path."""

    Pod: Pod | None = None
    NodeNameToVictims: dict[str, Victims | None] | None = None
    NodeNameToMetaVictims: dict[str, MetaVictims | None] | None = None


class ListMeta(msgspec.Struct):
    resourceVersion: str = ""
    continue_: str = msgspec.field(default="", name="continue")


class NodeList(msgspec.Struct):
    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: list[Node] = msgspec.field(default_factory=list)


class Lease(msgspec.Struct, omit_defaults=True):
    """A ``coordination.k8s.io/v1`` Lease carrying one node's reservation ledger (only its
    metadata is read: the ledger is an annotation)."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)


class LeaseList(msgspec.Struct):
    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: list[Lease] = msgspec.field(default_factory=list)


class PodIdentity(msgspec.Struct, omit_defaults=True):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""
    labels: msgspec.Raw = msgspec.Raw()
    """Left undecoded (a slice of the input): read only for pending pods."""
    annotations: msgspec.Raw = msgspec.Raw()
    deletionTimestamp: str | None = None


class AccountedPod(msgspec.Struct):
    """A pod as the snapshot counts it: identity, spec and phase. Labels and annotations stay
    raw bytes, decoded only for pending pods (at 100,000 pods they are most of the memory a
    full decode takes)."""

    metadata: PodIdentity = msgspec.field(default_factory=PodIdentity)
    spec: PodSpec = msgspec.field(default_factory=PodSpec)
    status: PodStatus = msgspec.field(default_factory=PodStatus)


class PodList(msgspec.Struct):
    metadata: ListMeta = msgspec.field(default_factory=ListMeta)
    items: list[AccountedPod] = msgspec.field(default_factory=list)


class WatchEvent(msgspec.Struct):
    """One line of a watch stream; ``object`` is decoded by kind once the type is known."""

    type: str
    object: msgspec.Raw


class Status(msgspec.Struct):
    """A ``metav1.Status`` (errors from the API server)."""

    code: int = 0
    reason: str = ""
    message: str = ""


class Metadata(msgspec.Struct):
    """Any object, read for its metadata only (bookmarks carry just a resourceVersion)."""

    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
