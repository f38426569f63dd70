"""Property: whatever the interleaving of binds (from several replicas at once), refused
Bindings and pod deletions, the pods bound on a node plus the live reservations of pods not
bound never exceed the node's allocatable."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.state.ledger import parse_ledger
from app.wire.quantity import quantity_to_int
from tests.builders import P, node, pod
from tests.live import replicas
from tests.standin import ApiServerStandIn

NODES = ("a", "b")
CPU_PER_NODE = 4
PODS = 8

bind_op = st.tuples(
    st.just("bind"), st.integers(0, 1), st.integers(0, PODS - 1), st.sampled_from(NODES)
)
refused_op = st.tuples(
    st.just("refused"), st.integers(0, 1), st.integers(0, PODS - 1), st.sampled_from(NODES)
)
delete_op = st.tuples(st.just("delete"), st.just(0), st.integers(0, PODS - 1), st.just(""))
batches = st.lists(
    st.lists(st.one_of(bind_op, bind_op, refused_op, delete_op), min_size=1, max_size=4),
    min_size=1,
    max_size=4,
)
# mostly replica 0 onto node a, so that a replica sees a workload land there twice and reserves
# ahead for the rest
mostly_0, mostly_a = st.sampled_from((0, 0, 0, 1)), st.sampled_from(("a", "a", "a", "b"))
clustered_batches = st.lists(
    st.lists(
        st.one_of(
            st.tuples(st.just("bind"), mostly_0, st.integers(0, PODS - 1), mostly_a),
            st.tuples(st.just("bind"), mostly_0, st.integers(0, PODS - 1), mostly_a),
            st.tuples(st.just("refused"), mostly_0, st.integers(0, PODS - 1), mostly_a),
            delete_op,
        ),
        min_size=1,
        max_size=4,
    ),
    min_size=2,
    max_size=8,
)


def committed(apiserver: ApiServerStandIn, name: str) -> int:
    """CPU (millicores) held on node ``name``: its bound pods plus live entries of pods that
    are not bound."""
    ledger = apiserver.get_lease("default", name) or {"metadata": {}}
    bound_uids: set[str] = set()
    held = 0
    for i in range(PODS):
        found = apiserver.get_pod("default", f"p{i}")
        if found is None or not found["spec"].get("nodeName"):
            continue
        bound_uids.add(found["metadata"]["uid"])
        if found["spec"]["nodeName"] == name:
            requests = found["spec"]["containers"][0]["resources"]["requests"]
            held += quantity_to_int("cpu", requests["cpu"])
    now = time.time()
    for entry in parse_ledger(ledger["metadata"].get("annotations", {}).get(P + "reservations")):
        if entry.live(now) and entry.pod_uid not in bound_uids:
            held += dict(entry.requests).get("cpu", 0)
    return held


async def run(
    batches_: list[list[tuple[str, int, int, str]]],
    sizes: list[int],
    refusal: int = 500,
    workloads: int = 0,
) -> None:
    """``workloads``: that many container IDs shared round-robin by the pods, so binds reserve
    the node ahead for pods of the same workload and size (0: every pod is its own)."""
    with ApiServerStandIn() as apiserver:
        for name in NODES:
            apiserver.add_node(node(name, cpu=str(CPU_PER_NODE)))
        pods: list[dict[str, Any]] = [
            apiserver.add_pod(
                pod(
                    f"p{i}",
                    cpu=str(sizes[i]),
                    annotations={P + "container-id": f"w{i % workloads}"} if workloads else None,
                )
            )
            for i in range(PODS)
        ]
        async with replicas(apiserver, 2) as group:
            for replica in group:
                await replica.changes.until(lambda r=replica: len(r.snapshot.pods) == PODS)
            deleted: set[int] = set()

            async def step(op: tuple[str, int, int, str]) -> None:
                kind, who, index, target = op
                if kind == "delete":
                    if index not in deleted:
                        deleted.add(index)
                        apiserver.delete_pod("default", f"p{index}")
                    return
                if kind == "refused":
                    apiserver.fail_next("POST", rf"/pods/p{index}/binding$", status=refusal)
                await group[who].bind(pods[index], target)

            for batch in batches_:
                await asyncio.gather(*(step(op) for op in batch))
                for name in NODES:
                    assert committed(apiserver, name) <= CPU_PER_NODE * 1000


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.lists(st.integers(1, 3), min_size=PODS, max_size=PODS))
def test_no_interleaving_over_commits(
    batches_: list[list[tuple[str, int, int, str]]], sizes: list[int]
) -> None:
    asyncio.run(run(batches_, sizes))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches, st.lists(st.integers(1, 3), min_size=PODS, max_size=PODS))
def test_no_interleaving_over_commits_when_refusals_release(
    batches_: list[list[tuple[str, int, int, str]]], sizes: list[int]
) -> None:
    """As above with definitive refusals (422), whose reservations are released: a 500 leaves
    the outcome unknown and keeps them."""
    asyncio.run(run(batches_, sizes, refusal=422))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    clustered_batches,
    st.lists(st.sampled_from((1, 1, 1, 2)), min_size=PODS, max_size=PODS),
    st.integers(1, 2),
)
def test_no_interleaving_over_commits_when_pods_are_reserved_ahead(
    batches_: list[list[tuple[str, int, int, str]]], sizes: list[int], workloads: int
) -> None:
    """As above with pods sharing container IDs: writes reserve the node ahead for pending pods
    of the same workload and size, and those pods' binds to that node write nothing."""
    asyncio.run(run(batches_, sizes, refusal=422, workloads=workloads))
