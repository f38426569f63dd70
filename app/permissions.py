"""Every Kubernetes API call the extender makes, as RBAC rules: the one source of truth.

The Helm chart's ClusterRole is checked against this list in tests, so a new API call must be
added here first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiPermission:
    """One RBAC rule: API group, resource (with subresource) and verbs."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]


NODES = ApiPermission("", "nodes", ("get", "list", "watch", "patch"))
PODS = ApiPermission("", "pods", ("get", "list", "watch"))
PODS_BINDING = ApiPermission("", "pods/binding", ("create",))

REQUIRED: tuple[ApiPermission, ...] = (NODES, PODS, PODS_BINDING)
