"""The names-mode hot path: node lists kept raw and remembered by their bytes, needs and
reasons kept per pod shape, failure codes grouped by a 16-bit hash.

Covers: the raw-names decoder and its fallbacks to the general decoder; replies identical to
those of a decoded list, on generated clusters; a remembered list following nodes that appear,
disappear and change; a filter's kept nodes remembered for the prioritize call that brings them;
a malformed list as a 400 that wins over a bad pod; pods of different shapes never sharing
reasons; grouping that stays exact when two codes share a hash.
"""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.extender import Extender
from app.policy.engine import HASHED_FROM, group_by_code
from app.state.ledger import NodeLedger, Reservation
from app.state.records import node_facts, pod_facts
from app.state.table import LISTS_KEPT
from app.wire.codec import (
    BadRequest,
    decode_extender_args,
    decode_extender_args_raw_names,
    decode_node_names,
)
from app.wire.types import ExtenderArgs, ExtenderArgsRawNames, Node, Pod
from bench.handler_bench import build_extender
from loadtest.generate import make_cluster, make_payloads
from tests.builders import P, args_body, extender_of, node, pod
from tests.conftest import ClientFactory

NODES = [node("cpu-1"), node("cpu-2", cpu="1"), node("gpu-1", gpus=4, product="NVIDIA-A10G")]


def filter_answer(extender: Extender, body: bytes) -> Any:
    return json.loads(extender.filter(decode_extender_args_raw_names(body)))


def add_node(extender: Extender, item: dict[str, Any]) -> None:
    parsing = extender.snapshot.parsing
    facts = node_facts(
        msgspec.convert(item, Node), parsing.keys, parsing.gpu_resource, parsing.gpu_aliases
    )
    extender.snapshot.set_node(facts)


def test_names_mode_bodies_keep_the_list_raw_and_other_bodies_take_the_general_decoder() -> None:
    raw = decode_extender_args_raw_names(args_body(pod("p"), ["cpu-1", "gpu-1"]))
    assert isinstance(raw, ExtenderArgsRawNames)
    assert decode_node_names(raw.NodeNames) == ["cpu-1", "gpu-1"]
    other_case = decode_extender_args_raw_names(b'{"pod": {}, "nodenames": ["a"]}')
    assert isinstance(other_case, ExtenderArgs) and other_case.NodeNames == ["a"]
    full = decode_extender_args_raw_names(
        b'{"Pod": {}, "Nodes": {"items": [{"metadata": {"name": "a"}}]}, "NodeNames": null}'
    )
    assert isinstance(full, ExtenderArgs) and full.Nodes is not None and full.NodeNames is None
    for body in (b"{not json", b"{}", b'{"Pod": null, "NodeNames": []}'):
        with pytest.raises(BadRequest):
            decode_extender_args_raw_names(body)


def test_raw_and_decoded_lists_give_the_same_replies_on_a_generated_cluster() -> None:
    cluster = make_cluster(120, 240, seed=7)
    extender = build_extender(cluster)
    payloads = make_payloads(cluster, mode="names", candidates=100, count=30, seed=7)
    for k, body in enumerate(payloads.bodies):
        if k % 2:  # the previous pod's list again, as kube-scheduler sends it
            request = json.loads(body)
            request["NodeNames"] = json.loads(payloads.bodies[k - 1])["NodeNames"] + ["ghost"]
            body = json.dumps(request).encode()
        for verb in (extender.filter, extender.prioritize):
            assert verb(decode_extender_args_raw_names(body)) == verb(decode_extender_args(body))


def test_a_remembered_list_follows_nodes_that_appear_change_and_go() -> None:
    extender = extender_of(NODES)
    body = args_body(pod("p", cpu="2"), ["cpu-1", "cpu-2", "cpu-3"])
    first = filter_answer(extender, body)
    assert first["NodeNames"] == ["cpu-1"]
    assert first["FailedNodes"] == {"cpu-3": "unknown node"}
    assert "cpu-2" in first["FailedAndUnresolvableNodes"]

    add_node(extender, node("cpu-3"))
    assert filter_answer(extender, body)["NodeNames"] == ["cpu-1", "cpu-3"]
    add_node(extender, node("cpu-2", cpu="4"))  # same name, more capacity
    assert filter_answer(extender, body)["NodeNames"] == ["cpu-1", "cpu-2", "cpu-3"]
    extender.snapshot.delete_node("cpu-1")
    again = filter_answer(extender, body)
    assert again["NodeNames"] == ["cpu-2", "cpu-3"]
    assert again["FailedNodes"] == {"cpu-1": "unknown node"}


