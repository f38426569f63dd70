"""POST /bind against the API-server stand-in: the CAS reservation, the Binding, every failure
mode, and the stale-watch race that must never over-commit."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from app.kube import KubeApi
from app.state.ledger import Reservation, parse_ledger
from tests.builders import P, lease, node, pod
from tests.live import Replica, replicas
from tests.standin import ApiServerStandIn

NODE_GET = ("GET", "/api/v1/nodes/{name}")
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
LEASE_CREATE = ("POST", LEASES)
LEASE_GET = ("GET", LEASES + "/{name}")
LEASE_PATCH = ("PATCH", LEASES + "/{name}")
BINDING = ("POST", "/api/v1/namespaces/{namespace}/pods/{name}/binding")
LEDGER = P + "reservations"


def ledger_of(apiserver: ApiServerStandIn, name: str) -> list[Reservation]:
    """The entries of node ``name``'s ledger Lease (none if it has no Lease)."""
    found = apiserver.get_lease("default", name)
    if found is None:
        return []
    return list(parse_ledger(found["metadata"].get("annotations", {}).get(LEDGER)))


def writes(apiserver: ApiServerStandIn) -> int:
    """Ledger writes so far (Lease creates and patches)."""
    return apiserver.request_count(*LEASE_CREATE) + apiserver.request_count(*LEASE_PATCH)


def node_of(apiserver: ApiServerStandIn, name: str) -> str | None:
    found = apiserver.get_pod("default", name)
    assert found is not None
    return found["spec"].get("nodeName")


async def pending(apiserver: ApiServerStandIn, replica: Replica, **spec: Any) -> dict[str, Any]:
    """Create a pending pod and wait until the replica's snapshot has it."""
    created = apiserver.add_pod(pod(**spec))
    name = created["metadata"]["name"]
    await replica.changes.until(lambda: replica.snapshot.pod_named("default", name) is not None)
    return created


CALLS = (NODE_GET, LEASE_GET, LEASE_CREATE, LEASE_PATCH, BINDING)


