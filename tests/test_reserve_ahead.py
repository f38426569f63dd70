"""Reserving ahead (``app.commit.ahead``): a reservation write also holds the node for the next
pending pods of the same workload, which then bind without a write; entries reserved ahead
survive releases and are replaced only by their own pod's decision."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from app.commit.ledger_write import ledger_after
from app.config import load_settings
from app.state.ledger import LedgerError, Reservation, format_ledger, parse_ledger
from app.state.records import PodFacts, pod_facts
from app.state.snapshot import NodeParsing, Snapshot
from app.wire.types import AccountedPod
from tests.builders import P, node, pod
from tests.live import Replica, replicas
from tests.standin import ApiServerStandIn
from tests.test_bind import ledger_of, node_of, pending, writes

CONTAINER_ID = P + "container-id"


def web(name: str, cpu: str = "1", container_id: str = "web") -> dict[str, Any]:
    return {"name": name, "cpu": cpu, "annotations": {CONTAINER_ID: container_id}}


def entries(apiserver: ApiServerStandIn, node_name: str) -> dict[str, bool]:
    """Pod name → whether its entry on the node was reserved ahead."""
    return {e.pod.split("/")[1]: e.ahead for e in ledger_of(apiserver, node_name)}


async def workload(
    apiserver: ApiServerStandIn, replica: Replica, count: int, **spec: Any
) -> list[dict[str, Any]]:
    """``count`` pending pods of one workload, seen by the replica in order."""
    return [await pending(apiserver, replica, **web(f"w{i}", **spec)) for i in range(count)]


def used(replica: Replica) -> float:
    """Binds that found their entry reserved ahead and wrote nothing (the replica's metric)."""
    found = replica.metrics.registry.get_sample_value(
        "placement_extender_reserved_ahead_total", {"event": "used"}
    )
    return found or 0.0


async def settle_on(replica: Replica, pods: list[dict[str, Any]], node_name: str) -> None:
    """Bind ``pods`` to the node one by one: the workload's pods are seen landing there."""
    for created in pods:
        assert await replica.bind(created, node_name) == ""


async def test_a_write_reserves_the_node_ahead_for_the_next_pods_of_the_workload(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1) as [replica]:
        pods = await workload(apiserver, replica, 7)
        await pending(apiserver, replica, **web("other", container_id="api"))
        await pending(apiserver, replica, **web("bigger", cpu="2"))
        await settle_on(replica, pods[:1], "n")
        assert entries(apiserver, "n") == {"w0": False}  # no sign yet that w* lands here
        await settle_on(replica, pods[1:2], "n")
        # the next four of the same namespace, container ID and requests, in the order seen
        assert entries(apiserver, "n") == {
            "w0": False, "w1": False, "w2": True, "w3": True, "w4": True, "w5": True
        }  # fmt: skip


async def test_only_a_node_the_workload_keeps_landing_on_is_reserved_ahead(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a", cpu="16"))
    apiserver.add_node(node("b", cpu="16"))
    async with replicas(apiserver, 1) as [replica]:
        pods = await workload(apiserver, replica, 4)
        await settle_on(replica, pods[:1], "a")
        await settle_on(replica, pods[1:2], "b")  # its previous pod went to a
        assert entries(apiserver, "b") == {"w1": False}
        await settle_on(replica, pods[2:3], "b")
        assert entries(apiserver, "b") == {"w1": False, "w2": False, "w3": True}


async def test_a_pod_reserved_ahead_binds_without_a_write(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1) as [replica]:
        pods = await workload(apiserver, replica, 4)
        await settle_on(replica, pods[:2], "n")
        before = writes(apiserver)
        await settle_on(replica, pods[2:], "n")
        assert writes(apiserver) == before
        assert node_of(apiserver, "w2") == node_of(apiserver, "w3") == "n"
        assert used(replica) == 2


async def test_another_replica_relies_on_what_it_has_seen_reserved_ahead(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 2) as [first, second]:
        pods = await workload(apiserver, first, 3)
        await settle_on(first, pods[:2], "n")
        uid = pods[2]["metadata"]["uid"]
        await second.changes.until(lambda: second.snapshot.has_reservations(uid))
        before = writes(apiserver)
        assert await second.bind(pods[2], "n") == ""
        assert writes(apiserver) == before and used(second) == 1


async def test_reserving_ahead_takes_only_what_is_left_free(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("n", cpu="4"))
    async with replicas(apiserver, 1) as [replica]:
        pods = await workload(apiserver, replica, 6)
        await settle_on(replica, pods[:2], "n")
        assert entries(apiserver, "n") == {"w0": False, "w1": False, "w2": True, "w3": True}
        # the pods reserved ahead still find the node; another pod does not
        other = await pending(apiserver, replica, **web("other", container_id="api"))
        assert "no longer fits" in await replica.bind(other, "n")
        assert await replica.bind(pods[2], "n") == ""


async def test_a_pod_reserved_elsewhere_is_not_reserved_again(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a", cpu="16"))
    apiserver.add_node(node("b", cpu="16"))
    async with replicas(apiserver, 1) as [replica]:
        pods = await workload(apiserver, replica, 8)
        await settle_on(replica, pods[:2], "a")  # holds w2..w5 on a
        await settle_on(replica, pods[6:8], "b")
        assert entries(apiserver, "b") == {"w6": False, "w7": False}


async def test_a_refused_binding_keeps_the_entry_reserved_ahead(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1) as [replica]:
        pods = await workload(apiserver, replica, 3)
        await settle_on(replica, pods[:2], "n")
        before = writes(apiserver)
        apiserver.fail_next("POST", r"/pods/w2/binding$", status=422)
        assert "422" in await replica.bind(pods[2], "n")
        # nothing to release: the entry stands until it expires or w2 settles, and w2's retry
        # still binds without a write
        assert writes(apiserver) == before and entries(apiserver, "n")["w2"] is True
        assert await replica.bind(pods[2], "n") == ""
        assert writes(apiserver) == before


async def test_an_entry_too_close_to_expiry_is_replaced_by_a_decision(
    apiserver: ApiServerStandIn,
) -> None:
    """Relied on only while more than the bind budget plus the clock-skew margin is left."""
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1, bind={"reserve_ahead_ttl_seconds": 5}) as [replica]:
        pods = await workload(apiserver, replica, 3)
        await settle_on(replica, pods[:2], "n")
        assert entries(apiserver, "n")["w2"] is True
        before = writes(apiserver)
        assert await replica.bind(pods[2], "n") == ""
        assert writes(apiserver) == before + 1 and used(replica) == 0
        # one entry per pod: the decision replaced the guess
        assert [e.ahead for e in ledger_of(apiserver, "n") if e.pod == "default/w2"] == [False]


async def test_reserving_ahead_can_be_turned_off(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1, bind={"reserve_ahead": 0}) as [replica]:
        pods = await workload(apiserver, replica, 4)
        await settle_on(replica, pods[:2], "n")
        assert entries(apiserver, "n") == {"w0": False, "w1": False}


async def test_gpu_pods_are_not_reserved_ahead_when_their_class_scores_no_affinity(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("g", gpus=8, product="NVIDIA-A10G", cpu="16"))
    async with replicas(apiserver, 1) as [replica]:
        pods = [
            await pending(apiserver, replica, name=f"t{i}", gpus=1, annotations={CONTAINER_ID: "t"})
            for i in range(4)
        ]
        await settle_on(replica, pods[:2], "g")
        assert [e.ahead for e in ledger_of(apiserver, "g")] == [False, False]


# ---- the pieces, alone ----------------------------------------------------------------------


def entry(uid: str, *, ahead: bool = False) -> Reservation:
    return Reservation(uid, f"ns/{uid}", (("cpu", 1000),), 100.0, ahead=ahead)


def test_entries_reserved_ahead_round_trip_under_their_own_key() -> None:
    ledger = (entry("u1"), entry("u2", ahead=True))
    text = format_ledger(ledger)
    assert set(msgspec.json.decode(text)) == {"u1", "u2~ahead"}
    assert parse_ledger(text) == ledger


# API strings are valid UTF-8 (no lone surrogates); pod UIDs never contain "~"
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
uids = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="~"), min_size=1, max_size=12
)
entries_ = st.lists(
    st.builds(
        Reservation,
        pod_uid=uids,
        pod=texts,
        requests=st.lists(
            st.tuples(texts.filter(bool), st.integers(1, 2**53)),
            unique_by=lambda r: r[0],
            max_size=3,
        ).map(lambda r: tuple(sorted(r))),
        expires_at=st.integers(0, 2**31).map(float),
        ahead=st.booleans(),
    ),
    unique_by=lambda e: e.key,
    max_size=6,
)


