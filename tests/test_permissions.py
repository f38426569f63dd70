"""The RBAC rules in app/permissions.py are exactly the API calls the extender makes: every
request the stand-in receives in a full run maps to a listed verb, and every listed verb is used.
(The chart's ClusterRole and Role are checked against the same list in test_chart.py.)"""

from __future__ import annotations

from app.permissions import REQUIRED
from tests.builders import node, pod
from tests.live import replicas
from tests.standin import ApiServerStandIn
from tests.test_wake import rings, until

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
CAPACITIES = "/apis/storage.k8s.io/v1/namespaces/{namespace}/csistoragecapacities"
VERBS = {
    ("GET", "/api/v1/nodes"): ("nodes", "list"),
    ("WATCH", "/api/v1/nodes"): ("nodes", "watch"),
    ("GET", "/api/v1/nodes/{name}"): ("nodes", "get"),
    ("GET", "/api/v1/pods"): ("pods", "list"),
    ("WATCH", "/api/v1/pods"): ("pods", "watch"),
    ("GET", "/api/v1/namespaces/{namespace}/pods/{name}"): ("pods", "get"),
    ("POST", "/api/v1/namespaces/{namespace}/pods/{name}/binding"): ("pods/binding", "create"),
    ("GET", LEASES): ("leases", "list"),
    ("WATCH", LEASES): ("leases", "watch"),
    ("POST", LEASES): ("leases", "create"),
    ("GET", LEASES + "/{name}"): ("leases", "get"),
    ("PATCH", LEASES + "/{name}"): ("leases", "patch"),
    ("GET", CAPACITIES + "/{name}"): ("csistoragecapacities", "get"),
    ("POST", CAPACITIES): ("csistoragecapacities", "create"),
    ("PATCH", CAPACITIES + "/{name}"): ("csistoragecapacities", "patch"),
}


async def test_every_call_is_a_listed_permission_and_every_permission_is_used(
    apiserver: ApiServerStandIn,
) -> None:
    apiserver.add_node(node("a", cpu="4"))
    wake = {"min_interval_seconds": 0.05}
    async with replicas(apiserver, 1, jitters=[0.0], wake=wake) as [replica]:
        apiserver.pause_watches("pods")  # the replica has not seen this pod: it GETs it
        apiserver.pause_watches("nodes")  # nor this node: it GETs it
        apiserver.add_node(node("b", cpu="4"))
        unseen = apiserver.add_pod(pod("unseen", cpu="1"))
        apiserver.fail_next("POST", r"/leases$", status=409)  # created first by another: GET
        assert await replica.bind(unseen, "b") == ""  # ...and then create it
        other = apiserver.add_pod(pod("other", cpu="1"))
        await replica.changes.until(lambda: "b" in replica.snapshot.ledgers)
        assert await replica.bind(other, "b") == ""  # the Lease it has seen: PATCH
        apiserver.resume_watches("pods")
        apiserver.resume_watches("nodes")
        assert replica.wake is not None
        for sent in (1, 2):  # the wake-up object: created, then patched
            replica.wake.freed("b")
            await until(lambda: rings(replica)["sent"] == sent)  # noqa: B023
    used = {VERBS[(r.method if "watch=" not in r.target else "WATCH", r.template)]
            for r in apiserver.requests}  # fmt: skip
    listed = {(rule.resource, verb) for rule in REQUIRED for verb in rule.verbs}
    assert used == listed
