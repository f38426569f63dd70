"""Deterministic cluster state and kube-scheduler request bodies for the load tests.

Everything is a pure function of ``--seed``: the same command line gives byte-identical files.

    python -m loadtest.generate cluster --nodes 1000 --pods 3000 --seed 1 -o cluster.yaml
    python -m loadtest.generate payloads --cluster cluster.yaml --mode names \\
        --candidates 500 --count 500 --seed 2 -o payloads/

``cluster`` writes what ``kubectl get nodes,pods -A -o yaml`` prints: a ``kind: List`` whose
items are v1 Nodes and v1 Pods (with ``kind``/``apiVersion``, no managedFields, as kubectl shows
them by default). Nodes mix CPU pools and GPU nodes (T4, A10G, A100-80, H100; GFD labels on most,
the extender's own ``gpu-type`` label on some), spot nodes, pool priorities and pool-only pools;
Running pods with ``spec.nodeName`` fill the nodes partially.

``payloads`` writes the bodies kube-scheduler sends to filter/prioritize, each for a different
pending pod (unique name, uid and container-id unless ``--repeat-shapes`` asks for replicas),
shaped exactly like the recorded ones in tests/fixtures/kube-scheduler: ``{"Pod", "Nodes",
"NodeNames"}`` with the unused one ``null``. Candidates are a contiguous window of K node names
starting at an offset that rotates from pod to pod (kube-scheduler's ``nextStartNodeIndex``),
locally shuffled (its parallel filter appends feasible nodes out of order). In full mode the
window's v1 Nodes are embedded with managedFields (about 3 KB a node), as kube-scheduler sends them.

With ``-o DIR`` the output is:
  filter.jsonl   one body a line (also the prioritize body when every candidate passes),
                 with filter.idx.json: the byte offset and length of each line
  bind.jsonl     one ExtenderBindingArgs a line (``Node`` = the first candidate; the k6
                 scripts replace it with the best-scoring node)
  pending.json   a ``kind: List`` of the pending pods, to create in an API server (stand-in)
  meta.json      the parameters, counts and body sizes
With ``-o FILE.jsonl`` / ``-o FILE.json`` only the bodies are written (JSONL / a JSON array).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import yaml

from app.wire.quantity import quantity_to_int  # the extender's own, exact parser

try:  # one place defines each key; fall back to literals if the app is mid-rewrite
    from app.contract import (
        DEFAULT_GPU_RESOURCE,
        DEFAULT_PREFIX,
        GFD_MEMORY_LABEL,
        GFD_PRODUCT_LABEL,
    )
except Exception:  # pragma: no cover - only when app/ does not import
    DEFAULT_PREFIX = "placement-extender.io/"
    DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
    GFD_PRODUCT_LABEL = "nvidia.com/gpu.product"
    GFD_MEMORY_LABEL = "nvidia.com/gpu.memory"

__all__ = [
    "Payloads",
    "candidate_windows",
    "cluster_nodes",
    "cluster_pods",
    "load_cluster",
    "make_cluster",
    "make_payloads",
    "node_as_scheduler_sees_it",
    "write_cluster",
    "write_payloads",
]

GENERATOR_VERSION = 2
P = DEFAULT_PREFIX
GPU = DEFAULT_GPU_RESOURCE
KUBE_VERSION = "v1.36.2"
BASE_TIME = datetime(2026, 11, 27, 20, 0, 0, tzinfo=UTC)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

_enc = msgspec.json.Encoder()

# --- node shapes -------------------------------------------------------------------------------

# short type -> (name prefix, GFD product, GFD memory MiB, [(gpus, cpus, memory GiB, instance)])
GPU_MODELS: dict[str, tuple[str, str, int, list[tuple[int, int, int, str]]]] = {
    "T4": ("t4", "Tesla-T4", 15360, [(1, 16, 64, "g4dn.4xlarge"), (4, 48, 192, "g4dn.12xlarge")]),
    "A10G": (
        "a10g",
        "NVIDIA-A10G",
        23028,
        [(1, 16, 64, "g5.4xlarge"), (4, 48, 192, "g5.12xlarge"), (8, 192, 768, "g5.48xlarge")],
    ),
    "A100-80": ("a100", "NVIDIA-A100-SXM4-80GB", 81920, [(8, 96, 1152, "p4de.24xlarge")]),
    "H100": ("h100", "NVIDIA-H100-80GB-HBM3", 81559, [(8, 192, 2048, "p5.48xlarge")]),
}
GPU_MODEL_WEIGHTS = {"T4": 0.35, "A10G": 0.35, "A100-80": 0.15, "H100": 0.15}
GPU_NODE_FRACTION = 0.3
CPU_SHAPES = [
    (4, 16, "m6i.xlarge"),
    (8, 32, "m6i.2xlarge"),
    (16, 64, "m6i.4xlarge"),
    (32, 128, "m6i.8xlarge"),
    (64, 256, "m6i.16xlarge"),
]
# (pool, priority, pool-only, weight)
CPU_POOLS = [("default", 10, False, 0.5), ("batch", 5, False, 0.3), ("web", 20, True, 0.2)]
GPU_POOLS = [("gpu", 10, False, 0.7), ("inference", 30, True, 0.3)]
SPOT_FRACTION = 0.2
SPOT_LABELS = [  # mirrors app.contract.SPOT_LABELS, weighted towards Karpenter
    ("karpenter.sh/capacity-type", "spot", 0.55),
    ("cloud.google.com/gke-spot", "true", 0.1),
    ("cloud.google.com/gke-preemptible", "true", 0.1),
    ("eks.amazonaws.com/capacityType", "SPOT", 0.1),
    ("kubernetes.azure.com/scalesetpriority", "spot", 0.05),
    (P + "preemptible", "true", 0.1),
]
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
MAX_PODS = 110

# --- pod shapes --------------------------------------------------------------------------------

CPU_REQ = ["100m", "250m", "500m", "1", "2", "4", "8"]
MEM_REQ = ["128Mi", "256Mi", "512Mi", "1Gi", "2Gi", "4Gi", "8Gi", "16Gi"]
GPU_CPU_REQ = ["2", "4", "8", "16"]
GPU_MEM_REQ = ["8Gi", "16Gi", "32Gi", "64Gi"]
GPU_COUNTS = [1, 1, 1, 1, 1, 1, 2, 2, 4, 8]
GPU_TYPE_CHOICES = [
    ("A10G,T4", 0.22),
    ("T4", 0.1),
    ("A10G", 0.1),
    ("H100,A100-80", 0.14),
    ("A100-80,H100", 0.06),
    ("H100", 0.08),
    ("A100-80", 0.05),
    ("any", 0.15),
    ("L4,A10G,T4", 0.05),
    ("T4,A10G,A100-80,H100", 0.05),
]
GPU_MEMORY_CHOICES = ["15000", "20000", "40000", "70000"]
CPU_IMAGES = ["busybox:1.36", "python:3.12-slim", "nginx:1.27", "ghcr.io/acme/worker:2.14.1"]
GPU_IMAGES = [
    "pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime",
    "nvcr.io/nvidia/tritonserver:24.08-py3",
    "ghcr.io/acme/llm-serve:0.9.3",
]
SIDECAR_IMAGE = "envoyproxy/envoy:v1.31.0"
APPS = ["api", "worker", "ingest", "render", "search", "billing", "feeds", "notify"]
GPU_APPS = ["infer", "train", "embed", "asr", "diffusion"]
NAMESPACES = ["default", "prod", "batch", "ml"]
CONTAINER_ID_KINDS = ["endpoint", "function", "job", "sandbox"]
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s rand.String's alphabet
DEFAULT_TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]


# --- helpers -----------------------------------------------------------------------------------


def _ts(seconds: float) -> str:
    return (BASE_TIME + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _rand_name(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_NAME_ALPHABET) for _ in range(n))


def _weighted(rng: random.Random, choices: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _last_applied(obj: dict[str, Any]) -> str:
    # kubectl stores Go's json.Marshal of the applied manifest: map keys sorted, compact, "\n".
    return json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n"


def _mem_quantity(rng: random.Random, gib: int, *, reserve_gib: float = 0.0) -> str:
    """Half the nodes say "128Gi", the rest report kubelet-style Ki a little under nominal."""
    if rng.random() < 0.5:
        return f"{gib}Gi" if not reserve_gib else f"{int((gib - reserve_gib) * 1024)}Mi"
    ki = gib * 1024 * 1024 - rng.randrange(200_000, 900_000)
    return f"{int(ki - reserve_gib * 1024 * 1024)}Ki"


# --- nodes -------------------------------------------------------------------------------------


@dataclass
class _NodeUse:
    name: str
    cpu: int  # allocatable milli
    mem: int  # allocatable bytes
    gpus: int
    gpu_type: str | None
    pool: str
    fill: float = 0.85  # the share of allocatable that Running pods may take
    used_cpu: int = 0
    used_mem: int = 0
    used_gpus: int = 0
    pods: int = 0
    container_ids: list[str] = field(default_factory=list)


def _make_node(rng: random.Random, index: int, rv: int) -> tuple[dict[str, Any], _NodeUse]:
    created = -86400 * 3 + index * 7
    zone = rng.choice(ZONES)
    labels: dict[str, str] = {
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": zone,
    }
    gpu_type: str | None = None
    gpus = 0
    if rng.random() < GPU_NODE_FRACTION:
        gpu_type = _weighted(rng, list(GPU_MODEL_WEIGHTS.items()))
        prefix, product, gpu_mem, shapes = GPU_MODELS[gpu_type]
        gpus, cpus, mem_gib, instance = rng.choice(shapes)
        pool, prio, pool_only, _ = _weighted(rng, [(p, p[3]) for p in GPU_POOLS])
        if rng.random() < 0.8:  # NVIDIA GPU Feature Discovery labels
            labels[GFD_PRODUCT_LABEL] = product
            labels[GFD_MEMORY_LABEL] = str(gpu_mem)
            labels["nvidia.com/gpu.count"] = str(gpus)
            labels["nvidia.com/gpu.present"] = "true"
        else:  # the extender's own label only
            labels[P + "gpu-type"] = gpu_type
    else:
        prefix = "cpu"
        cpus, mem_gib, instance = rng.choice(CPU_SHAPES)
        pool, prio, pool_only, _ = _weighted(rng, [(p, p[3]) for p in CPU_POOLS])
    name = f"{prefix}-{index:05d}"
    labels["kubernetes.io/hostname"] = name
    labels["node.kubernetes.io/instance-type"] = instance
    labels[P + "pool"] = pool
    labels[P + "pool-priority"] = str(prio)
    if pool_only:
        labels[P + "pool-only"] = "true"
    if rng.random() < SPOT_FRACTION:
        key, value = _weighted(rng, [((k, v), w) for k, v, w in SPOT_LABELS])
        labels[key] = value
    labels = dict(sorted(labels.items()))

    reserve_m = 80 + 10 * cpus if cpus < 64 else 700
    cap_mem = _mem_quantity(rng, mem_gib)
    alloc_mem = _mem_quantity(rng, mem_gib, reserve_gib=1.5 if mem_gib <= 64 else 4)
    capacity = {
        "cpu": str(cpus),
        "ephemeral-storage": "101430960Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": cap_mem,
        "pods": str(MAX_PODS),
    }
    allocatable = dict(capacity)
    allocatable["cpu"] = f"{cpus * 1000 - reserve_m}m" if rng.random() < 0.7 else str(cpus)
    allocatable["ephemeral-storage"] = "93478772582"
    allocatable["memory"] = alloc_mem
    if gpus:
        capacity[GPU] = allocatable[GPU] = str(gpus)
        capacity = dict(sorted(capacity.items()))
        allocatable = dict(sorted(allocatable.items()))
    applied = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"annotations": {}, "labels": labels, "name": name},
    }
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": _uid(rng),
            "resourceVersion": str(rv),
            "creationTimestamp": _ts(created),
            "labels": labels,
            "annotations": {
                LAST_APPLIED: _last_applied(applied),
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"providerID": f"aws:///{zone}/i-0{_hex(rng, 16)}"},
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastHeartbeatTime": _ts(0),
                    "lastTransitionTime": _ts(created + 40),
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [{"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": _hex(rng, 32),
                "systemUUID": _uid(rng).upper(),
                "bootID": _uid(rng),
                "kernelVersion": "6.1.112-124.190.amzn2023.x86_64",
                "osImage": "Amazon Linux 2023.6.20241031",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": KUBE_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
    use = _NodeUse(
        name=name,
        cpu=quantity_to_int("cpu", allocatable["cpu"]),
        mem=quantity_to_int("memory", allocatable["memory"]),
        gpus=gpus,
        gpu_type=gpu_type,
        pool=pool,
    )
    use.fill = rng.uniform(0.0, 0.75) if gpus else rng.uniform(0.1, 0.85)
    return node, use


def _fields(keys: Sequence[str]) -> dict[str, Any]:
    return {".": {}, **{f"f:{k}": {} for k in keys}}


def node_as_scheduler_sees_it(node: dict[str, Any]) -> dict[str, Any]:
    """The v1.Node as kube-scheduler embeds it in a full-nodes body: no kind/apiVersion, with
    managedFields (kubelet's status owner plus the client that labelled the node)."""
    meta = node["metadata"]
    status = node["status"]
    t = meta["creationTimestamp"]
    managed = [
        {
            "manager": "kubectl-client-side-apply",
            "operation": "Update",
            "apiVersion": "v1",
            "time": t,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:annotations": _fields(sorted(meta["annotations"])),
                    "f:labels": _fields(sorted(meta["labels"])),
                },
                "f:spec": {"f:providerID": {}},
            },
        },
        {
            "manager": "kubelet",
            "operation": "Update",
            "apiVersion": "v1",
            "time": status["conditions"][0]["lastHeartbeatTime"],
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:status": {
                    "f:addresses": {".": {}, 'k:{"type":"Hostname"}': _fields(["address", "type"])},
                    "f:allocatable": _fields(sorted(status["allocatable"])),
                    "f:capacity": _fields(sorted(status["capacity"])),
                    "f:conditions": {
                        ".": {},
                        'k:{"type":"Ready"}': _fields(
                            [
                                "lastHeartbeatTime",
                                "lastTransitionTime",
                                "message",
                                "reason",
                                "status",
                                "type",
                            ]
                        ),
                    },
                    "f:daemonEndpoints": {"f:kubeletEndpoint": {"f:Port": {}}},
                    "f:nodeInfo": {f"f:{k}": {} for k in sorted(status["nodeInfo"])},
                }
            },
            "subresource": "status",
        },
    ]
    new_meta = _go_order(meta, _META_ORDER)
    new_meta["managedFields"] = managed
    return {
        "metadata": new_meta,
        "spec": node["spec"],
        "status": {
            **_go_order(status, _NODE_STATUS_ORDER),
            "conditions": [_go_order(c, _CONDITION_ORDER) for c in status["conditions"]],
            "addresses": [_go_order(a, ("type", "address")) for a in status["addresses"]],
            "nodeInfo": _go_order(status["nodeInfo"], _NODE_INFO_ORDER),
        },
    }


