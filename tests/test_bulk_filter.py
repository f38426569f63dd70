"""The engine's bulk filter agrees with every predicate run alone, and the table's derived columns.

Covers: failure codes (app.policy.codes) against ``Predicate.check`` on generated clusters and
on hand-made edge cases (over-committed nodes, unknown names, named pools, GPU types); the node
table's ``flags``/``limits`` after every kind of change; reply fragments against plain JSON.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.extender import Extender
from app.policy.candidates import Candidates
from app.policy.codes import limit_bit
from app.policy.demand import PodDemand
from app.policy.predicates import known_node
from app.state.table import (
    FLAG_BITS,
    FLAG_UNKNOWN,
    GPU_MEMORY_LIMIT,
    capacity_limit,
    clearance_limit,
    free_limit,
    limit_count,
)
from app.wire.replies import filter_reply, host_priority_list, json_array, object_members
from app.wire.types import Pod
from bench.handler_bench import build_extender
from loadtest.generate import make_cluster, make_payloads
from tests.builders import P, extender_of, node, pod


def expected_verdicts(
    extender: Extender, demand: PodDemand, nodes: Candidates
) -> list[tuple[list[str], bool]]:
    """Per candidate, from each predicate alone: the failed predicates' names (an unknown node
    fails only "known") and whether the failure is unresolvable."""
    checks = [(p, p.check(demand, nodes)) for p in extender.policy.predicates]
    verdicts = []
    for i in range(len(nodes)):
        if not nodes.known[i]:
            verdicts.append(([known_node.NAME], False))
            continue
        failed, hard = [], False
        for predicate, check in checks:
            if check is not None and check.failed[i]:
                failed.append(predicate.name)
                hard |= bool(np.broadcast_to(check.unresolvable, check.failed.shape)[i])
        verdicts.append((failed, hard))
    return verdicts


def bulk_verdicts(
    extender: Extender, demand: PodDemand, nodes: Candidates
) -> list[tuple[list[str], bool]]:
    outcome = extender.policy.filter(demand, nodes)
    layout, predicates = extender.policy.layout, extender.policy.predicates
    verdicts = []
    for code in outcome.codes.tolist():
        failed, hard = layout.verdict(code)
        verdicts.append(([predicates[i].name for i in failed], hard and bool(failed)))
    assert outcome.passed.tolist() == [not failed for failed, _ in verdicts]
    assert outcome.unresolvable.tolist() == [hard for _, hard in verdicts]
    return verdicts


def assert_agree(extender: Extender, pod_obj: Any, names: list[str]) -> None:
    demand = extender.demand(msgspec.convert(pod_obj, Pod))
    table = extender.snapshot.table
    nodes = Candidates(table, table.rows_for(names), extender.snapshot.nodes)
    assert bulk_verdicts(extender, demand, nodes) == expected_verdicts(extender, demand, nodes)


def test_bulk_filter_agrees_with_each_predicate_on_generated_clusters() -> None:
    cluster = make_cluster(150, 300, seed=5)
    extender = build_extender(cluster)
    payloads = make_payloads(cluster, mode="names", candidates=120, count=60, seed=5)
    for k, body in enumerate(payloads.bodies):
        request = json.loads(body)
        names = request["NodeNames"] + (["ghost", request["NodeNames"][0]] if k % 3 == 0 else [])
        assert_agree(extender, request["Pod"], names)


NODES = [
    node("small", cpu="2", memory="4Gi", pods="3"),
    node("busy", cpu="8", memory="32Gi"),
    node("t4", gpus=1, product="Tesla-T4", gpu_memory=15360, labels={P + "pool": "gpu"}),
    node("h100", gpus=8, product="NVIDIA-H100-80GB-HBM3", gpu_memory=81559),
    node("typed", gpus=2, labels={P + "gpu-type": "L4", P + "pool": "batch"}),
    node("spot", labels={"karpenter.sh/capacity-type": "spot", P + "pool": "batch"}),
    node("closed", labels={P + "pool": "web", P + "pool-only": "true"}),
    node("broken", labels={P + "pool-priority": "high"}),
]
PLACED = [  # over-commits "busy": its free cpu and pod slots go negative
    pod("hog", node_name="busy", cpu="12", phase="Running"),
    *(pod(f"p{i}", node_name="small", phase="Running") for i in range(3)),
]


@settings(max_examples=80, deadline=None)
@given(
    cpu=st.sampled_from([None, "100m", "2", "9"]),
    memory=st.sampled_from([None, "1Gi", "40Gi"]),
    gpus=st.sampled_from([0, 1, 4]),
    types=st.sampled_from([None, "any", "T4", "H100,L4", "A10G"]),
    gpu_memory=st.sampled_from([None, "16000"]),
    pool=st.sampled_from([None, "batch", "web", "nowhere"]),
    preemptible=st.sampled_from([None, "true"]),
    names=st.lists(st.sampled_from([n["metadata"]["name"] for n in NODES] + ["ghost"])),
)
def test_bulk_filter_agrees_with_each_predicate_on_edge_cases(
    cpu: str | None,
    memory: str | None,
    gpus: int,
    types: str | None,
    gpu_memory: str | None,
    pool: str | None,
    preemptible: str | None,
    names: list[str],
) -> None:
    annotations = {
        P + key: value
        for key, value in [
            ("gpu-types", types),
            ("gpu-memory", gpu_memory),
            ("pool", pool),
            ("preemptible", preemptible),
        ]
        if value is not None
    }
    wants = pod("p", cpu=cpu, memory=memory, gpus=gpus, annotations=annotations)
    assert_agree(extender_of(NODES, PLACED), wants, names)


def test_a_zero_request_is_not_checked_even_on_an_over_committed_node() -> None:
    extender = extender_of(NODES, PLACED)
    demand = extender.demand(msgspec.convert(pod("p", memory="1Gi"), Pod))
    table = extender.snapshot.table
    nodes = Candidates(table, table.rows_for(["busy"]), extender.snapshot.nodes)
    assert extender.snapshot.free("busy")[0] < 0
    assert extender.policy.filter(demand, nodes).passed.tolist() == [True]


def test_limits_and_flags_follow_every_change() -> None:
    extender = extender_of(NODES, PLACED)
    snapshot, table = extender.snapshot, extender.snapshot.table
    width = len(table.resources)

    def check(name: str) -> None:
        row = table.rows[name]
        limits, flags = table.limits[row], int(table.flags[row])
        for bit in range(FLAG_BITS):
            assert limits[clearance_limit(1 << bit)] == (0 if flags & 1 << bit else 1)
        assert limits[GPU_MEMORY_LIMIT] == table.gpu_memory[row]
        for column in range(width):
            free, alloc = table.free[column, row], table.alloc[column, row]
            assert free == alloc - table.used[column, row] - table.reserved[column, row]
            assert limits[free_limit(column)] == free
            assert limits[capacity_limit(column)] == max(alloc, free)

    for name in table.rows:
        check(name)
    snapshot.delete_pod("uid-default-hog")
    check("busy")
    row = table.rows["spot"]
    snapshot.delete_node("spot")
    assert (
        table.flags[row] == FLAG_UNKNOWN and table.limits[row, clearance_limit(FLAG_UNKNOWN)] == 0
    )
    assert not table.known[row] and not table.valid[row]
    assert table.limits[0, clearance_limit(FLAG_UNKNOWN)] == 0  # the sentinel row


def test_limit_columns_map_to_distinct_code_bits() -> None:
    columns = limit_count(5)
    assert columns % 8 == 0 and columns >= capacity_limit(4) + 1
    bits = [limit_bit(c) for c in range(columns)]
    assert len(set(bits)) == columns and all(b < 2**63 for b in bits)


@pytest.mark.parametrize(
    "groups",
    [[], [(["a"], "r1")], [(["a", "b", "c"], 'needs "quotes"'), ([], "empty"), (["d"], "r2")]],
)
def test_reply_fragments_are_the_json_they_stand_for(groups: list[tuple[list[str], str]]) -> None:
    encoded = [([msgspec.json.encode(k) for k in keys], value) for keys, value in groups]
    expected = {k: value for keys, value in groups for k in keys}
    kept = [msgspec.json.encode(n) for n in ("x", "y")]
    reply = filter_reply(
        node_names=json_array(kept), nodes=None, failed=object_members(encoded), unresolvable=[]
    )
    assert json.loads(reply) == {
        "Nodes": None,
        "NodeNames": ["x", "y"],
        "FailedNodes": expected,
        "FailedAndUnresolvableNodes": {},
        "Error": "",
    }


@pytest.mark.parametrize("scores", [[], [0], [10, 3, 0, 7]])
def test_host_priority_list_keeps_request_order(scores: list[int]) -> None:
    names = [f"n{i}" for i in range(len(scores))]
    prefixes = [b'{"Host":' + msgspec.json.encode(n) + b',"Score":' for n in names]
    reply = host_priority_list(prefixes, np.array(scores, np.int64))
    assert json.loads(reply) == [{"Host": n, "Score": s} for n, s in zip(names, scores)]
