"""Pending pods for a simulation: read from manifests or lists, checked, and put in the order
kube-scheduler's default queue (PrioritySort) pops them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from app.state.file_source import SnapshotFileError, kube_objects, read_documents
from app.wire.types import QueuedPod

DEFAULT_NAMESPACE = "default"


class PendingPodsError(ValueError):
    """The pending pods cannot be simulated as given; the message says which and why."""


@dataclass(frozen=True, slots=True)
class PendingPod:
    """One pod to place, with its position in the input (the last tie-breaker of the queue)."""

    key: str
    """``namespace/name``."""
    pod: QueuedPod
    index: int

    @property
    def queue_key(self) -> tuple[int, float, int]:
        """Higher priority first, then older creation, then input order; a pod without a
        creation time (a manifest not yet created) counts as the newest."""
        created = self.pod.metadata.creationTimestamp
        return (
            -(self.pod.spec.priority or 0),
            created.timestamp() if created is not None else float("inf"),
            self.index,
        )


def pending_pods(documents: Any, origin: str) -> list[PendingPod]:
    """The pods in loaded YAML/JSON ``documents``, in queue order.

    Raises :class:`PendingPodsError` for an object that is not a pod, a pod that cannot be
    decoded, the same pod twice, or pods that already have a node (all of them named).
    """
    pods: list[PendingPod] = []
    for index, obj in enumerate(kube_objects(documents)):
        kind = obj.get("kind", "Pod")
        name = (obj.get("metadata") or {}).get("name", "?")
        if kind != "Pod":
            raise PendingPodsError(f"{origin}: object #{index} ({kind} {name}) is not a Pod")
        try:
            pod = msgspec.convert(obj, QueuedPod)
        except msgspec.ValidationError as exc:
            raise PendingPodsError(f"{origin}: object #{index} (Pod {name}): {exc}") from exc
        if not pod.metadata.name:
            raise PendingPodsError(f"{origin}: object #{index} (Pod) has no metadata.name")
        pod.metadata.namespace = pod.metadata.namespace or DEFAULT_NAMESPACE
        pods.append(PendingPod(f"{pod.metadata.namespace}/{pod.metadata.name}", pod, index))
    _check(pods, origin)
    return sorted(pods, key=lambda p: p.queue_key)


def read_pending(path: str | Path) -> list[PendingPod]:
    """The pods in a YAML or JSON file, in queue order (see :func:`pending_pods`)."""
    try:
        documents = read_documents(path)
    except SnapshotFileError as exc:
        raise PendingPodsError(f"cannot read pending pods {path}: {exc.__cause__}") from exc
    return pending_pods(documents, str(path))


def _check(pods: Sequence[PendingPod], origin: str) -> None:
    if not pods:
        raise PendingPodsError(f"{origin} holds no Pod objects")
    bound = [f"{p.key} (on {p.pod.spec.nodeName})" for p in pods if p.pod.spec.nodeName]
    if bound:
        raise PendingPodsError(
            f"{origin}: pods already bound (spec.nodeName set), not pending: {', '.join(bound)}"
        )
    twice = sorted(key for key, count in Counter(p.key for p in pods).items() if count > 1)
    if twice:
        raise PendingPodsError(f"{origin}: pods listed more than once: {', '.join(twice)}")
