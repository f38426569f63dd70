"""Wire shapes of kube-apiserver answers, exactly as recorded in tests/fixtures/kube-apiserver/.

Every builder returns a fresh dict whose keys are in the order the real server writes them.
"""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

JSON = dict[str, Any]

KINDS: dict[str, str] = {
    "nodes": "Node", "pods": "Pod", "leases": "Lease", "csistoragecapacities": "CSIStorageCapacity"
}
"""Resource (URL segment) -> kind."""
API_VERSIONS: dict[str, str] = {
    "nodes": "v1", "pods": "v1", "leases": "coordination.k8s.io/v1",
    "csistoragecapacities": "storage.k8s.io/v1",
}
QUALIFIED: dict[str, str] = {
    "nodes": "nodes", "pods": "pods", "leases": "leases.coordination.k8s.io",
    "csistoragecapacities": "csistoragecapacities.storage.k8s.io",
}
"""Resource as the server names it in messages (group-qualified outside the core group)."""

# metav1.StatusReason by code, where it is not the HTTP reason phrase without spaces.
_REASONS: dict[int, str] = {410: "Expired", 422: "Invalid", 500: "InternalError", 504: "Timeout"}

# A BOOKMARK carries the Go zero value of the kind with only metadata.resourceVersion set.
# Node: recorded (watch-nodes-modified-deleted-bookmark.jsonl). Pod: not recorded; derived from
# the Go types (PodSpec.containers has no omitempty, so it is null; every PodStatus field is
# omitempty).
_BOOKMARK_BODIES: dict[str, JSON] = {
    "nodes": {
        "spec": {},
        "status": {
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": dict.fromkeys(
                (
                    "machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
                    "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
                    "operatingSystem", "architecture",
                ),
                "",
            ),
        },
    },
    "pods": {"spec": {"containers": None}, "status": {}},
    "leases": {"spec": {}},
}


def status(code: int, message: str, details: JSON | None = None, reason: str | None = None) -> JSON:
    """A failure ``Status`` (key order as the server writes it; ``details`` omitted if None)."""
    body: JSON = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code) or HTTPStatus(code).phrase.replace(" ", ""),
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def created() -> JSON:
    """binding-created.json: the 201 answer to a successful Binding."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def not_found(resource: str, name: str) -> JSON:
    """binding-missing-pod.json, for any resource: ``pods "nope" not found``."""
    qualified = QUALIFIED.get(resource, resource)
    return status(404, f'{qualified} "{name}" not found', {"name": name, "kind": resource})


def already_exists(resource: str, name: str) -> JSON:
    """A create of a name that is taken: 409 AlreadyExists."""
    qualified = QUALIFIED.get(resource, resource)
    details = {"name": name, "group": API_VERSIONS[resource].rpartition("/")[0], "kind": resource}
    return status(409, f'{qualified} "{name}" already exists', details, reason="AlreadyExists")


def conflict_modified(resource: str, name: str) -> JSON:
    """patch-node-cas-conflict.json: the resourceVersion precondition failed."""
    return status(
        409,
        f'Operation cannot be fulfilled on {QUALIFIED.get(resource, resource)} "{name}": the '
        "object has been modified; please apply your changes to the latest version and try again",
        {"name": name, "kind": resource},
    )


def already_assigned(pod: str, node: str) -> JSON:
    """binding-already-assigned.json."""
    return status(
        409,
        f'Operation cannot be fulfilled on pods/binding "{pod}": '
        f'pod {pod} is already assigned to node "{node}"',
        {"name": pod, "kind": "pods/binding"},
    )


def uid_precondition_failed(namespace: str, pod: str, want_uid: str, have_uid: str) -> JSON:
    """binding-wrong-uid.json: the Binding's metadata.uid is not the pod's."""
    return status(
        409,
        f'Operation cannot be fulfilled on pods "{pod}": StorageError: invalid object, Code: 4, '
        f"Key: /registry/pods/{namespace}/{pod}, ResourceVersion: 0, AdditionalErrorMsg: "
        f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: {have_uid}",
        {"name": pod, "kind": "pods"},
    )


def expired(requested_rv: str, oldest_rv: int) -> JSON:
    """watch-expired.jsonl's Status: 410 Expired, no details."""
    return status(410, f"too old resource version: {requested_rv} ({oldest_rv})")


def no_route() -> JSON:
    """The real server's answer for a path it does not serve."""
    return status(404, "the server could not find the requested resource", {})


def method_not_allowed() -> JSON:
    """The real server's answer for a verb the resource does not support."""
    return status(405, "the server does not allow this method on the requested resource", {})


def with_kind(resource: str, obj: JSON) -> JSON:
    """A copy of a stored object with ``kind``/``apiVersion`` first, as GET/PATCH/watch send it."""
    return {"kind": KINDS[resource], "apiVersion": API_VERSIONS[resource], **copy.deepcopy(obj)}


def bookmark(resource: str, rv: int) -> JSON:
    """The object of a BOOKMARK event (shape as recorded for Node)."""
    return {
        "kind": KINDS[resource],
        "apiVersion": API_VERSIONS[resource],
        "metadata": {"resourceVersion": str(rv)},
        **copy.deepcopy(_BOOKMARK_BODIES.get(resource, {})),
    }


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch. Returns a new value without mutating either argument; the result
    may share unpatched sub-objects with ``target``."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