# Go's encoding/json writes struct fields in declaration order; a YAML round trip sorts them.
_META_ORDER = ("name", "uid", "resourceVersion", "creationTimestamp", "labels", "annotations")
_NODE_STATUS_ORDER = (
    "capacity",
    "allocatable",
    "conditions",
    "addresses",
    "daemonEndpoints",
    "nodeInfo",
)
_CONDITION_ORDER = (
    "type",
    "status",
    "lastHeartbeatTime",
    "lastTransitionTime",
    "reason",
    "message",
)
_NODE_INFO_ORDER = (
    "machineID",
    "systemUUID",
    "bootID",
    "kernelVersion",
    "osImage",
    "containerRuntimeVersion",
    "kubeletVersion",
    "kubeProxyVersion",
    "operatingSystem",
    "architecture",
)


def _go_order(d: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
    out = {k: d[k] for k in order if k in d}
    out.update((k, v) for k, v in d.items() if k not in out)
    return out


# --- pods --------------------------------------------------------------------------------------


def _container(
    name: str,
    image: str,
    requests: dict[str, str] | None,
    limits: dict[str, str] | None,
    *,
    sidecar: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    res: dict[str, Any] = {}
    if limits:
        res["limits"] = limits
    if requests:
        res["requests"] = requests
    c: dict[str, Any] = {"name": name, "image": image, "resources": res}
    applied: dict[str, Any] = {"image": image, "name": name}
    if res:
        applied["resources"] = res
    if sidecar:
        c["restartPolicy"] = "Always"
        applied["restartPolicy"] = "Always"
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    untagged = image.endswith(":latest") or ":" not in image
    c["imagePullPolicy"] = "Always" if untagged else "IfNotPresent"
    return c, applied


def _qos(containers: Sequence[dict[str, Any]]) -> str:
    reqs = [c["resources"].get("requests", {}) for c in containers]
    lims = [c["resources"].get("limits", {}) for c in containers]
    if not any(reqs) and not any(lims):
        return "BestEffort"
    for r, lim in zip(reqs, lims, strict=True):
        for res in ("cpu", "memory"):
            if res not in lim or r.get(res, lim[res]) != lim[res]:
                return "Burstable"
    return "Guaranteed"


@dataclass(frozen=True)
class _PodShape:
    """What makes two pods replicas of one another: everything but name and uid."""

    app: str
    namespace: str
    kind: str  # "cpu" | "gpu" | "best-effort"
    cpu: str | None
    mem: str | None
    gpus: int
    limits: bool
    init: bool
    sidecar: bool
    image: str
    annotations: tuple[tuple[str, str], ...]


def _pod_shape(
    rng: random.Random,
    *,
    kind: str,
    container_id: str,
    gpu_types: str | None = None,
    gpus: int = 0,
    pool: str | None = None,
    preemptible: bool = False,
    gpu_memory: str | None = None,
    small: bool = False,
) -> _PodShape:
    if kind == "gpu":
        app = rng.choice(GPU_APPS)
        cpu = rng.choice(GPU_CPU_REQ[:2] if small else GPU_CPU_REQ)
        mem = rng.choice(GPU_MEM_REQ[:2] if small else GPU_MEM_REQ)
        image = rng.choice(GPU_IMAGES)
        namespace = "ml"
    elif kind == "cpu":
        app = rng.choice(APPS)
        cpu = rng.choice(CPU_REQ[:4] if small else CPU_REQ)
        mem = rng.choice(MEM_REQ[:4] if small else MEM_REQ)
        image = rng.choice(CPU_IMAGES)
        namespace = rng.choice(NAMESPACES[:3])
    else:
        app, cpu, mem, image = rng.choice(APPS), None, None, rng.choice(CPU_IMAGES)
        namespace = rng.choice(NAMESPACES)
    ann = {P + "container-id": container_id}
    if gpu_types:
        ann[P + "gpu-types"] = gpu_types
    if gpu_memory:
        ann[P + "gpu-memory"] = gpu_memory
    if pool:
        ann[P + "pool"] = pool
    if preemptible:
        ann[P + "preemptible"] = "true"
    return _PodShape(
        app=app,
        namespace=namespace,
        kind=kind,
        cpu=cpu,
        mem=mem,
        gpus=gpus,
        limits=kind == "gpu" or rng.random() < 0.5,
        init=kind == "cpu" and rng.random() < 0.3,
        sidecar=kind != "best-effort" and rng.random() < 0.25,
        image=image,
        annotations=tuple(sorted(ann.items())),
    )


def _render_pod(
    shape: _PodShape,
    *,
    name: str,
    uid: str,
    rv: int,
    created: float,
    node_name: str | None = None,
) -> dict[str, Any]:
    """A v1.Pod in the exact shape of the recordings (fields in Go struct order)."""
    requests: dict[str, str] | None = None
    limits: dict[str, str] | None = None
    if shape.kind != "best-effort":
        assert shape.cpu is not None and shape.mem is not None
        requests = {"cpu": shape.cpu, "memory": shape.mem}
        if shape.gpus:
            requests[GPU] = str(shape.gpus)
        if shape.limits:
            limits = {"memory": shape.mem}
            if shape.kind == "cpu":  # Burstable, or Guaranteed when the app is "api"
                twice = str(quantity_to_int("cpu", shape.cpu) * 2 // 1000 or 1)
                limits["cpu"] = shape.cpu if shape.app == "api" else twice
            if shape.gpus:
                limits[GPU] = str(shape.gpus)
            limits = dict(sorted(limits.items()))
    main, main_applied = _container("main", shape.image, requests, limits)
    inits: list[dict[str, Any]] = []
    inits_applied: list[dict[str, Any]] = []
    if shape.init:
        c, a = _container("fetch", "busybox:1.36", {"cpu": "2", "memory": "1Gi"}, None)
        inits.append(c)
        inits_applied.append(a)
    if shape.sidecar:
        c, a = _container(
            "proxy", SIDECAR_IMAGE, {"cpu": "250m", "memory": "128Mi"}, None, sidecar=True
        )
        inits.append(c)
        inits_applied.append(a)
    annotations = dict(shape.annotations)
    labels = {"app": shape.app}
    applied_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "containers": [main_applied],
    }
    if inits_applied:
        applied_spec["initContainers"] = inits_applied
    applied = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": annotations,
            "labels": labels,
            "name": name,
            "namespace": shape.namespace,
        },
        "spec": applied_spec,
    }
    tolerations = list(DEFAULT_TOLERATIONS)
    if shape.gpus:
        tolerations = [
            {"key": GPU, "operator": "Exists", "effect": "NoSchedule"},
            *tolerations,
        ]
    spec: dict[str, Any] = {}
    if inits:
        spec["initContainers"] = inits
    spec["containers"] = [main]
    spec["restartPolicy"] = "Always"
    spec["terminationGracePeriodSeconds"] = 30
    spec["dnsPolicy"] = "ClusterFirst"
    spec["automountServiceAccountToken"] = False
    if node_name:
        spec["nodeName"] = node_name
    spec["securityContext"] = {}
    spec["schedulerName"] = "default-scheduler"
    spec["tolerations"] = tolerations
    spec["priority"] = 0
    spec["enableServiceLinks"] = True
    spec["preemptionPolicy"] = "PreemptLowerPriority"
    qos = _qos([main, *inits])
    status: dict[str, Any] = {"phase": "Pending", "qosClass": qos}
    if node_name:
        t = _ts(created + 5)
        status = {
            "phase": "Running",
            "conditions": [
                {"type": c, "status": "True", "lastProbeTime": None, "lastTransitionTime": t}
                for c in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
            ]
            + [
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": _ts(created),
                }
            ],
            "startTime": _ts(created + 1),
            "qosClass": qos,
        }
    return {
        "metadata": {
            "name": name,
            "namespace": shape.namespace,
            "uid": uid,
            "resourceVersion": str(rv),
            "generation": 1,
            "creationTimestamp": _ts(created),
            "labels": labels,
            "annotations": {LAST_APPLIED: _last_applied(applied), **annotations},
        },
        "spec": spec,
        "status": status,
    }