def test_a_repeated_list_sees_capacity_taken_and_freed_on_its_nodes() -> None:
    extender = extender_of([node("cpu-1", cpu="4"), node("cpu-2", cpu="4")])
    body = args_body(pod("p", cpu="3"), ["cpu-1", "cpu-2"])
    for _ in range(3):  # the list's own copy of its rows is made on its second use
        assert filter_answer(extender, body)["NodeNames"] == ["cpu-1", "cpu-2"]
    hog = pod("hog", node_name="cpu-2", cpu="2", phase="Running")
    extender.snapshot.set_pod(pod_facts(msgspec.convert(hog, Pod)))
    taken = filter_answer(extender, body)
    assert taken["NodeNames"] == ["cpu-1"]
    assert taken["FailedNodes"] == {"cpu-2": "insufficient cpu (3 requested)"}
    extender.snapshot.delete_pod(taken_uid(extender, "hog"))
    assert filter_answer(extender, body)["NodeNames"] == ["cpu-1", "cpu-2"]


def taken_uid(extender: Extender, name: str) -> str:
    found = extender.snapshot.pod_named("default", name)
    assert found is not None
    return found.uid


def test_remembered_lists_stay_bounded() -> None:
    extender = extender_of(NODES)
    table = extender.snapshot.table
    for i in range(50):
        filter_answer(extender, args_body(pod(f"p{i}"), ["cpu-1"] * (i + 1)))
    assert 0 < len(table._lists) <= LISTS_KEPT


@pytest.mark.parametrize("path", ["/filter", "/prioritize"])
async def test_a_list_that_is_not_strings_is_400_even_with_a_bad_pod(
    make_client: ClientFactory, path: str
) -> None:
    bad_pod = pod("p", annotations={P + "preemptible": "maybe"})
    body = json.dumps({"Pod": bad_pod, "Nodes": None, "NodeNames": ["cpu-1", 7]}).encode()
    reply = await make_client(NODES).post(path, content=body)
    assert reply.status_code == 400
    assert "NodeNames" in reply.json()["Error"]


def test_pods_that_differ_in_what_predicates_read_get_their_own_reasons() -> None:
    nodes = [*NODES, node("batch-1", labels={P + "pool": "batch"})]
    extender = extender_of(nodes)
    names = ["cpu-1", "cpu-2", "gpu-1", "batch-1"]
    asks: list[tuple[dict[str, Any], dict[str, str]]] = [
        (pod("a", cpu="2", annotations={P + "pool": "batch"}), {"cpu-1": "node not in pool batch"}),
        (pod("b", cpu="2", annotations={P + "pool": "web"}), {"batch-1": "node not in pool web"}),
        (pod("c", cpu="3"), {"cpu-2": "insufficient cpu (3 requested)"}),
        (pod("d", cpu="2"), {"cpu-2": "insufficient cpu (2 requested)"}),
        (pod("e", cpu="3"), {"cpu-2": "insufficient cpu (3 requested)"}),
    ]
    for wants, expected in asks * 2:
        answer = filter_answer(extender, args_body(wants, names))
        failures = {**answer["FailedNodes"], **answer["FailedAndUnresolvableNodes"]}
        assert failures.items() >= expected.items(), (wants["metadata"]["name"], failures)


SAME_HASH = (2, 46370)  # two codes whose 16-bit grouping keys are equal


