"""POST /preempt: kube-scheduler's candidates are kept only where the preemptor passes the
extender's filter once the victims are gone — counting live reservations of other pods and
nominated pods — with kube-scheduler's victims unchanged; other nodes are dropped."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from app.api.server import Runtime, create_app
from app.config import load_settings
from app.extender import Extender
from app.state.ledger import Reservation
from app.state.readiness import Readiness
from app.wire.codec import decode_preemption_args
from tests.builders import GPU, lease, node, pod, recorded, snapshot_of
from tests.conftest import ClientFactory

PREEMPTOR = pod("preemptor", gpus=3, priority=1000)
A_PODS = [pod(f"a-{i}", node_name="a", gpus=1, phase="Running", priority=10) for i in range(2)]
B_PODS = [pod(f"b-{i}", node_name="b", gpus=1, phase="Running", priority=10) for i in range(4)]


def uid(item: dict[str, Any]) -> str:
    value: str = item["metadata"]["uid"]
    return value


def meta_args(pod_obj: dict[str, Any], victims: dict[str, list[dict[str, Any]]]) -> bytes:
    """``nodeCacheCapable: true``: victims as UIDs, ``NodeNameToVictims`` null."""
    return json.dumps({
        "Pod": pod_obj,
        "NodeNameToVictims": None,
        "NodeNameToMetaVictims": {
            n: {"Pods": [{"UID": uid(v)} for v in vs], "NumPDBViolations": 0}
            for n, vs in victims.items()
        },
    }).encode()  # fmt: skip


def full_args(pod_obj: dict[str, Any], victims: dict[str, list[dict[str, Any]]]) -> bytes:
    """``nodeCacheCapable: false``: victims as whole pods, ``NodeNameToMetaVictims`` null."""
    return json.dumps({
        "Pod": pod_obj,
        "NodeNameToVictims": {n: {"Pods": vs, "NumPDBViolations": 1} for n, vs in victims.items()},
        "NodeNameToMetaVictims": None,
    }).encode()  # fmt: skip


async def preempt(client: httpx.AsyncClient, body: bytes) -> dict[str, Any]:
    reply = await client.post("/preempt", content=body)
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"NodeNameToMetaVictims"}
    result: dict[str, Any] = reply.json()["NodeNameToMetaVictims"]
    return result


def reserved(node_name: str, gpus: int) -> dict[str, Any]:
    """Node ``node_name``'s ledger: another pod's live reservation of ``gpus`` GPUs."""
    entry = Reservation(
        "uid-pending", "default/pending", ((GPU, gpus), ("pods", 1)), time.time() + 60
    )
    return lease(node_name, [entry])


def client_of(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], leases: list[dict[str, Any]] = ()
) -> httpx.AsyncClient:  # type: ignore[assignment]
    """An in-process extender over HTTP whose snapshot also holds ``leases`` (ledgers)."""
    settings = load_settings()
    extender = Extender(settings, snapshot_of(nodes, pods, settings, leases=leases))
    runtime = Runtime(settings=settings, readiness=Readiness(), extender=extender)
    transport = httpx.ASGITransport(app=create_app(runtime))
    return httpx.AsyncClient(transport=transport, base_url="http://extender")


async def test_a_node_whose_room_the_ledger_holds_is_dropped() -> None:
    """kube-scheduler, blind to the ledger, sees 2 GPUs free on a and asks to evict one pod
    there; with a's other 2 GPUs reserved for another pod, evicting both would not do."""
    nodes = [node("a", gpus=4), node("b", gpus=4)]
    runtime_client = client_of(nodes, [*A_PODS, *B_PODS], [reserved("a", 2)])
    victims = {"a": A_PODS[:1], "b": B_PODS[:3]}
    for body in (meta_args(PREEMPTOR, victims), full_args(PREEMPTOR, victims)):
        result = await preempt(runtime_client, body)
        assert set(result) == {"b"}
        # kube-scheduler's victims, unchanged and in its order, named by UID
        assert [p["UID"] for p in result["b"]["Pods"]] == [uid(p) for p in B_PODS[:3]]
    assert (await preempt(runtime_client, full_args(PREEMPTOR, victims)))["b"][
        "NumPDBViolations"
    ] == 1  # echoed
    # all of a's pods would not do either: 4 − 2 reserved < 3
    result = await preempt(runtime_client, meta_args(PREEMPTOR, {"a": A_PODS}))
    assert result == {}


