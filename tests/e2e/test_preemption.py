"""Preemption through the real kube-scheduler with PriorityClasses, both ``nodeCacheCapable``
modes. No kubelet runs: the test finishes the deletion of terminating pods as kubelet would
(``tests/controlplane/preemption.py``), except those it holds on purpose.

- A high-priority GPU pod preempts on nodes full of low-priority pods and is bound; only the
  victims it needed are evicted; after the preemption, a burst of lower-priority pods from a
  second scheduler (which knows nothing of the first one's nomination) does not take the room
  the nominated pod waits for.
- On node A a live reservation of another pod makes kube-scheduler's victims insufficient: no
  pod on A is evicted, and the preemptor ends up on B, where eviction does suffice.
- A terminating pod's room is not handed out before it is gone.
"""

from __future__ import annotations

import httpx
import pytest

from tests.controlplane.objects import (
    JSON,
    all_settled,
    bound_node,
    create_nodes,
    create_pods,
    node,
    pod,
    unschedulable,
    watch_pods,
)
from tests.controlplane.preemption import (
    HIGH,
    LOW,
    create_priority_classes,
    finish_deletion,
    gpu_pod,
    kubelet,
    reserve,
    terminating,
)
from tests.e2e.conftest import Scenario

SCHEDULER = "placement-scheduler"
OTHER = "other-scheduler"
MODES = pytest.mark.parametrize("node_cache", [True, False], ids=["node-names", "full-nodes"])


def fill(scheduler: str, nodes: dict[str, int]) -> list[JSON]:
    """One low-priority 1-GPU pod per GPU of each node, created bound there."""
    return [
        gpu_pod(f"low-{name}-{i}", scheduler=scheduler, gpus=1, priority=LOW, node_name=name)
        for name, gpus in nodes.items()
        for i in range(gpus)
    ]


def on(pods: dict[str, JSON], node_name: str) -> set[str]:
    return {name for name, p in pods.items() if bound_node(p) == node_name}


def preemption_nodes(url: str, verdict: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    prefix = f'placement_extender_preemption_nodes_total{{verdict="{verdict}"}} '
    return sum(float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix))


def setup(scenario: Scenario, node_cache: bool, nodes: dict[str, int]) -> tuple[str, set[str]]:
    create_priority_classes(scenario.core)
    create_nodes(scenario.core, [node(n, gpus=g) for n, g in nodes.items()])
    extender = scenario.extender()
    scenario.scheduler(extender, values={"scheduler": {"nodeCacheCapable": node_cache}})
    filler = fill(SCHEDULER, nodes)
    create_pods(scenario.core, filler)
    return extender.url, {p["metadata"]["name"] for p in filler}


@MODES
def test_preemptor_is_bound_and_its_room_is_kept_from_a_burst_of_lower_priorities(
    scenario: Scenario, node_cache: bool
) -> None:
    nodes = {"gpu-a": 4, "gpu-b": 4}
    _, filler = setup(scenario, node_cache, nodes)
    create_pods(scenario.core, [gpu_pod("preemptor", scheduler=SCHEDULER, gpus=2, priority=HIGH)])
    evicted: set[str] = set()

    def nominated_and_evicting(pods: dict[str, JSON]) -> bool:
        target = pods["preemptor"].get("status", {}).get("nominatedNodeName")
        return bool(target) and len(evicted) >= 2

    held = set(filler)  # victims stay terminating until the first scheduler is gone
    pods = watch_pods(scenario.core, nominated_and_evicting, timeout=60,
                      on_event=kubelet(scenario.core, held, evicted))  # fmt: skip
    target = pods["preemptor"]["status"]["nominatedNodeName"]
    assert evicted == {n for n in on(pods, target) if terminating(pods[n])}
    assert len(evicted) == 2, f"only the 2 victims it needs are evicted, not {sorted(evicted)}"

    # The first scheduler stops before the victims are gone: the preemptor stays nominated.
    scheduler = scenario._procs[-1]
    scenario.plane.stop_child(scheduler)
    for name in evicted:
        finish_deletion(scenario.core, name)
    # A second scheduler sends lower-priority GPU pods; it knows nothing of the nomination,
    # and only the extender's count of nominated pods keeps them out of the freed room.
    scenario.scheduler(scenario.extender(name="extender-2"), name=OTHER,
                       values={"scheduler": {"nodeCacheCapable": node_cache}})  # fmt: skip
    burst = [gpu_pod(f"burst-{i}", scheduler=OTHER, gpus=1, priority=LOW) for i in range(3)]
    create_pods(scenario.core, burst)
    names = [b["metadata"]["name"] for b in burst]
    pods = watch_pods(scenario.core, all_settled(names), timeout=60)
    assert all(unschedulable(pods[n]) for n in names), {n: bound_node(pods[n]) for n in names}

    scenario.scheduler(scenario.extender(name="extender-3"),
                       values={"scheduler": {"nodeCacheCapable": node_cache}})  # fmt: skip
    pods = watch_pods(scenario.core, lambda p: bound_node(p["preemptor"]) is not None, timeout=60)
    assert bound_node(pods["preemptor"]) == target
    assert not [n for n in names if bound_node(pods[n])]
    assert filler - set(pods) == evicted  # nothing else was evicted


