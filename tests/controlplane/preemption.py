"""What preemption scenarios need on a control plane without kubelets: PriorityClasses, GPU pods
of a class, a ledger reservation written as another extender replica would, and a stand-in for
kubelet that finishes the deletion of terminating pods (which a real kubelet confirms once the
containers stop)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from kubernetes.client import CoordinationV1Api, CoreV1Api, SchedulingV1Api
from kubernetes.client.exceptions import ApiException

from app.state.ledger import Reservation, format_ledger
from tests.controlplane.cluster import EXTENDER_NAMESPACE
from tests.controlplane.objects import GPU, JSON, KEYS, NAMESPACE, _ignore_conflict, pod

LOW, HIGH = "pe-low", "pe-high"
PRIORITIES = {LOW: 100, HIGH: 1000}


def create_priority_classes(core: CoreV1Api) -> None:
    """The scenario's PriorityClasses (cluster-scoped; already present is fine)."""
    api = SchedulingV1Api(core.api_client)
    for name, value in PRIORITIES.items():
        policy = "PreemptLowerPriority"
        body = {"metadata": {"name": name}, "value": value, "preemptionPolicy": policy}
        _ignore_conflict(api.create_priority_class, body)


def gpu_pod(name: str, *, scheduler: str, gpus: int, priority: str, node_name: str = "") -> JSON:
    """A GPU pod of PriorityClass ``priority`` (admission fills ``spec.priority``); with
    ``node_name`` it is created bound, as a pod already running there."""
    obj = pod(name, scheduler=scheduler, gpus=gpus)
    obj["spec"]["priorityClassName"] = priority
    if node_name:
        obj["spec"]["nodeName"] = node_name
    return obj


def reserve(core: CoreV1Api, node_name: str, holder: JSON, gpus: int, ttl: float = 600) -> None:
    """Write node ``node_name``'s ledger as another extender replica would while binding
    ``holder`` (a created pod): a live reservation of ``gpus`` GPUs."""
    meta = holder["metadata"]
    entry = Reservation(
        meta["uid"], f"{meta['namespace']}/{meta['name']}", ((GPU, gpus), ("pods", 1)),
        time.time() + ttl,
    )  # fmt: skip
    lease = {
        "metadata": {
            "name": node_name,
            "labels": {KEYS.ledger: "node"},
            "annotations": {KEYS.reservations: format_ledger([entry])},
        },
        "spec": {},
    }
    CoordinationV1Api(core.api_client).create_namespaced_lease(EXTENDER_NAMESPACE, lease)


def terminating(obj: JSON) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def kubelet(
    core: CoreV1Api, held: Collection[str] = (), seen: set[str] | None = None
) -> Callable[[str, JSON], None]:
    """An ``on_event`` for ``watch_pods`` acting as the nodes' kubelet: a pod that turns
    terminating is deleted for good at once (grace period 0), except those named in ``held``.
    ``seen`` collects the names of every pod seen terminating."""

    def on_event(kind: str, obj: JSON) -> None:
        if kind == "DELETED" or not terminating(obj):
            return
        name = obj["metadata"]["name"]
        if seen is not None:
            seen.add(name)
        if name not in held:
            finish_deletion(core, name)

    return on_event


def finish_deletion(core: CoreV1Api, name: str) -> None:
    """What kubelet does once a terminating pod's containers stopped: delete it for good."""
    try:
        core.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    except ApiException as exc:
        if exc.status != 404:
            raise
