"""What the real API server does to the extender: a restart, pods that change under a bind,
and pods bound by a scheduler that never calls the extender."""

from __future__ import annotations

import json
import time

import httpx

from tests.controlplane.objects import (
    NAMESPACE,
    all_settled,
    bound_node,
    create_nodes,
    create_pods,
    ledger_text,
    node,
    pod,
    watch_pods,
)
from tests.controlplane.processes import wait_until
from tests.e2e.conftest import Scenario
from tests.e2e.test_race import capacity_filled, requested

SCHEDULER = "placement-scheduler"


def readyz(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code
    except httpx.HTTPError:
        return 0


def relists(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=2).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("placement_extender_watch_events_total") and 'event="relists"' in line
    )


def test_api_server_killed_and_restarted_mid_run(scenario: Scenario) -> None:
    create_nodes(scenario.core, [node(f"n-{i}", cpu="2") for i in range(4)])  # 80 slots
    extender = scenario.extender()
    scenario.scheduler(extender)
    first = [pod(f"before-{i}", scheduler=SCHEDULER, memory="16Mi") for i in range(30)]
    create_pods(scenario.core, first)
    watch_pods(scenario.core, all_settled(p["metadata"]["name"] for p in first), timeout=60)
    relists_before = relists(extender.url)

    scenario.plane.kill_apiserver()
    # an extender process offers nothing to await: poll its /readyz
    wait_until(extender.proc, lambda: readyz(extender.url) == 503, timeout=30, what="/readyz 503")
    scenario.plane.start_apiserver()
    wait_until(extender.proc, lambda: readyz(extender.url) == 200, timeout=60, what="/readyz 200")
    assert relists(extender.url) > relists_before  # the restarted server expired the old watches

    second = [pod(f"after-{i}", scheduler=SCHEDULER, memory="16Mi") for i in range(70)]
    create_pods(scenario.core, second)
    final = watch_pods(scenario.core, capacity_filled(100, 80), timeout=120)
    assert sum(1 for p in final.values() if bound_node(p)) == 80
    assert all(v <= 2000 for v in requested(final, "cpu").values())


def bind(url: str, name: str, uid: str, node_name: str) -> str:
    body = {"PodName": name, "PodNamespace": NAMESPACE, "PodUID": uid, "Node": node_name}
    reply = httpx.post(f"{url}/bind", content=json.dumps(body), timeout=10)
    assert reply.status_code == 200
    error: str = reply.json()["Error"]
    return error


def test_bind_of_a_pod_deleted_or_recreated_after_filter(scenario: Scenario) -> None:
    create_nodes(scenario.core, [node("n-1")])
    extender = scenario.extender()
    # no scheduler serves "nobody": the test plays kube-scheduler's bind call itself
    (gone,) = create_pods(scenario.core, [pod("gone", scheduler="nobody")])
    (recreated,) = create_pods(scenario.core, [pod("recreated", scheduler="nobody")])
    for obj in (gone, recreated):
        scenario.core.delete_namespaced_pod(obj["metadata"]["name"], NAMESPACE,
                                            grace_period_seconds=0)  # fmt: skip
    (again,) = create_pods(scenario.core, [pod("recreated", scheduler="nobody")])

    error = bind(extender.url, "gone", gone["metadata"]["uid"], "n-1")
    assert "not found" in error.lower() or "404" in error, error
    error = bind(extender.url, "recreated", recreated["metadata"]["uid"], "n-1")
    assert again["metadata"]["uid"] != recreated["metadata"]["uid"]
    assert "UID" in error or "uid" in error.lower(), error

    assert bound_node(scenario.client.sanitize_for_serialization(
        scenario.core.read_namespaced_pod("recreated", NAMESPACE))) is None  # fmt: skip
    ledger = ledger_text(scenario.core, "n-1")
    for obj in (gone, recreated):
        assert obj["metadata"]["uid"] not in ledger, "a failed bind left its reservation"


def test_pod_bound_by_another_scheduler_counts_in_the_next_decision(scenario: Scenario) -> None:
    create_nodes(scenario.core, [node("small-a", cpu="1"), node("small-b", cpu="1")])
    extender = scenario.extender()
    scenario.scheduler(None, name="plain-scheduler")
    create_pods(scenario.core, [pod("hog", scheduler="plain-scheduler", cpu="800m", memory="16Mi")])
    placed = watch_pods(scenario.core, all_settled(["hog"]), timeout=60)["hog"]
    where = bound_node(placed)
    assert where is not None

    probe = pod("probe", scheduler=SCHEDULER, cpu="500m", memory="16Mi")
    probe["metadata"]["uid"] = "probe-uid"
    body = json.dumps({"Pod": probe, "Nodes": None, "NodeNames": ["small-a", "small-b"]})
    # The extender learns of the hog through its pod watch (milliseconds): poll until it has.
    deadline = time.monotonic() + 10
    while True:
        reply = httpx.post(f"{extender.url}/filter", content=body, timeout=5).json()
        failed = {**(reply["FailedNodes"] or {}), **(reply["FailedAndUnresolvableNodes"] or {})}
        if where in failed or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert where in failed and "insufficient cpu" in failed[where], reply
    assert reply["NodeNames"] == [n for n in ("small-a", "small-b") if n != where]
