"""Every Kubernetes API call the extender makes, as RBAC rules: the one source of truth.

The Helm chart's ClusterRole (cluster-wide rules) and Role (``namespaced`` rules, in the
release's namespace) are checked against this list in tests, so a new API call must be added
here first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiPermission:
    """One RBAC rule: API group, resource (with subresource) and verbs; ``namespaced`` rules
    are needed only in the extender's own namespace (``kube.ledger_namespace``)."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]
    namespaced: bool = False


NODES = ApiPermission("", "nodes", ("get", "list", "watch"))
PODS = ApiPermission("", "pods", ("get", "list", "watch"))
PODS_BINDING = ApiPermission("", "pods/binding", ("create",))
LEDGERS = ApiPermission(
    "coordination.k8s.io", "leases", ("get", "list", "watch", "create", "patch"), namespaced=True
)

WAKE = ApiPermission(
    "storage.k8s.io", "csistoragecapacities", ("get", "create", "patch"), namespaced=True
)
"""The wake-up object (``app.commit.wake``): one CSIStorageCapacity in the extender's namespace,
updated to make kube-scheduler retry the pods the extender refused."""

REQUIRED: tuple[ApiPermission, ...] = (NODES, PODS, PODS_BINDING, LEDGERS, WAKE)
