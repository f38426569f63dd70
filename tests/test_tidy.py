"""Ledgers at rest (``app.commit.tidy``): a ledger nobody writes any more is pruned by a write
of its own once an entry the next write would drop is about to outlive its expiry; a ledger
still being written is left to its writers, and an entry far from its expiry to the node's next
bind."""

from __future__ import annotations

import time

from app.commit.tidy import LedgerTidy
from tests.builders import lease, node, pod
from tests.live import replicas
from tests.standin import ApiServerStandIn
from tests.test_bind import ledger_of, writes
from tests.test_wake import entry, until


async def test_an_idle_ledger_is_pruned_and_a_busy_one_is_left_alone(
    apiserver: ApiServerStandIn,
) -> None:
    now = time.time()
    apiserver.add_node(node("idle", cpu="4"))
    apiserver.add_node(node("busy", cpu="4"))
    idle = [entry("expired", 1000, now - 1), entry("live", 1000, now + 60)]
    apiserver.add_lease(lease("idle", idle))
    apiserver.add_lease(lease("busy", [entry("expired-too", 1000, now - 1)]))
    apiserver.add_node(node("later", cpu="4"))
    gone = apiserver.add_pod(pod("gone", cpu="1"))
    apiserver.add_lease(lease("later", [entry(gone["metadata"]["uid"], 1000, now + 60)]))
    async with replicas(apiserver, 1) as [replica]:
        tidy = LedgerTidy(replica.settings, replica.snapshot, replica.binder)
        apiserver.delete_pod("default", "gone")  # its entry is droppable, but 60 s from expiry
        await replica.changes.until(lambda: replica.snapshot.is_gone(gone["metadata"]["uid"]))
        assert tidy.sweep() == []  # first sight of each ledger: not yet known to be idle
        apiserver.add_lease(lease("other", []))  # unrelated
        written = writes(apiserver)
        lease_busy = apiserver.get_lease("default", "busy")
        assert lease_busy is not None
        lease_busy["metadata"]["annotations"]["touched"] = "1"  # a write since the sweep
        apiserver._replace("leases", lease_busy)
        version = apiserver._objects["leases"][("default", "busy")]["metadata"]["resourceVersion"]
        await replica.changes.until(
            lambda: replica.snapshot.ledgers["busy"].resource_version == version
        )
        assert tidy.sweep() == ["idle"]
        await until(lambda: [e.pod_uid for e in ledger_of(apiserver, "idle")] == ["live"])
        assert writes(apiserver) == written + 1
        assert tidy.sweep() == ["busy"]  # idle since the last sweep now
        await until(lambda: ledger_of(apiserver, "busy") == [])
        assert tidy.sweep() == []  # nothing droppable near its expiry left anywhere
        assert len(ledger_of(apiserver, "later")) == 1  # left to the node's next bind
        tidy.clock = lambda: now + 61 - tidy.horizon  # ...until it would outlive its expiry
        assert tidy.sweep() == ["later"]
