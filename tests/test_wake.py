"""The wake-up (``app.commit.wake``): room a reservation held that comes free without an API
event kube-scheduler watches is reported by the snapshot, and rings one shared object — once for
all replicas. (That kube-scheduler then retries the pods it held back is shown against the real
one in tests/e2e/test_wake.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from app.state.ledger import NodeLedger, Reservation
from app.state.snapshot import Snapshot
from tests.builders import P, lease, node, pod, snapshot_of
from tests.live import Replica, replicas
from tests.standin import ApiServerStandIn
from tests.test_snapshot import Clock, facts

WAKE_OBJECT = "placement-extender-wake"
WOKEN_AT = P + "woken-at"
CAPACITIES = "/apis/storage.k8s.io/v1/namespaces/{namespace}/csistoragecapacities"


def entry(uid: str, cpu: int, expires_at: float) -> Reservation:
    return Reservation(uid, f"default/{uid}", (("cpu", cpu),), expires_at)


def watched(snapshot: Snapshot) -> list[str]:
    freed: list[str] = []
    snapshot.freed_listeners.append(freed.append)
    return freed


def held(clock: Clock, *entries: tuple[str, str]) -> Snapshot:
    """Nodes a and b; each (node, pod uid) a live 1-CPU entry of a pending pod."""
    snapshot = snapshot_of(
        [node("a", cpu="4"), node("b", cpu="4")],
        [pod(uid, uid=uid) for _, uid in entries],
        clock=clock,
    )
    for name in ("a", "b"):
        mine = tuple(entry(uid, 1000, clock.now + 60) for n, uid in entries if n == name)
        snapshot.set_ledger(NodeLedger(name, "1", mine))
    return snapshot


def test_expiry_release_and_a_deleted_pending_pod_free_room() -> None:
    clock = Clock()
    snapshot = held(clock, ("a", "p1"), ("a", "p2"), ("b", "p3"))
    freed = watched(snapshot)
    clock.now += 61
    snapshot.refresh()  # every entry expired
    assert sorted(freed) == ["a", "b"]

    snapshot = held(clock, ("a", "p1"), ("a", "p2"))
    freed = watched(snapshot)
    snapshot.set_ledger(NodeLedger("a", "2", (entry("p2", 1000, clock.now + 60),)))  # released
    assert freed == ["a"]
    snapshot.delete_pod("p2")  # deleted while pending: its entry can never be used
    assert freed == ["a", "a"]
    assert snapshot.free("a")[0] == 4000


def test_a_pod_bound_where_its_entry_is_frees_nothing_but_elsewhere_does() -> None:
    clock = Clock()
    snapshot = held(clock, ("a", "p1"), ("b", "p1"))
    freed = watched(snapshot)
    snapshot.set_pod(facts(pod("p1", uid="p1", node_name="a", cpu="1"), snapshot))
    assert freed == ["b"]  # on a, the bound pod holds the room its entry held
    snapshot.set_ledger(NodeLedger("a", "3", ()))  # a writer prunes the bound pod's entry
    assert freed == ["b"]


def test_nothing_is_reported_for_room_that_grows_or_a_new_ledger() -> None:
    clock = Clock()
    snapshot = held(clock)
    freed = watched(snapshot)
    snapshot.set_ledger(NodeLedger("a", "2", (entry("x", 1000, clock.now + 60),)))
    snapshot.set_node(facts(node("a", cpu="8"), snapshot))
    snapshot.delete_ledger("b")  # held nothing
    assert freed == []


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition on the stand-in's state (it has no hook for this: poll)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def free_cpu(replica: Replica) -> int:
    replica.snapshot.refresh()
    return int(replica.snapshot.free("a")[0])


def rings(replica: Replica) -> dict[str, float]:
    counter = replica.metrics.wakeups
    return {o: counter.labels(o)._value.get() for o in ("sent", "coalesced", "failed")}


async def test_an_expired_entry_rings_once_for_three_replicas(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a", cpu="1"))
    apiserver.add_lease(lease("a", [entry("ghost", 1000, time.time() + 0.5)]))
    async with replicas(apiserver, 3, jitters=[0.1, 0.5, 0.9],
                        wake={"min_interval_seconds": 0.3}) as started:  # fmt: skip
        for replica in started:
            assert replica.snapshot.free("a")[0] == 0
        await until(lambda: sum(sum(rings(r).values()) for r in started) == 3)
        counts = [rings(r) for r in started]
    assert sum(c["sent"] for c in counts) == 1, counts  # one write for all three
    assert sum(c["failed"] for c in counts) == 0
    rung = apiserver.get_object("csistoragecapacities", "default", WAKE_OBJECT)
    assert rung is not None and rung["storageClassName"] == WAKE_OBJECT
    assert "nodeTopology" not in rung and "capacity" not in rung  # no capacity, on no node
    assert apiserver.request_count("POST", CAPACITIES) >= 1


async def test_later_frees_update_the_object_and_failures_are_retried(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a", cpu="2"))
    async with replicas(apiserver, 1, jitters=[0.0], wake={"min_interval_seconds": 0.05}) as [
        replica
    ]:
        assert replica.wake is not None
        replica.wake.freed("a")
        await until(lambda: rings(replica)["sent"] == 1)
        first = apiserver.get_object("csistoragecapacities", "default", WAKE_OBJECT)
        assert first is not None
        apiserver.fail_next("GET", r"/csistoragecapacities/", status=503)
        replica.wake.freed("a")
        await until(lambda: rings(replica)["sent"] == 2)
        assert rings(replica)["failed"] == 1
    second = apiserver.get_object("csistoragecapacities", "default", WAKE_OBJECT)
    assert second is not None
    woken = [float(o["metadata"]["annotations"][WOKEN_AT]) for o in (first, second)]
    assert woken[1] > woken[0]
    assert apiserver.request_count("PATCH", CAPACITIES + "/{name}") == 1


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_switch(apiserver: ApiServerStandIn, enabled: bool) -> None:
    apiserver.add_node(node("a", cpu="1"))
    apiserver.add_lease(lease("a", [entry("ghost", 1000, time.time() + 0.2)]))
    wake = {"enabled": enabled, "min_interval_seconds": 0.05}
    async with replicas(apiserver, 1, jitters=[0.0], wake=wake) as [replica]:
        await until(lambda: free_cpu(replica) == 1000)
        if enabled:
            await until(lambda: rings(replica)["sent"] == 1)
        else:
            assert replica.wake is None
    found = apiserver.get_object("csistoragecapacities", "default", WAKE_OBJECT)
    assert (found is not None) == enabled
