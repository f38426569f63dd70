"""Score components alone, and the engine's 0..10 scale with GPU preference bands."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.policy.candidates import Candidates
from app.policy.scores import affinity, fit, gpu_preference, pool_priority
from app.wire.types import Pod
from tests.builders import P, extender_of, node, pod


def setup(nodes: list[dict[str, Any]], pod_obj: dict[str, Any], pods: Any = (), **config: Any):  # type: ignore[no-untyped-def]
    extender = extender_of(nodes, list(pods), **config)
    demand = extender.demand(msgspec.convert(pod_obj, Pod))
    table = extender.snapshot.table
    names = [n["metadata"]["name"] for n in nodes]
    return extender, demand, Candidates(table, table.rows_for(names), extender.snapshot.nodes)


def by_name(nodes: Candidates, values: Any) -> dict[str, float]:
    return {nodes.name(i): float(values[i]) for i in range(len(nodes))}


def test_gpu_preference_ranks_first_listed_type_highest() -> None:
    nodes_ = [node("t4", gpus=1, product="Tesla-T4"), node("a10g", gpus=1, product="NVIDIA-A10G")]
    _, demand, nodes = setup(nodes_, pod("p", gpus=1, annotations={P + "gpu-types": "A10G,T4"}))
    assert by_name(nodes, gpu_preference.rank(demand, nodes)) == {"t4": 1, "a10g": 0}
    assert by_name(nodes, gpu_preference.score(demand, nodes)) == {"t4": 0.0, "a10g": 1.0}


def test_pool_priority_scales_between_lowest_and_highest() -> None:
    nodes_ = [node(f"n{p}", labels={P + "pool-priority": str(p)}) for p in (0, 5, 10)]
    _, demand, nodes = setup(nodes_, pod("p"))
    assert by_name(nodes, pool_priority.score(demand, nodes)) == {"n0": 0.0, "n5": 0.5, "n10": 1.0}


def test_binpack_prefers_the_fuller_node_and_spread_the_emptier() -> None:
    nodes_ = [node("empty", cpu="10", memory="10Gi"), node("half", cpu="10", memory="10Gi")]
    placed = [pod("x", node_name="half", cpu="5", memory="5Gi", phase="Running")]
    _, demand, nodes = setup(nodes_, pod("p", cpu="1", memory="1Gi"), placed)
    used = by_name(nodes, fit.utilisation(demand, nodes))
    assert used == {"empty": 0.1, "half": 0.6}
    spread = by_name(nodes, fit.component("spread").score(demand, nodes))
    assert spread["empty"] > spread["half"]


def test_fit_counts_gpus_where_a_gpu_pod_finds_them_and_gives_back_own_holdings() -> None:
    nodes_ = [node("gpu", cpu="8", memory="16Gi", gpus=4), node("cpu", cpu="8", memory="16Gi")]
    placed = [pod("x", node_name="gpu", cpu="4", memory="4Gi", gpus=2, phase="Running")]
    extender, demand, nodes = setup(nodes_, pod("p", cpu="2", memory="4Gi", gpus=1), placed)
    assert by_name(nodes, fit.utilisation(demand, nodes)) == {
        "gpu": (6 / 8 + 8 / 16 + 3 / 4) / 3,
        "cpu": (2 / 8 + 4 / 16) / 2,  # no GPUs to count
    }
    table = extender.snapshot.table
    held = table.vector({"cpu": 2000, "nvidia.com/gpu": 1})  # what the pod itself holds there
    returned = Candidates(
        table, nodes.rows, extender.snapshot.nodes, returned={nodes.rows[0]: held}
    )
    assert float(fit.utilisation(demand, returned)[0]) == (4 / 8 + 8 / 16 + 2 / 4) / 3


def test_affinity_is_stable_per_container_id() -> None:
    nodes_ = [node(f"n{i}") for i in range(20)]
    _, first, nodes = setup(nodes_, pod("a", annotations={P + "container-id": "fn-1"}))
    _, again, _ = setup(nodes_, pod("b", annotations={P + "container-id": "fn-1"}))
    _, other, _ = setup(nodes_, pod("c", annotations={P + "container-id": "fn-2"}))
    same = affinity.score(first, nodes), affinity.score(again, nodes)
    assert np.array_equal(*same)
    assert not np.array_equal(same[0], affinity.score(other, nodes))


def test_affinity_spreads_container_ids_evenly() -> None:
    nodes_ = [node(f"n{i}") for i in range(10)]
    _, demand, nodes = setup(nodes_, pod("p"))
    favourites: Counter[int] = Counter()
    for i in range(5000):
        probe = replace(demand, container_hash=hash_of(f"id-{i}"))
        favourites[int(np.argmax(affinity.weights(probe, nodes)))] += 1
    assert len(favourites) == 10
    assert max(favourites.values()) < 1.25 * 500 and min(favourites.values()) > 0.75 * 500


def test_affinity_removing_a_node_moves_only_its_ids() -> None:
    nodes_ = [node(f"n{i}") for i in range(8)]
    extender, demand, nodes = setup(nodes_, pod("p"))
    table = extender.snapshot.table
    fewer = Candidates(table, table.rows_for([f"n{i}" for i in range(7)]), extender.snapshot.nodes)
    for i in range(500):
        probe = replace(demand, container_hash=hash_of(f"id-{i}"))
        before = int(np.argmax(affinity.weights(probe, nodes)))
        after = int(np.argmax(affinity.weights(probe, fewer)))
        if before != 7:
            assert after == before


def hash_of(text: str) -> int:
    from app.state.records import stable_hash64

    return stable_hash64(text)


def test_affinity_decides_between_otherwise_equal_cpu_nodes_but_not_gpu_nodes_by_default() -> None:
    nodes_ = [node(f"n{i}") for i in range(6)]
    extender, demand, nodes = setup(
        nodes_, pod("p", cpu="1", annotations={P + "container-id": "fn-9"})
    )
    outcome = extender.policy.score(demand, nodes)
    assert "affinity" in outcome.components
    assert int(np.argmax(outcome.scores)) == int(np.argmax(affinity.weights(demand, nodes)))
    gpu_nodes = [node(f"g{i}", gpus=1) for i in range(3)]
    extender, demand, nodes = setup(gpu_nodes, pod("q", gpus=1))
    assert "affinity" not in extender.policy.score(demand, nodes).components


def test_scores_are_integers_in_range_and_unknown_nodes_score_zero() -> None:
    extender, demand, _ = setup([node("a"), node("b")], pod("p", cpu="1"))
    table = extender.snapshot.table
    nodes = Candidates(table, table.rows_for(["a", "ghost", "b"]), extender.snapshot.nodes)
    scores = extender.policy.score(demand, nodes).scores
    assert scores.dtype == np.int64 and scores[1] == 0
    assert all(0 <= s <= 10 for s in scores.tolist())
    extender, demand, _ = setup([node("a"), node("b")], pod("p", cpu="30"))  # binpack: > 0
    table = extender.snapshot.table
    listed = table.listed(["ghost", "a", "b", "ghost"])  # as a request's list names them
    nodes = Candidates(table, listed.rows, extender.snapshot.nodes, listed)
    scores = extender.policy.score(demand, nodes).scores
    assert scores[0] == scores[3] == 0 and scores[1] > 0 and scores[2] > 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Tesla-T4", "NVIDIA-A10G", "NVIDIA-H100-80GB-HBM3"]),
            st.integers(1, 8),
            st.integers(0, 8),
            st.integers(0, 20),
        ),
        min_size=2,
        max_size=12,
    ),
    st.permutations(["T4", "A10G", "H100"]),
)
def test_more_preferred_gpu_type_always_outranks_less_preferred(
    spec: list[tuple[str, int, int, int]], order: list[str]
) -> None:
    nodes_, placed = [], []
    for i, (product, gpus, used, priority) in enumerate(spec):
        nodes_.append(
            node(f"n{i}", gpus=gpus, product=product, labels={P + "pool-priority": str(priority)})
        )
        if min(used, gpus - 1):
            placed.append(
                pod(f"x{i}", node_name=f"n{i}", gpus=min(used, gpus - 1), phase="Running")
            )
    wants = pod("p", gpus=1, cpu="1", annotations={P + "gpu-types": ",".join(order)})
    extender, demand, nodes = setup(nodes_, wants, placed)
    outcome = extender.policy.score(demand, nodes)
    rank = gpu_preference.rank(demand, nodes)
    for i in range(len(nodes)):
        for j in range(len(nodes)):
            if rank[i] < rank[j]:
                assert outcome.scores[i] > outcome.scores[j]


def test_preference_can_be_a_weighted_component_instead() -> None:
    nodes_ = [node("t4", gpus=1, product="Tesla-T4"), node("a10g", gpus=1, product="NVIDIA-A10G")]
    extender, demand, nodes = setup(
        nodes_,
        pod("p", gpus=1, annotations={P + "gpu-types": "A10G,T4"}),
        scoring={"gpu_preference_dominates": False},
    )
    outcome = extender.policy.score(demand, nodes)
    assert "gpu_preference" in outcome.components
    assert outcome.scores[1] > outcome.scores[0]