async def test_victims_that_suffice_are_kept_as_they_are(make_client: ClientFactory) -> None:
    client = make_client([node("a", gpus=4), node("b", gpus=4)], [*A_PODS, *B_PODS])
    victims = {"a": A_PODS[:1], "b": B_PODS[:3]}
    result = await preempt(client, meta_args(PREEMPTOR, victims))
    assert result == {
        "a": {"Pods": [{"UID": uid(A_PODS[0])}], "NumPDBViolations": 0},
        "b": {"Pods": [{"UID": uid(p)} for p in B_PODS[:3]], "NumPDBViolations": 0},
    }


async def test_too_few_victims_and_unknown_victims_free_nothing(make_client: ClientFactory) -> None:
    client = make_client([node("a", gpus=4), node("b", gpus=4)], [*A_PODS, *B_PODS])
    stranger = pod("stranger", gpus=4, uid="not-in-the-snapshot")
    on_other_node = A_PODS[0]  # counted on a, not on b
    victims = {"b": [B_PODS[0], stranger, on_other_node]}
    assert await preempt(client, meta_args(PREEMPTOR, victims)) == {}
    assert await preempt(client, meta_args(PREEMPTOR, {"b": B_PODS[:2]})) == {}


async def test_nodes_without_nameable_victims_or_that_fail_other_predicates_are_dropped(
    make_client: ClientFactory,
) -> None:
    client = make_client(
        [node("a", gpus=4), node("b", gpus=4), node("t4", gpus=4, product="Tesla-T4")],
        [*A_PODS, *B_PODS, pod("t", node_name="t4", gpus=4, phase="Running", priority=10)],
    )
    picky = pod(
        "picky", gpus=3, priority=1000, annotations={"placement-extender.io/gpu-types": "T4"}
    )
    body = json.dumps({
        "Pod": picky, "NodeNameToVictims": None,
        "NodeNameToMetaVictims": {
            "a": {"Pods": [], "NumPDBViolations": 0},  # never answer a node with no victims
            "b": None,
            "t4": {"Pods": [{"UID": ""}], "NumPDBViolations": 0},
            "unknown-node": {"Pods": [{"UID": "x"}], "NumPDBViolations": 0},
        },
    }).encode()  # fmt: skip
    assert await preempt(client, body) == {}
    t4 = {"t4": [pod("t", node_name="t4", gpus=4, phase="Running", priority=10)]}
    assert set(await preempt(client, meta_args(picky, t4))) == {"t4"}
    assert await preempt(client, meta_args(picky, {"b": B_PODS[:3]})) == {}  # not a T4


async def test_nominated_pods_of_higher_priority_count_in_preemption(
    make_client: ClientFactory,
) -> None:
    """Room another preemptor of higher priority waits for on b is not room to preempt for."""
    waiting = pod("waiting", gpus=2, priority=5000, nominated="b")
    client = make_client([node("a", gpus=4), node("b", gpus=4)], [*A_PODS, *B_PODS, waiting])
    assert await preempt(client, meta_args(PREEMPTOR, {"b": B_PODS[:3]})) == {}
    assert set(await preempt(client, meta_args(PREEMPTOR, {"b": B_PODS}))) == set()  # 4 − 2 < 3
    top = pod("top", gpus=3, priority=9000)
    assert set(await preempt(client, meta_args(top, {"b": B_PODS[:3]}))) == {"b"}


async def test_keys_in_another_case_are_read_at_every_level(make_client: ClientFactory) -> None:
    client = make_client([node("a", gpus=4), node("b", gpus=4)], [*A_PODS, *B_PODS])
    body = json.dumps({
        "pod": PREEMPTOR, "nodeNameToVictims": None,
        "NODENAMETOMETAVICTIMS": {
            "b": {"pods": [{"uid": uid(p)} for p in B_PODS[:3]], "numPDBViolations": 2}
        },
    }).encode()  # fmt: skip
    result = await preempt(client, body)
    assert result == {"b": {"Pods": [{"UID": uid(p)} for p in B_PODS[:3]], "NumPDBViolations": 2}}


