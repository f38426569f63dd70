"""The API server behind burst and bind-contention: seeding it, and reading it back afterwards
(over-commit, pods bound), plus the extender's bind counters."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from app.wire.quantity import quantity_to_int
from loadtest import generate
from loadtest.loopback import RunError, get_json, http_get_text, http_post
from loadtest.scenarios import State

RESOURCES = ("cpu", "memory", generate.GPU, "pods")
BIND_PROBE = {
    "PodName": "loadtest-bind-probe-does-not-exist",
    "PodNamespace": "default",
    "PodUID": "00000000-0000-4000-8000-000000000000",
}


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig for the API server at ``server`` (a token the stand-in accepts)."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "standin", "cluster": {"server": server}}],
                "users": [{"name": "loadtest", "user": {"token": "loadtest"}}],
                "contexts": [
                    {"name": "standin", "context": {"cluster": "standin", "user": "loadtest"}}
                ],
                "current-context": "standin",
            },
            indent=2,
        )
    )
    return path


def seed_apiserver(base: str, state: State) -> None:
    """Create the cluster's nodes, Running pods and the pending pods through the real API paths
    (works against a stand-in that implements them, or a real kube-apiserver)."""
    cluster = generate.load_cluster(state.cluster)
    pending = json.loads((state.payloads / "pending.json").read_text())["items"]
    pods = generate.cluster_pods(cluster) + pending
    for ns in sorted({p["metadata"]["namespace"] for p in pods}):
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        status, reply = http_post(f"{base}/api/v1/namespaces", json.dumps(body).encode())
        if status not in (200, 201, 409):
            raise RunError(f"creating namespace {ns}: {status} {reply[:300]!r}")
    for node in generate.cluster_nodes(cluster):
        status, reply = http_post(f"{base}/api/v1/nodes", json.dumps(node).encode())
        if status not in (200, 201):
            raise RunError(f"creating node: {status} {reply[:300]!r}")
    for pod in pods:
        meta = {k: v for k, v in pod["metadata"].items() if k not in ("uid", "resourceVersion")}
        obj = {"apiVersion": "v1", "kind": "Pod", **pod, "metadata": meta}
        ns = meta["namespace"]
        status, reply = http_post(f"{base}/api/v1/namespaces/{ns}/pods", json.dumps(obj).encode())
        if status not in (200, 201):
            raise RunError(f"creating pod {ns}/{meta['name']}: {status} {reply[:300]!r}")


def fix_bind_uids(base: str, state: State) -> None:
    """The API server gives created pods new UIDs: rewrite bind.jsonl's PodUID to match."""
    uids = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p["metadata"]["uid"]
        for p in get_json(f"{base}/api/v1/pods")["items"]
    }
    lines = []
    for line in (state.payloads / "bind.jsonl").read_text().splitlines():
        b = json.loads(line)
        b["PodUID"] = uids.get((b["PodNamespace"], b["PodName"]), b["PodUID"])
        lines.append(json.dumps(b, separators=(",", ":")))
    (state.payloads / "bind.jsonl").write_text("\n".join(lines) + "\n")


def check_overcommit(base: str, state: State) -> dict[str, Any]:
    """Read the API server back: per node, the requests of the pods bound there (cpu, memory,
    GPUs, and the pod count) vs allocatable, and how many of the pending pods got a node."""
    nodes = get_json(f"{base}/api/v1/nodes")["items"]
    pods = get_json(f"{base}/api/v1/pods")["items"]
    pending = {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in json.loads((state.payloads / "pending.json").read_text())["items"]
    }
    used: dict[str, list[int]] = {}
    bound = pending_bound = 0
    for p in pods:
        node = p.get("spec", {}).get("nodeName")
        if not node or p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        bound += 1
        pending_bound += (p["metadata"]["namespace"], p["metadata"]["name"]) in pending
        u = used.setdefault(node, [0, 0, 0, 0])
        for i, v in enumerate((*generate._pod_requests(p), 1)):
            u[i] += v
    over: dict[str, dict[str, str]] = {}
    for n in nodes:
        a = n["status"]["allocatable"]
        cap = [quantity_to_int(r, a.get(r, "0")) for r in RESOURCES]
        u = used.get(n["metadata"]["name"], [0, 0, 0, 0])
        if any(x > c for x, c in zip(u, cap, strict=True)):
            over[n["metadata"]["name"]] = {
                r: f"{x} > {c}" for r, x, c in zip(RESOURCES, u, cap, strict=True) if x > c
            }
    return {
        "pods_bound": bound,
        "pending_pods": len(pending),
        "pending_pods_bound": pending_bound,
        "overcommitted_nodes": sorted(over),
        "overcommit": over,
    }


def scrape_bind_metrics(bases: Sequence[str]) -> dict[str, float]:
    """The extenders' bind and conflict counters from GET /metrics, summed over the replicas
    (empty when the extender exposes none)."""
    out: dict[str, float] = {}
    for base in bases:
        text = http_get_text(f"{base}/metrics")
        for line in (text or "").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            family = name.partition("{")[0]
            if ("bind" in family or "conflict" in family) and family.endswith(("_total", "_count")):
                with contextlib.suppress(ValueError):
                    out[name] = out.get(name, 0.0) + float(value)
    return out


def bind_unavailable(base: str, node: str) -> str | None:
    """After a run in which no bind succeeded: the extender's Error for a bind of a pod that
    does not exist, if that Error says /bind is not available at all (else None)."""
    status, reply = http_post(f"{base}/bind", json.dumps({**BIND_PROBE, "Node": node}).encode())
    with contextlib.suppress(ValueError, AttributeError):
        error = json.loads(reply).get("Error") or ""
        if status == 200 and "not available" in error:
            return str(error)
    return None