@MODES
def test_no_pod_is_evicted_where_the_ledger_holds_the_room(
    scenario: Scenario, node_cache: bool
) -> None:
    """kube-scheduler, blind to the ledger, sees 2 of gpu-a's GPUs free and would evict one pod
    there for a 3-GPU preemptor (1 victim ranks before gpu-b's 3); but those 2 GPUs are
    reserved for another pod, so eviction on gpu-a cannot make room."""
    create_priority_classes(scenario.core)
    create_nodes(scenario.core, [node("gpu-a", gpus=4), node("gpu-b", gpus=4)])
    (holder,) = create_pods(scenario.core, [pod("holder", scheduler="nobody", gpus=2)])
    reserve(scenario.core, "gpu-a", holder, gpus=2)
    extender = scenario.extender()
    scenario.scheduler(extender, values={"scheduler": {"nodeCacheCapable": node_cache}})
    filler = fill(SCHEDULER, {"gpu-a": 2, "gpu-b": 4})
    create_pods(scenario.core, filler)
    create_pods(scenario.core, [gpu_pod("preemptor", scheduler=SCHEDULER, gpus=3, priority=HIGH)])

    evicted: set[str] = set()
    pods = watch_pods(scenario.core, lambda p: bound_node(p["preemptor"]) is not None,
                      timeout=60, on_event=kubelet(scenario.core, (), evicted))  # fmt: skip
    assert bound_node(pods["preemptor"]) == "gpu-b"
    assert not {n for n in evicted if n.startswith("low-gpu-a")}, "pods killed for nothing"
    assert len(evicted) == 3 and all(n.startswith("low-gpu-b") for n in evicted)
    assert preemption_nodes(extender.url, "dropped") >= 1


@MODES
def test_a_terminating_pods_room_is_not_handed_out_before_it_is_gone(
    scenario: Scenario, node_cache: bool
) -> None:
    _, filler = setup(scenario, node_cache, {"gpu-a": 4})
    going = "low-gpu-a-0"
    scenario.core.delete_namespaced_pod(going, "default", grace_period_seconds=300)
    create_pods(scenario.core, [gpu_pod("waiter", scheduler=SCHEDULER, gpus=1, priority=LOW)])
    seen: set[str] = set()
    pods = watch_pods(scenario.core, all_settled(["waiter"]), timeout=60,
                      on_event=kubelet(scenario.core, filler, seen))  # fmt: skip
    assert unschedulable(pods["waiter"]) and going in pods and terminating(pods[going])
    finish_deletion(scenario.core, going)
    pods = watch_pods(scenario.core, lambda p: bound_node(p["waiter"]) is not None, timeout=60)
    assert bound_node(pods["waiter"]) == "gpu-a"
