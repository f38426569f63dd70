"""The wake-up against the real kube-scheduler 1.36: the only room that frees is a reservation
that expires. kube-scheduler files the refused pod as unschedulable and, with no cluster event,
would retry it only at its 5-minute flush; the extender's wake-up (``app.commit.wake``) makes
it retry within seconds. With the wake-up switched off the same pod is still Pending long after
the room freed — the test shows the wake-up is what binds it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

from app.state.ledger import Reservation, format_ledger
from tests.controlplane.cluster import EXTENDER_NAMESPACE
from tests.controlplane.objects import (
    JSON,
    KEYS,
    bound_node,
    create_nodes,
    create_pods,
    node,
    pod,
    unschedulable,
    watch_pods,
)
from tests.e2e.conftest import Scenario

HELD_SECONDS = 8.0
"""How long the reservation holds the node's room after the pod is created."""
WOKEN_WITHIN = 10.0
"""The pod must be bound this long after the room freed (kube-scheduler's own retry: 5 min)."""


def hold_node(scenario: Scenario, node_name: str, cpu_millis: int, seconds: float) -> float:
    """Write a ledger entry holding ``cpu_millis`` of the node for a pod that never binds (as a
    replica that died mid-bind leaves it); returns when it expires."""
    expires = time.time() + seconds
    entry = Reservation("ghost-uid", "default/ghost", (("cpu", cpu_millis), ("pods", 1)), expires)
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node_name, "labels": {KEYS.ledger: "node"},
                     "annotations": {KEYS.reservations: format_ledger([entry])}},
    }  # fmt: skip
    config = scenario.client.configuration
    reply = httpx.post(
        f"{config.host}/apis/coordination.k8s.io/v1/namespaces/{EXTENDER_NAMESPACE}/leases",
        content=json.dumps(lease), verify=False, timeout=10,
        headers={"Authorization": next(iter(config.api_key.values())),
                 "Content-Type": "application/json"},
    )  # fmt: skip
    reply.raise_for_status()
    return expires


@pytest.mark.parametrize("wake", ["on", "off"])
def test_pods_refused_for_room_reservations_held_bind_when_they_expire(
    scenario: Scenario, wake: str
) -> None:
    """Two full nodes, held until +8 s and +18 s; two pods that need a whole node. With the
    wake-up, one binds within 10 s of each expiry (the first ring creates the wake-up object,
    the second patches it)."""
    create_nodes(scenario.core, [node("held-0", cpu="1"), node("held-1", cpu="1")])
    env = {"PLACEMENT_EXTENDER_WAKE__ENABLED": "true" if wake == "on" else "false",
           "PLACEMENT_EXTENDER_WAKE__MIN_INTERVAL_SECONDS": "0.5"}  # fmt: skip
    scenario.scheduler(scenario.extender(env))
    expiries = [hold_node(scenario, f"held-{i}", 1000, HELD_SECONDS + 10 * i) for i in (0, 1)]
    names = ["waiting-0", "waiting-1"]
    create_pods(scenario.core, [pod(n, scheduler="placement-scheduler", cpu="1", memory="16Mi")
                                for n in names])  # fmt: skip
    refused = watch_pods(scenario.core, lambda ps: all(n in ps and unschedulable(ps[n])
                                                       for n in names),
                         timeout=HELD_SECONDS)  # fmt: skip
    assert all("insufficient cpu" in json.dumps(refused[n]["status"]).lower() for n in names)
    assert time.time() < expiries[0], "refused while the reservations still held the room"

    def bound(count: int) -> Callable[[dict[str, JSON]], bool]:
        return lambda ps: sum(1 for n in names if bound_node(ps[n])) >= count

    if wake == "off":
        with pytest.raises(TimeoutError):
            watch_pods(scenario.core, bound(1), timeout=expiries[0] + WOKEN_WITHIN - time.time())
        return
    for count, expires in enumerate(expiries, start=1):
        left = expires + WOKEN_WITHIN - time.time()
        final = watch_pods(scenario.core, bound(count), timeout=left)
    assert sorted(bound_node(final[n]) or "" for n in names) == ["held-0", "held-1"]
