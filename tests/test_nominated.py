"""Nominated pods (``status.nominatedNodeName``) hold their room for pods of lower priority, and
terminating pods hold theirs until deleted: filter, prioritize, /explain and bind count them as
kube-scheduler's own filters do."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec

from app.config import load_settings
from app.extender import Extender
from app.state.ledger import Reservation
from app.state.records import pod_facts
from app.wire.codec import decode_extender_args
from app.wire.types import Pod
from tests.builders import GPU, args_body, extender_of, lease, node, pod, snapshot_of
from tests.live import replicas
from tests.standin import ApiServerStandIn


def kept(extender: Extender, pod_obj: dict[str, Any], names: list[str]) -> list[str]:
    reply = json.loads(extender.filter(decode_extender_args(args_body(pod_obj, names))))
    assert reply["Error"] == ""
    names_kept: list[str] = reply["NodeNames"]
    return names_kept


NODES = [node("a", gpus=4), node("b", gpus=4)]
# a: 2 GPUs used, and a preemptor of priority 1000 nominated there for 2 more
RUNNING = [pod(f"run-{i}", node_name="a", gpus=1, phase="Running") for i in range(2)]
NOMINATED = pod("preemptor", gpus=2, priority=1000, nominated="a")


def test_a_nominated_pod_holds_its_room_for_lower_and_equal_priorities_only() -> None:
    extender = extender_of(NODES, [*RUNNING, NOMINATED])
    low = pod("low", gpus=1, priority=10)
    equal = pod("equal", gpus=1, priority=1000)
    high = pod("high", gpus=2, priority=2000)
    assert kept(extender, low, ["a", "b"]) == ["b"]
    assert kept(extender, equal, ["a", "b"]) == ["b"]
    assert kept(extender, high, ["a", "b"]) == ["a", "b"]
    # the nominated pod itself is not held back by its own nomination
    assert kept(extender, NOMINATED, ["a", "b"]) == ["a", "b"]


def test_a_pod_without_priority_counts_zero_against_nominations() -> None:
    nominated_zero = pod("zero", gpus=2, nominated="a")  # no spec.priority: 0
    extender = extender_of(NODES, [*RUNNING, nominated_zero])
    assert kept(extender, pod("negative", gpus=1, priority=-5), ["a"]) == []
    assert kept(extender, pod("none", gpus=1), ["a"]) == []
    assert kept(extender, pod("one", gpus=1, priority=1), ["a"]) == ["a"]


def test_a_nomination_stops_holding_once_bound_deleted_or_cleared() -> None:
    extender = extender_of(NODES, [*RUNNING, NOMINATED])
    snapshot = extender.snapshot
    low = pod("low", gpus=2, priority=10)
    assert kept(extender, low, ["a"]) == []
    cleared = {**NOMINATED, "status": {"phase": "Pending"}}
    snapshot.set_pod(pod_facts(msgspec.convert(cleared, Pod)))
    assert kept(extender, low, ["a"]) == ["a"]
    snapshot.set_pod(pod_facts(msgspec.convert(NOMINATED, Pod)))
    assert kept(extender, low, ["a"]) == []
    snapshot.delete_pod(NOMINATED["metadata"]["uid"])
    assert kept(extender, low, ["a"]) == ["a"]
    # bound (to b): it counts there as a pod, not on a as a nomination
    bound = pod("preemptor", gpus=2, priority=1000, nominated="a", node_name="b", phase="Running")
    snapshot.set_pod(pod_facts(msgspec.convert(bound, Pod)))
    assert kept(extender, low, ["a", "b"]) == ["a", "b"]
    assert kept(extender, pod("three", gpus=3, priority=10), ["a", "b"]) == []


def test_a_nominated_pod_whose_bind_is_under_way_is_counted_once() -> None:
    """Its live ledger entry holds its room; the nomination must not hold it a second time."""
    now = time.time()
    nodes = [node("a", gpus=8)]
    entry = Reservation(NOMINATED["metadata"]["uid"], "default/preemptor", ((GPU, 2),), now + 60)
    snapshot = snapshot_of(nodes, [*RUNNING, NOMINATED], leases=[lease("a", [entry])])
    extender = Extender(load_settings(), snapshot)
    # 8 − 2 running − 2 reserved = 4 free (2 if the nomination counted as well)
    assert kept(extender, pod("low", gpus=4, priority=10), ["a"]) == ["a"]
    assert snapshot.nominated_for("someone", 0) == {}
    expired = Reservation(entry.pod_uid, entry.pod, entry.requests, now - 1)
    snapshot = snapshot_of(nodes, [*RUNNING, NOMINATED], leases=[lease("a", [expired])])
    assert set(snapshot.nominated_for("someone", 0)) == {"a"}  # no live entry: the nomination
    extender = Extender(load_settings(), snapshot)
    assert kept(extender, pod("low", gpus=4, priority=10), ["a"]) == ["a"]
    assert kept(extender, pod("low", gpus=5, priority=10), ["a"]) == []


def test_prioritize_sees_the_room_nominated_pods_hold() -> None:
    """binpack: a node whose free room a nomination holds looks fuller."""
    extender = extender_of([node("a", gpus=8), node("b", gpus=8)], [NOMINATED])
    nominated_b = pod("big", gpus=6, priority=1000, nominated="b")
    extender.snapshot.set_pod(pod_facts(msgspec.convert(nominated_b, Pod)))
    body = args_body(pod("low", gpus=1, priority=10), ["a", "b"])
    scores = json.loads(extender.prioritize(decode_extender_args(body)))
    by_host = {s["Host"]: s["Score"] for s in scores}
    assert by_host["b"] > by_host["a"]
    body = args_body(pod("top", gpus=1, priority=5000), ["a", "b"])
    scores = json.loads(extender.prioritize(decode_extender_args(body)))
    assert len({s["Score"] for s in scores}) == 1  # for a higher priority, no room is held


def test_terminating_pods_hold_their_room_until_deleted() -> None:
    going = pod("going", node_name="a", gpus=4, phase="Running", terminating=True)
    extender = extender_of(NODES, [going])
    worker = pod("worker", gpus=1)
    assert kept(extender, worker, ["a", "b"]) == ["b"]
    extender.snapshot.delete_pod(going["metadata"]["uid"])
    assert kept(extender, worker, ["a", "b"]) == ["a", "b"]


def test_explain_names_nominated_and_terminating_pods() -> None:
    going = pod("going", node_name="b", gpus=1, phase="Running", terminating=True)
    extender = extender_of(NODES, [*RUNNING, NOMINATED, going])
    body = args_body(pod("low", gpus=1, priority=10), ["a", "b"])
    report = extender.explain(decode_extender_args(body))
    a, b = report["nodes"]
    assert a["nominated"] == [
        {"pod": "default/preemptor", "priority": 1000, "requests": {GPU: 2, "pods": 1}}
    ]
    assert "terminating" not in a
    assert b["terminating"] == ["default/going"] and "nominated" not in b
    body = args_body(pod("high", gpus=1, priority=5000), ["a"])
    (a,) = extender.explain(decode_extender_args(body))["nodes"]
    assert "nominated" not in a  # not counted against a higher priority


async def test_bind_refuses_the_room_a_nominated_pod_waits_for(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a", gpus=4))
    for item in RUNNING:
        apiserver.add_pod(item)
    apiserver.add_pod(NOMINATED)
    async with replicas(apiserver, 1) as [replica]:
        low = apiserver.add_pod(pod("low", gpus=2, priority=10))
        high = apiserver.add_pod(pod("high", gpus=2, priority=1000))
        await replica.changes.until(
            lambda: replica.snapshot.pod_named("default", "high") is not None
        )
        error = await replica.bind(low, "a")
        assert error == "node a no longer fits: nvidia.com/gpu 0 free, 2 requested"
        # an equal priority is held back too; the nominated pod itself is not
        assert (await replica.bind(high, "a")).startswith("node a no longer fits")
        assert await replica.bind(NOMINATED, "a") == ""
        stored = apiserver.get_pod("default", "preemptor")
        assert stored is not None and stored["spec"]["nodeName"] == "a"


async def test_the_pod_watch_reads_priority_nomination_and_deletion(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a", gpus=4))
    apiserver.add_pod(pod("going", node_name="a", gpus=4, phase="Running", terminating=True))
    apiserver.add_pod(NOMINATED)
    async with replicas(apiserver, 1) as [replica]:
        snapshot = replica.snapshot
        [going] = snapshot.terminating_on("a")
        assert going.name == "going" and going.terminating
        assert [p.name for p in snapshot.nominations_holding("a", "other", 1000)] == ["preemptor"]
        assert snapshot.nominations_holding("a", "other", 1001) == []
        apiserver.delete_pod("default", "going")
        await replica.changes.until(lambda: not snapshot.terminating_on("a"))