def _pod_requests(pod: dict[str, Any]) -> tuple[int, int, int]:
    """Effective (cpu milli, memory bytes, gpus): sum of containers + sidecars, or the
    largest plain init container if that is bigger (the scheduler's rule, simplified)."""
    cpu = mem = gpus = 0
    init_cpu = init_mem = 0
    for c in pod["spec"].get("initContainers", []):
        r = c["resources"].get("requests", {})
        if c.get("restartPolicy") == "Always":
            cpu += quantity_to_int("cpu", r.get("cpu", "0"))
            mem += quantity_to_int("memory", r.get("memory", "0"))
        else:
            init_cpu = max(init_cpu, quantity_to_int("cpu", r.get("cpu", "0")))
            init_mem = max(init_mem, quantity_to_int("memory", r.get("memory", "0")))
    for c in pod["spec"]["containers"]:
        r = c["resources"].get("requests", {})
        cpu += quantity_to_int("cpu", r.get("cpu", "0"))
        mem += quantity_to_int("memory", r.get("memory", "0"))
        gpus += quantity_to_int(GPU, r.get(GPU, "0"))
    return max(cpu, init_cpu), max(mem, init_mem), gpus


class _Names:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.seen: set[str] = set()
        self.rs: dict[str, str] = {}

    def pod(self, app: str) -> str:
        rs = self.rs.setdefault(app, _rand_name(self.rng, 10))
        while True:
            name = f"{app}-{rs}-{_rand_name(self.rng, 5)}"
            if name not in self.seen:
                self.seen.add(name)
                return name

    def container_id(self) -> str:
        while True:
            cid = f"{self.rng.choice(CONTAINER_ID_KINDS)}-{_hex(self.rng, 6)}-{_hex(self.rng, 4)}"
            if cid not in self.seen:
                self.seen.add(cid)
                return cid