async def test_happy_path_is_one_ledger_write_and_one_binding(apiserver: ApiServerStandIn) -> None:
    created = apiserver.add_node(node("g", gpus=4, product="NVIDIA-A10G"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", gpus=1, cpu="1")
        before = {c: apiserver.request_count(*c) for c in CALLS}
        assert await replica.bind(worker, "g") == ""
        after = {c: apiserver.request_count(*c) - before[c] for c in before}
        # the node's first bind creates its ledger Lease
        assert after == {NODE_GET: 0, LEASE_GET: 0, LEASE_CREATE: 1, LEASE_PATCH: 0, BINDING: 1}
        assert node_of(apiserver, "w") == "g"
        [entry] = ledger_of(apiserver, "g")
        assert (
            entry.pod_uid == worker["metadata"]["uid"]
            and dict(entry.requests)["nvidia.com/gpu"] == 1
        )
        stored = apiserver.get_lease("default", "g")
        assert stored is not None
        assert stored["metadata"]["labels"] == {P + "ledger": "node"}
        uid = created["metadata"]["uid"]
        owner = {"apiVersion": "v1", "kind": "Node", "name": "g", "uid": uid}
        assert stored["metadata"]["ownerReferences"] == [owner]  # goes when the node goes
        stored_node = apiserver.get_node("g")
        assert stored_node is not None  # the Node itself is never written:
        assert stored_node["metadata"] == created["metadata"]
        # idempotent: the same bind again succeeds and writes nothing
        assert await replica.bind(worker, "g") == ""
        assert writes(apiserver) - before[LEASE_CREATE] - before[LEASE_PATCH] == 1
        # later binds patch the Lease the replica has seen, without reading it first
        second = await pending(apiserver, replica, name="w2", gpus=1, cpu="1")
        assert await replica.bind(second, "g") == ""
        after = {c: apiserver.request_count(*c) - before[c] for c in before}
        assert after == {NODE_GET: 0, LEASE_GET: 0, LEASE_CREATE: 1, LEASE_PATCH: 1, BINDING: 2}


async def test_binding_carries_the_pod_uid(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        assert await replica.bind(worker, "a") == ""
        [binding] = [r for r in apiserver.requests if r.template == BINDING[1]]
        body = binding.json()
        assert body["metadata"]["uid"] == worker["metadata"]["uid"]
        assert body["target"] == {"apiVersion": "v1", "kind": "Node", "name": "a"}


async def test_pod_that_no_longer_fits_gets_an_error_naming_the_resource(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("gpu-a10g-1", gpus=1, product="NVIDIA-A10G"))
    apiserver.add_pod(pod("taken", node_name="gpu-a10g-1", gpus=1, phase="Running"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", gpus=1)
        error = await replica.bind(worker, "gpu-a10g-1")
        assert error == "node gpu-a10g-1 no longer fits: nvidia.com/gpu 0 free, 1 requested"
        assert node_of(apiserver, "w") is None and ledger_of(apiserver, "gpu-a10g-1") == []


async def test_bound_elsewhere_missing_pod_and_wrong_uid_are_clear_errors(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a"))
    apiserver.add_node(node("b"))
    apiserver.add_pod(pod("elsewhere", node_name="b", cpu="1"))
    async with replicas(apiserver, 1) as [replica]:
        await replica.changes.until(
            lambda: replica.snapshot.pod_named("default", "elsewhere") is not None
        )
        elsewhere = apiserver.get_pod("default", "elsewhere")
        assert elsewhere is not None
        assert "already bound to node b" in await replica.bind(elsewhere, "a")
        ghost = pod("ghost", uid="ghost-uid")
        assert (
            await replica.bind(ghost, "a")
            == 'reading the pod: 404 (NotFound): pods "ghost" not found'
        )
        worker = await pending(apiserver, replica, name="w", cpu="1")
        stale = {**worker, "metadata": {**worker["metadata"], "uid": "old-uid"}}
        assert "was deleted and re-created" in await replica.bind(stale, "a")
        assert ledger_of(apiserver, "a") == []


async def test_binding_refused_releases_the_reservation(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        apiserver.fail_next("POST", r"/pods/w/binding", status=404)
        error = await replica.bind(worker, "a")
        assert error.startswith("binding the pod: 404")
        assert ledger_of(apiserver, "a") == []  # released


async def test_binding_answered_with_a_server_error_keeps_the_reservation(
    apiserver: ApiServerStandIn,
) -> None:
    """A 5xx is no refusal: kube-apiserver also answers so when etcd timed out on a write it may
    still apply. Released, the pod could turn out bound with nothing counting it."""
    apiserver.add_node(node("a"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        apiserver.fail_next("POST", r"/pods/w/binding", status=500)
        error = await replica.bind(worker, "a")
        assert error.startswith("binding the pod: 500") and "outcome is unknown" in error
        assert [e.pod_uid for e in ledger_of(apiserver, "a")] == [worker["metadata"]["uid"]]
        assert replica.metrics.binds.labels("unknown_outcome")._value.get() == 1


async def test_binding_already_assigned_to_this_node_is_success(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a"))
    async with replicas(apiserver, 1) as [replica]:
        apiserver.pause_watches("pods")
        worker = apiserver.add_pod(pod("w", cpu="1"))
        # bound to "a" by someone else; this replica's watch has not delivered the pod at all
        other = KubeApi(apiserver.api_client())
        uid = worker["metadata"]["uid"]
        bound = await other.create_binding(
            namespace="default", name="w", uid=uid, node="a", timeout=2
        )
        await other.aclose()
        assert bound.status == 201
        assert await replica.bind(worker, "a") == ""
        apiserver.resume_watches("pods")


async def test_binding_already_assigned_elsewhere_is_an_error_and_releases(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a"))
    apiserver.add_node(node("b"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        apiserver.pause_watches("pods")
        apiserver.update_pod({**worker, "spec": {**worker["spec"], "nodeName": "b"}})
        error = await replica.bind(worker, "a")
        assert 'is already assigned to node "b"' in error
        assert ledger_of(apiserver, "a") == []
        apiserver.resume_watches("pods")


async def test_already_assigned_to_a_node_that_cannot_be_read_keeps_the_reservation(
    apiserver: ApiServerStandIn,
) -> None:
    """Another attempt may have bound the pod here after ours replaced its entry: without the
    pod's node, releasing could leave the pod uncounted on this node."""
    apiserver.add_node(node("a"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        apiserver.pause_watches("pods")
        apiserver.update_pod({**worker, "spec": {**worker["spec"], "nodeName": "a"}})
        apiserver.fail_next("GET", r"/namespaces/default/pods/w$", status=500)
        error = await replica.bind(worker, "a")
        assert 'is already assigned to node "a"' in error
        assert "could not be read" in error and "kept until it expires" in error
        assert [e.pod_uid for e in ledger_of(apiserver, "a")] == [worker["metadata"]["uid"]]
        apiserver.resume_watches("pods")


async def test_binding_without_answer_keeps_the_reservation(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a"))
    async with replicas(apiserver, 1, bind={"request_timeout_seconds": 0.3}) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        apiserver.fail_next("POST", r"/pods/w/binding", hang_seconds=2)
        error = await replica.bind(worker, "a")
        assert "outcome is unknown" in error and "kept until it expires" in error
        assert [e.pod_uid for e in ledger_of(apiserver, "a")] == [worker["metadata"]["uid"]]


async def test_conflicts_retry_from_a_fresh_read(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a"))
    apiserver.add_lease(lease("a"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        await replica.changes.until(lambda: "a" in replica.snapshot.ledgers)
        for _ in range(2):
            apiserver.fail_next("PATCH", r"/leases/a", status=409)
        gets = apiserver.request_count(*LEASE_GET)
        assert await replica.bind(worker, "a") == ""
        assert apiserver.request_count(*LEASE_GET) - gets == 2  # re-read after each conflict
        assert replica.metrics.cas_conflicts._value.get() == 2


async def test_a_lease_created_by_another_writer_first_is_read_and_patched(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a", cpu="2"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="2")
        apiserver.pause_watches("leases")  # this replica will not hear of the other's Lease
        other = Reservation("other-pod", "default/other", (("cpu", 1000),), time.time() + 60)
        apiserver.add_lease(lease("a", [other]))
        error = await replica.bind(worker, "a")
        # its create met AlreadyExists; it read the Lease and decided again: 1 CPU is left
        assert error == "node a no longer fits: cpu 1 free, 2 requested"
        assert apiserver.request_count(*LEASE_CREATE) == 1
        assert apiserver.request_count(*LEASE_GET) == 1
        assert [e.pod_uid for e in ledger_of(apiserver, "a")] == ["other-pod"]
        apiserver.resume_watches("leases")


async def test_an_unreadable_ledger_is_never_overwritten(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a"))
    apiserver.add_lease(lease("a", text="{broken"))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        await replica.changes.until(lambda: "a" in replica.snapshot.ledgers)
        assert replica.snapshot.nodes["a"].problems  # filter keeps pods off it
        error = await replica.bind(worker, "a")
        assert error.startswith("node a: reservation ledger is unreadable")
        assert writes(apiserver) == 0 and node_of(apiserver, "w") is None


async def test_budget_exhaustion_is_a_clear_error(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a"))
    settings = {
        "bind": {"budget_seconds": 0.3, "backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.1}
    }
    async with replicas(apiserver, 1, **settings) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="1")
        for _ in range(50):
            apiserver.fail_next("POST", r"/leases$", status=409)
        error = await replica.bind(worker, "a")
        assert error.startswith("bind budget of 0.3s exhausted")
        assert "conflicts)" in error  # it names the attempts it made
        assert node_of(apiserver, "w") is None


async def test_expired_entries_are_pruned_by_the_next_writer(apiserver: ApiServerStandIn) -> None:
    past = time.time() - 5
    old = Reservation("crashed-pod", "default/crashed", (("cpu", 8000),), past)
    apiserver.add_node(node("a", cpu="8"))
    apiserver.add_lease(lease("a", [old]))
    async with replicas(apiserver, 1) as [replica]:
        worker = await pending(apiserver, replica, name="w", cpu="8")
        assert await replica.bind(worker, "a") == ""  # the expired entry held nothing
        assert [e.pod_uid for e in ledger_of(apiserver, "a")] == [worker["metadata"]["uid"]]


async def test_crash_between_reservation_and_binding_returns_capacity_on_expiry(
    apiserver: ApiServerStandIn,
) -> None:
    now = [1_000_000.0]
    apiserver.add_node(node("a", cpu="8"))
    async with replicas(apiserver, 1, bind={"reservation_ttl_seconds": 60}) as [crashed]:
        first = await pending(apiserver, crashed, name="first", cpu="8")
        # the crashed replica reserved, then died before its Binding
        apiserver.fail_next("POST", r"/pods/first/binding", status=500)
        crashed.binder.wall_clock = lambda: now[0]
        crashed.binder._release = _no_release  # type: ignore[method-assign]
        assert (await crashed.bind(first, "a")).startswith("binding the pod: 500")
    assert len(ledger_of(apiserver, "a")) == 1
    later = Replica(apiserver, clock=lambda: now[0])
    await later.start()
    try:
        second = await pending(apiserver, later, name="second", cpu="8")
        assert "no longer fits" in await later.bind(second, "a")
        now[0] += 61  # the reservation expires
        assert await later.bind(second, "a") == ""
        assert [e.pod_uid for e in ledger_of(apiserver, "a")] == [second["metadata"]["uid"]]
    finally:
        await later.stop()


async def _no_release(*_: Any) -> None:
    """Stands for a process that died: nothing runs after the failed Binding."""


async def test_stale_watch_never_over_commits(apiserver: ApiServerStandIn) -> None:
    """B reserves the last GPUs of X, binds, sees its pod bound and stops counting the
    reservation; A's watch has not delivered B's pod yet. A must still see X as full."""
    apiserver.add_node(node("x", gpus=4, product="NVIDIA-A10G"))
    apiserver.add_pod(pod("old", node_name="x", gpus=2, phase="Running"))
    async with replicas(apiserver, 2) as [a, b]:
        pod_b = await pending(apiserver, b, name="pod-b", gpus=2)
        pod_a = await pending(apiserver, a, name="pod-a", gpus=1)
        await a.changes.until(lambda: a.snapshot.pod_named("default", "pod-b") is not None)
        apiserver.pause_watches("pods")  # A (and B) stop hearing about pods
        assert await b.bind(pod_b, "x") == ""
        assert b.snapshot.is_bound(pod_b["metadata"]["uid"])  # B counts its pod, not the entry
        # A hears the ledger (Lease watch) but not the binding (pod watch paused)
        await a.changes.until(lambda: len(a.snapshot.reservations_on("x")) == 1)
        assert not a.snapshot.is_bound(pod_b["metadata"]["uid"])
        assert a.snapshot.free("x")[4] == 0 and b.snapshot.free("x")[4] == 0
        error = await a.bind(pod_a, "x")
        assert error == "node x no longer fits: nvidia.com/gpu 0 free, 1 requested"
        apiserver.resume_watches("pods")
        await a.changes.until(lambda: a.snapshot.is_bound(pod_b["metadata"]["uid"]))
        assert a.snapshot.free("x")[4] == 0  # now counted as the pod itself
        assert node_of(apiserver, "pod-a") is None


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
async def test_three_replicas_bind_400_pods_into_room_for_200(
    apiserver: ApiServerStandIn, kind: str
) -> None:
    """Scheduler-like loop per pod: filter on its replica, bind to the best node, retry on an
    error (as kube-scheduler requeues), until bound or no node fits."""

    from app.wire.codec import decode_extender_args

    for i in range(10):
        if kind == "cpu":
            apiserver.add_node(node(f"n{i}", cpu="20", memory="100Gi"))
        else:
            apiserver.add_node(node(f"n{i}", cpu="100", gpus=20, product="NVIDIA-A10G"))
    names = [f"n{i}" for i in range(10)]
    spec: dict[str, Any] = {"cpu": "1"} if kind == "cpu" else {"gpus": 1, "cpu": "100m"}
    # The stand-in is a threaded Python server on two shared cores: give API calls time enough
    # that no Binding ends with an unknown outcome, which would hold capacity until its TTL.
    bind = {"budget_seconds": 20.0, "request_timeout_seconds": 5.0}
    in_flight = asyncio.Semaphore(48)  # binds in flight at once across the three schedulers
    async with replicas(apiserver, 3, bind=bind) as group:
        pods = [apiserver.add_pod(pod(f"p{i}", **spec)) for i in range(400)]
        for replica in group:
            await replica.changes.until(lambda r=replica: len(r.snapshot.pods) == 400)

        async def schedule(index: int, body: dict[str, Any]) -> str:
            async with in_flight:
                return await schedule_one(group[index % 3], body)

        async def schedule_one(replica: Replica, body: dict[str, Any]) -> str:
            for _ in range(40):
                request = json.dumps({"Pod": body, "Nodes": None, "NodeNames": names}).encode()
                kept = json.loads(replica.extender.filter(decode_extender_args(request)))[
                    "NodeNames"
                ]
                if not kept:
                    return "unschedulable"
                scores = json.loads(replica.extender.prioritize(decode_extender_args(request)))
                best = max((s for s in scores if s["Host"] in kept), key=lambda s: s["Score"])
                if await replica.bind(body, best["Host"]) == "":
                    return "bound"
            return "gave up"

        outcomes = await asyncio.gather(*(schedule(i, p) for i, p in enumerate(pods)))
        assert outcomes.count("bound") == 200 and outcomes.count("unschedulable") == 200
        column = "cpu" if kind == "cpu" else "nvidia.com/gpu"
        per_node: dict[str, int] = {}
        for p in pods:
            where = node_of(apiserver, p["metadata"]["name"])
            if where:
                per_node[where] = per_node.get(where, 0) + 1
        assert per_node == {n: 20 for n in names}, column  # exactly full, never over
        conflicts = sum(r.metrics.cas_conflicts._value.get() for r in group)
        retries = sum(r.metrics.bind_retries._value.get() for r in group)
        print(f"\n{kind}: 200 bound; CAS conflicts {conflicts:.0f}, retries {retries:.0f}")


async def test_binds_waiting_for_one_node_share_one_write(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a", cpu="16"))
    async with replicas(apiserver, 1) as [replica]:
        workers = [await pending(apiserver, replica, name=f"w{i}", cpu="1") for i in range(8)]
        before = writes(apiserver)
        errors = await asyncio.gather(*(replica.bind(w, "a") for w in workers))
        assert errors == [""] * 8
        assert writes(apiserver) - before == 1  # group commit
        assert replica.metrics.cas_conflicts._value.get() == 0
        assert len(ledger_of(apiserver, "a")) == 8


async def test_a_shared_write_admits_in_arrival_order_within_capacity(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a", cpu="4"))
    async with replicas(apiserver, 1) as [replica]:
        workers = [await pending(apiserver, replica, name=f"w{i}", cpu="1500m") for i in range(3)]
        errors = await asyncio.gather(*(replica.bind(w, "a") for w in workers))
        assert errors[:2] == ["", ""]
        assert errors[2] == "node a no longer fits: cpu 1 free, 1500m requested"
        assert len(ledger_of(apiserver, "a")) == 2


@pytest.mark.parametrize(("prune_after", "entries"), [(0.0, 1), (10.0, 2)])
async def test_entries_of_pods_seen_bound_long_enough_are_pruned(
    apiserver: ApiServerStandIn, prune_after: float, entries: int
) -> None:
    apiserver.add_node(node("a", cpu="8"))
    async with replicas(apiserver, 1, bind={"prune_bound_after_seconds": prune_after}) as [r]:
        first = await pending(apiserver, r, name="first", cpu="1")
        second = await pending(apiserver, r, name="second", cpu="1")
        assert await r.bind(first, "a") == ""
        await r.changes.until(lambda: r.snapshot.is_bound(first["metadata"]["uid"]))
        assert await r.bind(second, "a") == ""
        kept = [e.pod_uid for e in ledger_of(apiserver, "a")]
        assert len(kept) == entries and second["metadata"]["uid"] in kept