@given(entries_)
def test_any_ledger_round_trips(entries: list[Reservation]) -> None:
    assert sorted(parse_ledger(format_ledger(entries)), key=lambda e: e.key) == sorted(
        entries, key=lambda e: e.key
    )


@given(st.text(max_size=80) | st.from_regex(r'\{"[a-z~]{0,8}": ?\{.{0,30}\}\}', fullmatch=True))
def test_any_annotation_reads_as_a_ledger_or_a_clear_error(text: str) -> None:
    """Whatever another writer left in the annotation: entries, or LedgerError (the node is then
    not used and never overwritten), never another exception."""
    try:
        parse_ledger(text)
    except LedgerError as exc:
        assert str(exc).startswith("reservation ledger is")


def test_a_release_drops_only_the_pods_own_entry_not_one_reserved_ahead() -> None:
    ledger = (entry("u1"), entry("u2", ahead=True))
    after = parse_ledger(
        ledger_after(ledger, remove={"u1", "u2"}, now=0.0, settled=lambda uid: False)
    )
    assert after == (entry("u2", ahead=True),)


def test_a_decision_replaces_the_pods_entry_reserved_ahead() -> None:
    ledger = (entry("u1", ahead=True), entry("u2", ahead=True))
    after = parse_ledger(ledger_after(ledger, add=[entry("u1")], now=0.0, settled=lambda u: False))
    assert after == (entry("u1"), entry("u2", ahead=True))


