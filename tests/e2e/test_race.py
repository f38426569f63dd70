"""Zero over-commit with real schedulers racing: 3 kube-scheduler processes (each its own
profile and cache) × 3 extender replicas, 400 pods onto 10 nodes that hold exactly 200.

Each kube-scheduler alone never over-commits a node it knows about; three of them only learn of
each other's pods through their watches. The extender's CAS ledger is what keeps them apart. In
the ``workloads`` case the pods share container IDs, so binds also reserve nodes ahead for
pending pods of the same workload and bind those without a write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from app.wire.quantity import quantity_to_int
from tests.controlplane.objects import (
    GPU,
    JSON,
    KEYS,
    bound_node,
    create_nodes,
    create_pods,
    node,
    pod,
    settled,
    watch_pods,
)
from tests.e2e.conftest import Scenario

NODES, SLOTS, PODS, SCHEDULERS = 10, 20, 400, 3
CAPACITY = NODES * SLOTS


def capacity_filled(total: int, capacity: int) -> Callable[[dict[str, JSON]], bool]:
    """Done when every pod is bound or unschedulable and the nodes are full (or over)."""

    def done(pods: dict[str, JSON]) -> bool:
        if len(pods) < total or not all(settled(p) for p in pods.values()):
            return False
        return sum(1 for p in pods.values() if bound_node(p)) >= capacity

    return done


def requested(pods: dict[str, JSON], resource: str) -> Counter[str]:
    """Per node, the sum of ``resource`` requested by the pods bound there (API objects)."""
    used: Counter[str] = Counter()
    for p in pods.values():
        where = bound_node(p)
        if where:
            for c in p["spec"]["containers"]:
                amount = (c.get("resources") or {}).get("requests", {}).get(resource)
                if amount:
                    used[where] += quantity_to_int(resource, amount)
    return used


def reserved_ahead_used(url: str) -> float:
    """Binds that found an entry reserved ahead and wrote nothing, from a replica's /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    prefix = 'placement_extender_reserved_ahead_total{event="used"} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


@pytest.mark.parametrize("kind", ["cpu", "gpu", "workloads"])
def test_racing_schedulers_never_over_commit(scenario: Scenario, kind: str) -> None:
    gpu = kind == "gpu"
    create_nodes(scenario.core, [
        node(f"race-{i}", cpu="64" if gpu else str(SLOTS // 10), gpus=SLOTS if gpu else 0,
             labels={KEYS.gpu_type: "T4"} if gpu else {})
        for i in range(NODES)
    ])  # fmt: skip
    names = [f"sched-{i}" for i in range(SCHEDULERS)]
    extenders = [scenario.extender(name=f"extender-for-{name}") for name in names]
    for extender, name in zip(extenders, names, strict=True):
        scenario.scheduler(extender, name=name)
    pods = [
        pod(f"race-{i}", scheduler=names[i % SCHEDULERS], cpu="10m" if gpu else "100m",
            memory="16Mi", gpus=1 if gpu else 0,
            annotations={KEYS.container_id: f"fn-{i % 8}"} if kind == "workloads" else None)
        for i in range(PODS)
    ]  # fmt: skip
    create_pods(scenario.core, pods)

    final = watch_pods(scenario.core, capacity_filled(PODS, CAPACITY), timeout=150)

    bound = [p for p in final.values() if bound_node(p)]
    assert len(bound) == CAPACITY
    resource, per_node = (GPU, SLOTS) if gpu else ("cpu", SLOTS * 100)
    used = requested(final, resource)
    over = {n: u for n, u in used.items() if u > per_node}
    assert not over, f"over-committed nodes ({resource}): {over}"
    assert sum(used.values()) == CAPACITY * (1 if gpu else 100)
    if kind == "workloads":
        assert sum(reserved_ahead_used(e.url) for e in extenders) > 0