# --- cluster -----------------------------------------------------------------------------------


def make_cluster(nodes: int, pods: int, seed: int) -> dict[str, Any]:
    """A ``kind: List`` of ``nodes`` v1 Nodes then ``pods`` Running v1 Pods placed on them."""
    if nodes < 1 or pods < 0:
        raise ValueError("need at least one node and a non-negative pod count")
    if pods > nodes * MAX_PODS * 0.9:
        raise ValueError(f"{pods} pods do not fit on {nodes} nodes ({MAX_PODS} pods a node)")
    rng = random.Random(f"cluster:{seed}")
    rv = 1000
    node_objs: list[dict[str, Any]] = []
    uses: list[_NodeUse] = []
    for i in range(nodes):
        rv += 1
        n, u = _make_node(rng, i, rv)
        node_objs.append(n)
        uses.append(u)
    # kube-scheduler's node order is zone-interleaved, not grouped by type: mix the list.
    order = list(range(nodes))
    rng.shuffle(order)
    node_objs = [node_objs[i] for i in order]
    uses = [uses[i] for i in order]
    gpu_nodes = [u for u in uses if u.gpus]
    cpu_nodes = [u for u in uses if not u.gpus] or uses
    names = _Names(rng)
    # a shared pool of container ids: running replicas make container-ID affinity meaningful
    cids = [names.container_id() for _ in range(max(8, pods // 6))]
    pod_objs: list[dict[str, Any]] = []
    p_gpu = len(gpu_nodes) / nodes
    for i in range(pods):
        rv += 1
        created = -86400 + i * 3
        placed = None
        if gpu_nodes and rng.random() < p_gpu:
            for _ in range(8):
                u = rng.choice(gpu_nodes)
                free = int(u.gpus * u.fill) - u.used_gpus
                if free <= 0 or u.pods >= MAX_PODS * 0.9:
                    continue
                g = min(free, rng.choice(GPU_COUNTS))
                types = u.gpu_type if rng.random() < 0.7 else "any"
                shape = _pod_shape(
                    rng,
                    kind="gpu",
                    container_id=rng.choice(cids),
                    gpu_types=types,
                    gpus=g,
                    pool=u.pool if rng.random() < 0.3 else None,
                    small=True,
                )
                placed = (u, shape)
                break
        if placed is None:
            for attempt in range(12):
                u = rng.choice(cpu_nodes if attempt < 10 else uses)
                shape = _pod_shape(
                    rng,
                    kind="cpu" if rng.random() < 0.9 else "best-effort",
                    container_id=rng.choice(cids),
                    pool=u.pool if rng.random() < 0.3 else None,
                    small=attempt >= 4,
                )
                pod = _render_pod(shape, name="x", uid="x", rv=0, created=0)
                cpu, mem, _ = _pod_requests(pod)
                if (
                    u.pods < MAX_PODS * 0.9
                    and u.used_cpu + cpu <= u.cpu * u.fill
                    and u.used_mem + mem <= u.mem * u.fill
                ):
                    placed = (u, shape)
                    break
        if placed is None:  # a best-effort pod wherever a pod slot is left
            free_slots = [u for u in uses if u.pods < MAX_PODS * 0.9]
            u = rng.choice(free_slots)
            shape = _pod_shape(rng, kind="best-effort", container_id=rng.choice(cids))
            placed = (u, shape)
        u, shape = placed
        pod = _render_pod(
            shape,
            name=names.pod(shape.app),
            uid=_uid(rng),
            rv=rv,
            created=created,
            node_name=u.name,
        )
        cpu, mem, gpus = _pod_requests(pod)
        u.used_cpu += cpu
        u.used_mem += mem
        u.used_gpus += gpus
        u.pods += 1
        pod_objs.append({"apiVersion": "v1", "kind": "Pod", **pod})
    return {
        "apiVersion": "v1",
        "items": node_objs + pod_objs,
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }


def write_cluster(cluster: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_bytes(msgspec.json.format(_enc.encode(cluster), indent=2) + b"\n")
        return
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with path.open("w") as f:
        yaml.dump(cluster, f, Dumper=dumper, sort_keys=True, width=1 << 16)


def load_cluster(path: str | Path) -> dict[str, Any]:
    data = Path(path).read_bytes()
    if data.lstrip()[:1] in (b"{", b"["):
        obj = msgspec.json.decode(data)
    else:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        obj = yaml.load(data, Loader=loader)
    if not isinstance(obj, dict) or "items" not in obj:
        raise ValueError(f"{path}: not a kind: List")
    return obj


def cluster_nodes(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in cluster["items"] if i.get("kind") == "Node"]


def cluster_pods(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in cluster["items"] if i.get("kind") == "Pod"]


# --- payloads ----------------------------------------------------------------------------------


def candidate_windows(
    names: Sequence[str], k: int, count: int, rng: random.Random
) -> Iterator[list[str]]:
    """kube-scheduler's candidate lists: K contiguous names from a rotating start index,
    locally out of order (its parallel filter appends feasible nodes as workers finish)."""
    n = len(names)
    if not 1 <= k <= n:
        raise ValueError(f"--candidates {k} must be between 1 and the {n} nodes in the cluster")
    offset = rng.randrange(n)
    for _ in range(count):
        win = [names[(offset + i) % n] for i in range(k)]
        for i in range(k - 1):
            if rng.random() < 0.25:
                j = min(k - 1, i + rng.randint(1, 8))
                win[i], win[j] = win[j], win[i]
        yield win
        offset = (offset + k + rng.randint(0, max(1, k // 8))) % n


@dataclass
class Payloads:
    mode: str
    candidates: int
    seed: int
    bodies: list[bytes]  # filter (and prioritize) bodies, one per pod
    pods: list[dict[str, Any]]  # the pending v1 Pods, in body order
    binds: list[bytes]  # ExtenderBindingArgs, Node = first candidate
    windows: list[list[str]]
    pod_kind: str = "mixed"


POD_KINDS = ("mixed", "cpu", "gpu")
GPU_SHARE = 0.45  # of the mixed payload pods: GPU pods below it, CPU pods up to CPU_UPTO,
CPU_UPTO = 0.93  # best-effort pods above


def _payload_shape(
    rng: random.Random, names: _Names, pools: Sequence[str], pod_kind: str = "mixed"
) -> _PodShape:
    roll = rng.random()
    # one draw either way, so "mixed" keeps its sequence; "cpu"/"gpu" squeeze it into that range
    if pod_kind == "gpu":
        roll *= GPU_SHARE
    elif pod_kind == "cpu":
        roll = GPU_SHARE + roll * (CPU_UPTO - GPU_SHARE)
    cid = names.container_id()
    if roll < GPU_SHARE:
        return _pod_shape(
            rng,
            kind="gpu",
            container_id=cid,
            gpu_types=_weighted(rng, GPU_TYPE_CHOICES),
            gpus=rng.choice(GPU_COUNTS),
            gpu_memory=rng.choice(GPU_MEMORY_CHOICES) if rng.random() < 0.3 else None,
            pool=rng.choice([p for p, *_ in GPU_POOLS]) if rng.random() < 0.25 else None,
            preemptible=rng.random() < 0.25,
        )
    kind = "cpu" if roll < CPU_UPTO else "best-effort"
    return _pod_shape(
        rng,
        kind=kind,
        container_id=cid,
        pool=rng.choice(pools) if rng.random() < 0.25 else None,
        preemptible=rng.random() < 0.25,
    )


def make_payloads(
    cluster: dict[str, Any],
    *,
    mode: str,
    candidates: int,
    count: int,
    seed: int,
    repeat_shapes: float = 0.0,
    pod_kind: str = "mixed",
) -> Payloads:
    """``count`` filter/prioritize bodies, each for a different pending pod; ``pod_kind``
    "cpu" or "gpu" makes every pod a CPU pod or a GPU pod instead of the usual mix."""
    if mode not in ("names", "full"):
        raise ValueError("mode must be 'names' or 'full'")
    if pod_kind not in POD_KINDS:
        raise ValueError(f"pod_kind must be one of {', '.join(POD_KINDS)}")
    nodes = cluster_nodes(cluster)
    names_list = [n["metadata"]["name"] for n in nodes]
    rng = random.Random(f"payloads:{seed}:{mode}:{candidates}")
    names = _Names(rng)
    names.seen.update(p["metadata"]["name"] for p in cluster_pods(cluster))
    pools = sorted({n["metadata"]["labels"].get(P + "pool", "default") for n in nodes})
    node_json: dict[str, bytes] = {}
    if mode == "full":
        node_json = {
            n["metadata"]["name"]: _enc.encode(node_as_scheduler_sees_it(n)) for n in nodes
        }
    shapes: list[_PodShape] = []
    bodies: list[bytes] = []
    pods: list[dict[str, Any]] = []
    binds: list[bytes] = []
    windows: list[list[str]] = []
    rv = 900_000 + seed % 1000 * 1000
    for i, win in enumerate(candidate_windows(names_list, candidates, count, rng)):
        if shapes and rng.random() < repeat_shapes:
            shape = rng.choice(shapes)  # a replica: same container-id and requests
        else:
            shape = _payload_shape(rng, names, pools, pod_kind)
            shapes.append(shape)
        pod = _render_pod(
            shape, name=names.pod(shape.app), uid=_uid(rng), rv=rv + i, created=600 + i * 0.05
        )
        pod_json = _enc.encode(pod)
        if mode == "names":
            body = b'{"Pod":' + pod_json + b',"Nodes":null,"NodeNames":' + _enc.encode(win) + b"}"
        else:
            items = b",".join(node_json[n] for n in win)
            body = (
                b'{"Pod":'
                + pod_json
                + b',"Nodes":{"metadata":{},"items":['
                + items
                + b']},"NodeNames":null}'
            )
        meta = pod["metadata"]
        binds.append(
            _enc.encode(
                {
                    "PodName": meta["name"],
                    "PodNamespace": meta["namespace"],
                    "PodUID": meta["uid"],
                    "Node": win[0],
                }
            )
        )
        bodies.append(body)
        pods.append(pod)
        windows.append(win)
    return Payloads(mode, candidates, seed, bodies, pods, binds, windows, pod_kind)


def _write_jsonl(path: Path, lines: Sequence[bytes]) -> None:
    """One body a line, plus ``NAME.idx.json``: ``[[byte offset, length], ...]`` so that k6 can
    read body i straight from one shared copy of the file (k6/experimental/fs), with no JSON
    or string work per request."""
    path.write_bytes(b"".join(b + b"\n" for b in lines))
    index, offset = [], 0
    for b in lines:
        index.append([offset, len(b)])
        offset += len(b) + 1
    path.with_name(path.name.removesuffix(".jsonl") + ".idx.json").write_bytes(_enc.encode(index))


def write_payloads(p: Payloads, out: str | Path, *, cluster_path: str | None = None) -> Path:
    """Write bodies (and, for a directory, the bind bodies, pending pods and meta.json)."""
    out = Path(out)
    if out.suffix in (".jsonl", ".json"):
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".jsonl":
            _write_jsonl(out, p.bodies)
        else:
            out.write_bytes(b"[" + b",\n".join(p.bodies) + b"]\n")
        return out
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "filter.jsonl", p.bodies)
    _write_jsonl(out / "bind.jsonl", p.binds)
    pending = {
        "apiVersion": "v1",
        "items": [{"apiVersion": "v1", "kind": "Pod", **pod} for pod in p.pods],
        "kind": "List",
        "metadata": {"resourceVersion": ""},
    }
    (out / "pending.json").write_bytes(_enc.encode(pending) + b"\n")
    sizes = [len(b) for b in p.bodies]
    meta = {
        "generator_version": GENERATOR_VERSION,
        "mode": p.mode,
        "candidates": p.candidates,
        "count": len(p.bodies),
        "seed": p.seed,
        "pod_kind": p.pod_kind,
        "cluster": cluster_path,
        "body_bytes": {
            "min": min(sizes),
            "median": int(statistics.median(sizes)),
            "max": max(sizes),
            "total": sum(sizes),
        },
        "gpu_pods": sum(1 for pod in p.pods if _pod_requests(pod)[2]),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


# --- CLI ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m loadtest.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cluster", help="a kind: List of v1 Nodes and Running v1 Pods")
    c.add_argument("--nodes", type=int, required=True)
    c.add_argument("--pods", type=int, required=True)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("-o", "--output", required=True, help="FILE.yaml or FILE.json")
    p = sub.add_parser("payloads", help="filter/prioritize bodies, pending pods, bind bodies")
    p.add_argument("--cluster", required=True)
    p.add_argument("--mode", choices=["names", "full"], default="names")
    p.add_argument("--candidates", type=int, required=True, help="node names per body (K)")
    p.add_argument("--count", type=int, required=True, help="bodies, one pod each")
    p.add_argument("--seed", type=int, default=2)
    p.add_argument(
        "--repeat-shapes",
        type=float,
        default=0.0,
        help="fraction of pods that are replicas of an earlier pod's shape (default 0: all unique)",
    )
    p.add_argument(
        "--pod-kind",
        choices=POD_KINDS,
        default="mixed",
        help="mixed (default: GPU, CPU and best-effort pods), or only cpu or only gpu pods",
    )
    p.add_argument("-o", "--output", required=True, help="DIR, FILE.jsonl or FILE.json")
    args = ap.parse_args(argv)
    if args.cmd == "cluster":
        write_cluster(make_cluster(args.nodes, args.pods, args.seed), args.output)
        print(f"wrote {args.output}: {args.nodes} nodes, {args.pods} pods", file=sys.stderr)
        return 0
    cluster = load_cluster(args.cluster)
    pl = make_payloads(
        cluster,
        mode=args.mode,
        candidates=args.candidates,
        count=args.count,
        seed=args.seed,
        repeat_shapes=args.repeat_shapes,
        pod_kind=args.pod_kind,
    )
    out = write_payloads(pl, args.output, cluster_path=str(args.cluster))
    sizes = sorted(len(b) for b in pl.bodies)
    print(
        f"wrote {out}: {len(pl.bodies)} {args.mode}-mode bodies, K={args.candidates}, "
        f"median {sizes[len(sizes) // 2]} bytes",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