def assert_grouped(codes: list[int]) -> None:
    """Grouped right by the plain sort and, tiled past HASHED_FROM, by the hashed one."""
    assert_grouped_once(codes)
    if codes:
        assert_grouped_once(codes * (HASHED_FROM // len(codes) + 1))


def assert_grouped_once(codes: list[int]) -> None:
    array = np.array(codes, np.uint64)
    order, starts = group_by_code(array)
    assert sorted(order.tolist()) == list(range(len(codes)))
    runs = [array[order[a:b]].tolist() for a, b in zip(starts, [*starts[1:], len(codes)])]
    assert all(len(set(run)) == 1 for run in runs)
    firsts = [run[0] for run in runs]
    assert len(set(firsts)) == len(firsts), "one run per code"
    if 0 in codes:
        assert firsts[0] == 0


@given(st.lists(st.sampled_from([0, 1, 7, 2**40, 2**63 + 5, *SAME_HASH])))
def test_grouping_puts_each_code_in_one_run_passing_first(codes: list[int]) -> None:
    assert_grouped(codes)


def test_grouping_stays_exact_when_two_codes_share_a_hash() -> None:
    assert_grouped([SAME_HASH[0], SAME_HASH[1], 0, SAME_HASH[0], 0, SAME_HASH[1]])


def test_a_pod_filtered_again_is_not_shut_out_by_its_own_reservation() -> None:
    """kube-scheduler retries a pod whose bind ended without a Binding (its outcome unknown,
    say): the pod's own live ledger entry must not count against it, only against others."""
    entry = Reservation("uid-default-retried", "default/retried", (("cpu", 3000), ("pods", 1)),
                        time.time() + 60)  # fmt: skip
    extender = extender_of([node("a", cpu="4"), node("b", cpu="1")])
    extender.snapshot.set_ledger(NodeLedger("a", "1", (entry,)))
    for names in (["a", "b"], ["b", "a"], ["b", "a"], ["a"]):  # fresh and remembered lists
        for who, fits in (("retried", True), ("other", False)):
            body = args_body(pod(who, cpu="3"), names)
            kept = filter_answer(extender, body)["NodeNames"] or []
            assert ("a" in kept) is fits, (who, names, kept)
            for decode in (decode_extender_args, decode_extender_args_raw_names):
                explained = extender.explain(decode(body))["nodes"]
                assert next(n for n in explained if n["node"] == "a")["passed"] is fits


def kept_list_body(filter_body: bytes, kept: list[str]) -> bytes:
    """The prioritize call kube-scheduler makes after a filter that kept ``kept``: the same pod,
    the kept names as Go's encoding/json writes them (no spaces)."""
    request = json.loads(filter_body)
    request["NodeNames"] = kept
    return json.dumps(request, separators=(",", ":")).encode()


def test_prioritize_of_the_kept_nodes_answers_as_a_fresh_resolution() -> None:
    cluster = make_cluster(120, 240, seed=11)
    extender, fresh = build_extender(cluster), build_extender(cluster)
    table = extender.snapshot.table
    payloads = make_payloads(cluster, mode="names", candidates=100, count=20, seed=11)
    some_failed = 0
    for body in payloads.bodies:
        reply = filter_answer(extender, body)
        kept = reply["NodeNames"]
        if len(kept) < 2:  # kube-scheduler does not prioritize: nothing to remember
            continue
        some_failed += bool(reply["FailedNodes"] or reply["FailedAndUnresolvableNodes"])
        assert json.dumps(kept, separators=(",", ":")).encode() in table._lists  # remembered
        prioritize = kept_list_body(body, kept)
        remembered = extender.prioritize(decode_extender_args_raw_names(prioritize))
        assert remembered == fresh.prioritize(decode_extender_args(prioritize))
    assert some_failed  # the kept lists differ from the requests' own


def test_a_remembered_kept_list_is_resolved_again_once_a_node_goes() -> None:
    nodes = [node("cpu-1"), node("cpu-2"), node("cpu-3", cpu="1")]
    extender = extender_of(nodes)
    body = args_body(pod("p", cpu="2"), ["cpu-1", "cpu-2", "cpu-3"])
    kept = filter_answer(extender, body)["NodeNames"]
    assert kept == ["cpu-1", "cpu-2"]
    extender.snapshot.delete_node("cpu-2")
    prioritize = kept_list_body(body, kept)
    scores = json.loads(extender.prioritize(decode_extender_args_raw_names(prioritize)))
    fresh = extender_of([node("cpu-1"), node("cpu-3", cpu="1")])
    assert scores == json.loads(fresh.prioritize(decode_extender_args(prioritize)))
    assert scores[1] == {"Host": "cpu-2", "Score": 0}  # unknown now