def test_expired_or_settled_entries_reserved_ahead_are_pruned() -> None:
    ledger = (entry("u1", ahead=True), entry("u2", ahead=True))
    after = ledger_after(ledger, now=200.0, settled=lambda uid: False)
    assert parse_ledger(after) == ()
    after = ledger_after(ledger, now=0.0, settled=lambda uid: uid == "u1")
    assert parse_ledger(after) == (entry("u2", ahead=True),)


def _facts(**spec: Any) -> PodFacts:
    """As the pod watch reads a pod."""
    keys = NodeParsing.from_settings(load_settings()).keys
    return pod_facts(msgspec.json.decode(msgspec.json.encode(pod(**spec)), type=AccountedPod), keys)


def test_a_pending_pods_container_id_is_read_from_annotation_or_label() -> None:
    assert _facts(name="a", annotations={CONTAINER_ID: "x"}).container_id == "x"
    assert _facts(name="b", labels={CONTAINER_ID: "y"}).container_id == "y"
    assert _facts(name="c").container_id == ""
    bound = _facts(name="d", node_name="n", annotations={CONTAINER_ID: "x"})
    assert bound.container_id == ""  # bound pods do not need it


def test_waiting_pods_of_a_workload_keep_the_order_first_seen() -> None:
    snapshot = Snapshot(NodeParsing.from_settings(load_settings()))
    pods = [_facts(name=f"w{i}", uid=f"u{i}", annotations={CONTAINER_ID: "x"}) for i in range(4)]
    for facts in pods:
        snapshot.set_pod(facts)
    snapshot.set_pod(_facts(name="w0", uid="u0", annotations={CONTAINER_ID: "x"}))  # an update
    snapshot.set_pod(_facts(name="o", uid="o", annotations={CONTAINER_ID: "other"}))
    assert [p.name for p in snapshot.waiting_like(pods[1])] == ["w0", "w2", "w3"]
    fork = snapshot.fork()
    fork.set_pod(_facts(name="w2", uid="u2", node_name="n"))  # bound in the fork only
    snapshot.delete_pod("u3")
    assert [p.name for p in fork.waiting_like(pods[1])] == ["w0", "w3"]
    assert [p.name for p in snapshot.waiting_like(pods[1])] == ["w0", "w2"]
