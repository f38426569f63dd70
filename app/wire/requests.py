"""A pod's resource requests, computed as kube-scheduler computes them.

Mirrors component-helpers ``resource.PodRequests``: containers are summed; a restartable
(sidecar) init container runs beside the containers, so it is added to the sum; a regular init
container runs alone but beside the sidecars started before it, so the pod needs the running max
of those; pod-level resources, when set, replace the containers' figure for the resources they
name; pod overhead is added last. A container that sets only a limit gets the limit as its request,
as the API server's defaulting does. Every pod also takes one ``pods`` slot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.wire.quantity import quantity_to_int
from app.wire.types import AccountedPod, Container, Pod, ResourceList

PODS = "pods"
RESTART_ALWAYS = "Always"

Amounts = dict[str, int]


def _container_requests(container: Container) -> Amounts:
    resources = container.resources
    if resources is None:
        return {}
    merged: dict[str, str | int | float] = dict(resources.limits or {})
    merged.update(resources.requests or {})
    return _amounts(merged)


def _amounts(resources: ResourceList | None) -> Amounts:
    return {name: quantity_to_int(name, value) for name, value in (resources or {}).items()}


def _add(into: Amounts, extra: Mapping[str, int]) -> None:
    for name, value in extra.items():
        into[name] = into.get(name, 0) + value


def _max(into: Amounts, other: Mapping[str, int]) -> None:
    for name, value in other.items():
        if value > into.get(name, 0):
            into[name] = value


def _sum(containers: Iterable[Container]) -> Amounts:
    total: Amounts = {}
    for container in containers:
        _add(total, _container_requests(container))
    return total


def pod_requests(pod: Pod | AccountedPod) -> Amounts:
    """Requests of ``pod`` per resource name (CPU in millicores, others in units).

    Raises ``QuantityError`` naming the bad quantity if any is malformed.
    """
    spec = pod.spec
    requests = _sum(spec.containers)
    sidecars: Amounts = {}
    init_peak: Amounts = {}
    for init in spec.initContainers or ():
        own = _container_requests(init)
        if init.restartPolicy == RESTART_ALWAYS:
            _add(requests, own)
            _add(sidecars, own)
            _max(init_peak, sidecars)
        else:
            during = dict(own)
            _add(during, sidecars)
            _max(init_peak, during)
    _max(requests, init_peak)
    if spec.resources is not None and spec.resources.requests:
        requests.update(_amounts(spec.resources.requests))
    _add(requests, _amounts(spec.overhead))
    requests[PODS] = requests.get(PODS, 0) + 1
    return requests
