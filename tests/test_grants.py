"""Grants (``app.commit.grants``): a reservation write also holds room on the node for this
replica's next binds there, of any workload, which take it in memory and write nothing; other
readers count the grant whole, and the holder's next write turns what was taken into entries
of their pods."""

from __future__ import annotations

from app.state.ledger import Reservation, format_ledger, parse_ledger
from tests.builders import node
from tests.live import replicas
from tests.standin import ApiServerStandIn
from tests.test_bind import ledger_of, node_of, pending, writes


def grants_of(apiserver: ApiServerStandIn, name: str) -> list[Reservation]:
    return [e for e in ledger_of(apiserver, name) if e.grant]


def cpu(entry: Reservation) -> int:
    return dict(entry.requests).get("cpu", 0)


async def test_a_second_bind_to_a_node_grants_room_that_later_binds_take_without_writing(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1, bind={"grant_pods": 3}) as [replica]:
        pods = [await pending(apiserver, replica, name=f"p{i}", cpu="1") for i in range(6)]
        assert await replica.bind(pods[0], "n") == ""
        assert grants_of(apiserver, "n") == []  # no sign yet that pods keep landing here
        assert await replica.bind(pods[1], "n") == ""
        [grant] = grants_of(apiserver, "n")
        assert cpu(grant) == 3000 and grant.pod_uid == replica.snapshot.grant_holder
        before = writes(apiserver)
        for created in pods[2:5]:
            assert await replica.bind(created, "n") == ""
        assert writes(apiserver) == before  # three binds, no write
        assert [node_of(apiserver, f"p{i}") for i in range(5)] == ["n"] * 5
        assert await replica.bind(pods[5], "n") == ""  # the grant is used up: a write
        assert writes(apiserver) == before + 1
        taken = {e.pod_uid for e in ledger_of(apiserver, "n") if not e.grant}
        # what the old grant's binds took is written as their own entries until they settle
        assert {p["metadata"]["uid"] for p in pods[2:6]} <= taken


async def test_another_replica_counts_a_grant_whole(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("n", cpu="4"))
    async with replicas(apiserver, 2, bind={"grant_pods": 2}) as [holder, other]:
        first = await pending(apiserver, holder, name="first", cpu="1")
        second = await pending(apiserver, holder, name="second", cpu="1")
        third = await pending(apiserver, other, name="third", cpu="1")
        assert await holder.bind(first, "n") == ""
        assert await holder.bind(second, "n") == ""  # 2 bound, a grant of 2 more
        await other.changes.until(lambda: len(other.snapshot.reservations_on("n")) > 0)
        assert "no longer fits" in await other.bind(third, "n")
        # the holder itself may take from its grant
        assert await holder.bind(third, "n") == ""


async def test_a_refused_binding_gives_its_room_back_to_the_grant(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1, bind={"grant_pods": 1}) as [replica]:
        pods = [await pending(apiserver, replica, name=f"p{i}", cpu="1") for i in range(4)]
        assert await replica.bind(pods[0], "n") == ""
        assert await replica.bind(pods[1], "n") == ""  # a grant of one pod
        before = writes(apiserver)
        apiserver.fail_next("POST", r"/pods/p2/binding$", status=422)
        assert (await replica.bind(pods[2], "n")).startswith("binding the pod: 422")
        assert replica.snapshot.grant_taken("n") == {}
        assert await replica.bind(pods[3], "n") == ""  # the room came back: no write
        assert writes(apiserver) == before


async def test_an_unknown_outcome_keeps_the_room_taken(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1, bind={"grant_pods": 2}) as [replica]:
        pods = [await pending(apiserver, replica, name=f"p{i}", cpu="1") for i in range(3)]
        assert await replica.bind(pods[0], "n") == ""
        assert await replica.bind(pods[1], "n") == ""
        apiserver.fail_next("POST", r"/pods/p2/binding$", status=500)
        assert "outcome is unknown" in await replica.bind(pods[2], "n")
        assert pods[2]["metadata"]["uid"] in replica.snapshot.grant_taken("n")


async def test_grants_can_be_turned_off(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("n", cpu="16"))
    async with replicas(apiserver, 1, bind={"grant_pods": 0}) as [replica]:
        pods = [await pending(apiserver, replica, name=f"p{i}", cpu="1") for i in range(3)]
        for created in pods:
            assert await replica.bind(created, "n") == ""
        assert grants_of(apiserver, "n") == []
        assert writes(apiserver) == 3


def test_a_grant_round_trips_and_reads_as_an_entry_to_older_readers() -> None:
    grant = Reservation("holder", "grant", (("cpu", 3000),), 100.0, grant=True)
    text = format_ledger([grant])
    assert '"holder~grant"' in text
    assert parse_ledger(text) == (grant,)
