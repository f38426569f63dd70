"""The live source against the API-server stand-in, through the real kubernetes client:
initial sync, every kind of change, 410 re-list, dropped connections, readiness."""

from __future__ import annotations

import asyncio
import gc

from app.sources import KINDS
from app.state.live import Backoff
from tests.builders import node, pod
from tests.live import live_runtime, snapshot_of
from tests.standin import ApiServerStandIn

CPU, PODS_COLUMN, GPU = 0, 3, 4


async def test_initial_sync_then_ready(recorded_apiserver: ApiServerStandIn) -> None:
    async with live_runtime(recorded_apiserver) as (runtime, source, changes):
        await changes.until(lambda: runtime.readiness.ready)
        snapshot = snapshot_of(source)
        assert sorted(snapshot.nodes) == ["cpu-a", "cpu-b", "gpu-a10g-1", "gpu-h100-1", "gpu-t4-1"]
        assert len(snapshot.pods) == 6
        # two gpu-worker pods (1 GPU each) are bound to gpu-h100-1 in the recording
        assert snapshot.free("gpu-h100-1")[GPU] == 6
        assert changes.readiness_history[-1] is True and runtime.extender is not None


async def test_what_the_first_load_allocated_is_frozen_out_of_the_collector(
    recorded_apiserver: ApiServerStandIn,
) -> None:
    gc.unfreeze()
    try:
        async with live_runtime(recorded_apiserver) as (runtime, _source, changes):
            await changes.until(lambda: runtime.readiness.ready)
            frozen = gc.get_freeze_count()
            assert frozen > 0  # full collections no longer walk the snapshot
            runtime.readiness.loading("pods")  # as a re-list does: ready again later...
            runtime.readiness.loaded("pods")
            assert runtime.readiness.ready and changes.readiness_history[-2:] == [False, True]
            assert gc.get_freeze_count() <= frozen  # ...does not freeze again (freed objects leave)
    finally:
        gc.unfreeze()


async def test_node_add_modify_delete(recorded_apiserver: ApiServerStandIn) -> None:
    async with live_runtime(recorded_apiserver) as (runtime, source, changes):
        await changes.until(lambda: runtime.readiness.ready)
        snapshot = snapshot_of(source)
        recorded_apiserver.add_node(node("new-1", cpu="4"))
        await changes.until(lambda: "new-1" in snapshot.nodes)
        assert snapshot.free("new-1")[CPU] == 4000
        recorded_apiserver.update_node(node("new-1", cpu="6"))
        await changes.until(lambda: snapshot.free("new-1")[CPU] == 6000)
        recorded_apiserver.delete_node("new-1")
        await changes.until(lambda: "new-1" not in snapshot.nodes)
        assert snapshot.nodes["cpu-a"].resource_version  # others untouched


async def test_pod_add_bind_phase_change_delete(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a", cpu="8"))
    async with live_runtime(apiserver) as (runtime, source, changes):
        await changes.until(lambda: runtime.readiness.ready)
        snapshot = snapshot_of(source)
        created = apiserver.add_pod(pod("p", cpu="3"))
        uid = created["metadata"]["uid"]
        await changes.until(lambda: uid in snapshot.pods)
        assert snapshot.free("a")[CPU] == 8000  # pending: holds nothing
        # bound by another scheduler: the extender never saw a bind for it
        apiserver.update_pod({**created, "spec": {**created["spec"], "nodeName": "a"}})
        await changes.until(lambda: snapshot.free("a")[CPU] == 5000)
        assert snapshot.is_bound(uid)
        apiserver.set_pod_phase("default", "p", "Succeeded")
        await changes.until(lambda: snapshot.free("a")[CPU] == 8000)
        apiserver.delete_pod("default", "p")
        await changes.until(lambda: uid not in snapshot.pods)
        assert snapshot.free("a")[PODS_COLUMN] == 110


async def test_expired_watch_relists_that_kind_only(recorded_apiserver: ApiServerStandIn) -> None:
    async with live_runtime(recorded_apiserver) as (runtime, source, changes):
        await changes.until(lambda: runtime.readiness.ready)
        snapshot = snapshot_of(source)
        pods_before = dict(snapshot.pods)
        assert await asyncio.to_thread(recorded_apiserver.wait_for_watches, len(KINDS))
        recorded_apiserver.compact()  # every open watch gets the recorded 410 ERROR event
        recorded_apiserver.add_node(node("after-expiry"))
        await changes.until(lambda: "after-expiry" in snapshot.nodes and runtime.readiness.ready)
        assert source.counters.get("nodes_relists", 0) >= 1
        assert snapshot.pods == pods_before  # the pods were rebuilt, never dropped
        # readiness dropped while re-listing, and came back
        history = changes.readiness_history
        assert history.index(True) < len(history) - 1 - history[::-1].index(False)
        assert history[-1] is True


async def test_dropped_connection_reconnects_from_last_version(
    recorded_apiserver: ApiServerStandIn,
) -> None:
    async with live_runtime(recorded_apiserver) as (runtime, source, changes):
        await changes.until(lambda: runtime.readiness.ready)
        snapshot = snapshot_of(source)
        lists_before = source.counters["nodes_lists"]
        assert await asyncio.to_thread(recorded_apiserver.wait_for_watches, len(KINDS))
        recorded_apiserver.drop_watches()
        recorded_apiserver.add_node(node("after-drop"))
        await changes.until(lambda: "after-drop" in snapshot.nodes)
        assert source.counters["nodes_lists"] == lists_before  # resumed, not re-listed
        assert source.counters["nodes_watches"] >= 2


async def test_paused_watch_delivers_in_order_on_resume(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a", cpu="8"))
    async with live_runtime(apiserver) as (runtime, source, changes):
        await changes.until(lambda: runtime.readiness.ready)
        snapshot = snapshot_of(source)
        apiserver.pause_watches("pods")
        apiserver.add_pod(pod("late", node_name="a", cpu="2", phase="Running"))
        apiserver.add_node(node("b"))  # nodes keep flowing
        await changes.until(lambda: "b" in snapshot.nodes)
        assert snapshot.free("a")[CPU] == 8000
        apiserver.resume_watches("pods")
        await changes.until(lambda: snapshot.free("a")[CPU] == 6000)


def test_backoff_is_jittered_exponential_and_capped() -> None:
    backoff = Backoff(0.2, 2.0)
    delays = [backoff.next() for _ in range(8)]
    assert 0.1 <= delays[0] <= 0.2 and 0.2 <= delays[1] <= 0.4
    assert all(d <= 2.0 for d in delays) and delays[-1] >= 1.0
    backoff.reset()
    assert backoff.next() <= 0.2


async def test_large_lists_arrive_in_pages(apiserver: ApiServerStandIn) -> None:
    for i in range(1201):
        apiserver.add_pod(pod(f"p{i}", node_name="a", cpu="10m", phase="Running"))
    apiserver.add_node(node("a", cpu="100"))
    async with live_runtime(apiserver) as (runtime, source, changes):
        await changes.until(lambda: runtime.readiness.ready)
        assert len(snapshot_of(source).pods) == 1201
        assert snapshot_of(source).free("a")[CPU] == 100_000 - 12_010
    pages = [
        r for r in apiserver.requests if r.template == "/api/v1/pods" and "watch" not in r.target
    ]
    assert len(pages) == 3 and "continue=" in pages[-1].target
