"""The pod/node contract through a real kube-scheduler calling the extender (both
``nodeCacheCapable`` modes): every row of the README's contract table decides where real pods
are bound, and an unschedulable pod's event names the extender's reasons.

Nodes are identical in CPU, memory and pod slots, so kube-scheduler's own scores tie and the
extender's decide.
"""

from __future__ import annotations

import pytest
from kubernetes.client import CoreV1Api

from tests.controlplane.objects import (
    JSON,
    KEYS,
    NAMESPACE,
    all_settled,
    bound_node,
    create_nodes,
    create_pods,
    node,
    pod,
    watch_pods,
)
from tests.e2e.conftest import Scenario

SCHEDULER = "placement-scheduler"
GFD_PRODUCT = "nvidia.com/gpu.product"
GFD_MEMORY = "nvidia.com/gpu.memory"
GPU_NODES = {"gpu-a10g", "gpu-t4", "gpu-a100"}
CPU_NODES = {"cpu-1", "cpu-2", "ml-high", "ml-low"}  # where a plain CPU pod may go


def nodes() -> list[JSON]:
    return [
        node("gpu-a10g", gpus=4, labels={KEYS.gpu_type: "A10G", GFD_MEMORY: "24576"}),
        node("gpu-t4", gpus=4, labels={GFD_PRODUCT: "Tesla-T4", GFD_MEMORY: "16384"}),
        node("gpu-a100", gpus=4,
             labels={GFD_PRODUCT: "NVIDIA-A100-SXM4-80GB", GFD_MEMORY: "81920"}),
        node("cpu-1"),
        node("cpu-2"),
        node("batch-only", labels={KEYS.pool: "batch", KEYS.pool_only: "true"}),
        node("ml-high", labels={KEYS.pool: "ml", KEYS.pool_priority: "10"}),
        node("ml-low", labels={KEYS.pool: "ml", KEYS.pool_priority: "1"}),
        node("spot", labels={KEYS.pool: "cheap", "karpenter.sh/capacity-type": "spot"}),
    ]  # fmt: skip


def p(name: str, *, gpus: int = 0, **annotations: str) -> JSON:
    keyed = {getattr(KEYS, k): v for k, v in annotations.items()}
    return pod(name, scheduler=SCHEDULER, gpus=gpus, annotations=keyed)


# pod → the nodes it may be bound to (None: it must stay unschedulable)
EXPECTED: dict[str, tuple[JSON, set[str] | None]] = {
    "prefers-t4": (p("prefers-t4", gpus=1, gpu_types="T4,A10G"), {"gpu-t4"}),
    "prefers-a10g": (p("prefers-a10g", gpus=1, gpu_types="A10G,T4"), {"gpu-a10g"}),
    "any-gpu": (p("any-gpu", gpus=1, gpu_types="any"), GPU_NODES),
    "gpu-memory-40g": (p("gpu-memory-40g", gpus=1, gpu_memory="40000"), {"gpu-a100"}),
    "gfd-product": (p("gfd-product", gpus=1, gpu_types="A100-80"), {"gpu-a100"}),
    "pool-ml": (p("pool-ml", pool="ml"), {"ml-high"}),
    "pool-batch": (p("pool-batch", pool="batch"), {"batch-only"}),
    "spot-ok": (p("spot-ok", pool="cheap", preemptible="true"), {"spot"}),
    "spot-refused": (p("spot-refused", pool="cheap"), None),
    "no-h100": (p("no-h100", gpus=1, gpu_types="H100"), None),
    **{f"cpu-{i}": (p(f"cpu-{i}"), CPU_NODES) for i in range(4)},
}
AFFINE = [p(f"fn-a-{i}", container_id="fn-a") for i in range(3)]


def events_for(core: CoreV1Api, name: str) -> list[str]:
    found = core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}")
    return [e.message or "" for e in found.items if e.reason == "FailedScheduling"]


@pytest.mark.parametrize("node_cache", [True, False], ids=["node-names", "full-nodes"])
def test_contract_through_kube_scheduler(scenario: Scenario, node_cache: bool) -> None:
    create_nodes(scenario.core, nodes())
    extender = scenario.extender()
    scenario.scheduler(extender, values={"scheduler": {"nodeCacheCapable": node_cache}})

    create_pods(scenario.core, [obj for obj, _ in EXPECTED.values()])
    pods = watch_pods(scenario.core, all_settled(EXPECTED), timeout=60)
    placed = {name: bound_node(pods[name]) for name in EXPECTED}
    for name, (_, allowed) in EXPECTED.items():
        if allowed is None:
            assert placed[name] is None, f"{name} must stay unschedulable, bound to {placed[name]}"
        else:
            assert placed[name] in allowed, f"{name} on {placed[name]}, expected one of {allowed}"

    # Container-ID affinity: one at a time, each sees the earlier ones bound.
    homes = set()
    for obj in AFFINE:
        create_pods(scenario.core, [obj])
        name = obj["metadata"]["name"]
        homes.add(bound_node(watch_pods(scenario.core, all_settled([name]), timeout=30)[name]))
    assert len(homes) == 1 and homes <= CPU_NODES, f"one container ID, nodes {homes}"

    # kube-scheduler groups the extender's reasons into the pod's event.
    assert any("gpu type not in [H100]" in m for m in events_for(scenario.core, "no-h100"))
    assert any(
        "preemptible node; pod is not preemptible" in m
        for m in events_for(scenario.core, "spot-refused")
    )