async def test_bad_bodies_are_400_and_bad_pods_422(make_client: ClientFactory) -> None:
    client = make_client([node("a", gpus=4)])
    bad_bodies = [
        b"", b"[]", b'{"NodeNameToMetaVictims": {}}', b'{"Pod": {}, "NodeNameToVictims": 3}',
        b'{"Pod": {}, "NodeNameToMetaVictims": {"a": {"Pods": [{"UID": 1}]}}}',
    ]  # fmt: skip
    for body in bad_bodies:
        reply = await client.post("/preempt", content=body)
        assert reply.status_code == 400, body
        assert reply.json()["Error"]
    bad = pod("bad", gpus=1, annotations={"placement-extender.io/gpu-memory": "lots"})
    reply = await client.post("/preempt", content=meta_args(bad, {}))
    assert reply.status_code == 422 and "gpu-memory" in reply.json()["Error"]


def recorded_victims(call: dict[str, Any]) -> dict[str, list[str]]:
    request = call["request"]
    if request["NodeNameToMetaVictims"] is not None:
        assert request["NodeNameToVictims"] is None
        meta = request["NodeNameToMetaVictims"]
        return {n: [p["UID"] for p in v["Pods"]] for n, v in meta.items()}
    full = request["NodeNameToVictims"]
    return {n: [p["metadata"]["uid"] for p in v["Pods"]] for n, v in full.items()}


@pytest.mark.parametrize("mode", ["nodecache", "fullnodes"])
async def test_recorded_preemption_args_decode_and_get_the_reply_kube_scheduler_accepted(
    mode: str,
) -> None:
    """The real kube-scheduler's ExtenderPreemptionArgs (tests/fixtures), replayed against the
    cluster it was recorded on: gpu-a's 2 free GPUs are reserved for another pod, so only
    gpu-b's victims make room for the 3-GPU preemptor."""
    call = recorded(f"{mode}-preempt-gpu-preemptor")
    args = decode_preemption_args(json.dumps(call["request"]).encode())
    assert args.Pod is not None and args.Pod.spec.priority == 1000
    victims = recorded_victims(call)
    assert {n: len(v) for n, v in victims.items()} == {"gpu-a": 1, "gpu-b": 3}
    running = [
        pod(f"{n}-{i}", node_name=n, gpus=1, phase="Running", priority=100, uid=u)
        for n, uids in victims.items()
        for i, u in enumerate(uids)
    ] + [
        pod(f"{n}-spared", node_name=n, gpus=1, phase="Running", priority=100)
        for n in victims
    ]  # fmt: skip
    nodes = [node("gpu-a", gpus=4), node("gpu-b", gpus=4)]
    client = client_of(nodes, running, [reserved("gpu-a", 2)])
    reply = await client.post(call["path"], content=json.dumps(call["request"]).encode(),
                              headers=call["headers"])  # fmt: skip
    assert reply.status_code == 200
    assert reply.json() == call["reply_accepted"]


async def test_a_shortfall_the_ledger_causes_is_resolvable_in_filter() -> None:
    """Filter reports it in FailedNodes, so kube-scheduler still considers the node for
    preemption (and asks the preempt verb, which judges it with the ledger)."""
    nodes = [node("a", gpus=4), node("b", gpus=4, product="Tesla-T4")]
    client = client_of(nodes, A_PODS, [reserved("a", 2)])
    picky = pod("picky", gpus=1, annotations={"placement-extender.io/gpu-types": "A10G,unknown"})
    body = json.dumps({"Pod": picky, "Nodes": None, "NodeNames": ["a", "b"]}).encode()
    reply = (await client.post("/filter", content=body)).json()
    assert reply["FailedNodes"] == {"a": "insufficient nvidia.com/gpu (1 requested)"}
    assert list(reply["FailedAndUnresolvableNodes"]) == ["b"]
