"""Faults under load on the real control plane (tests/controlplane): replicas killed, rolled and
slowed mid-burst, and a soak of steady churn. Each run asserts the extender's promises — exactly
as many pods bound as fit, no node over-committed, nothing stuck, nothing leaked — and records
its figures (docs/faults.md). ``make chaos`` runs the sizes of record (``CHAOS_PROFILE=full``,
the soak 20 minutes); ``make test`` the short variant.

Every wait is on API events (watches) with the deadline the behaviour promises; the only sleeps
are the faults themselves (a preStop sleep, a stall held for its length, the soak's pace).
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from app.config import load_settings
from tests.chaos.fleet import (
    PROFILE,
    Fleet,
    allocatable_of,
    bound_count,
    ledger_entries,
    mixed_nodes,
    mixed_pods,
    orphans,
    over_committed,
    record,
)
from tests.chaos.proxy import Service, SlowApiProxy
from tests.controlplane.chart import chart_shutdown
from tests.controlplane.cluster import EXTENDER_TOKEN, write_kubeconfig
from tests.controlplane.objects import (
    GPU,
    JSON,
    NAMESPACE,
    bound_node,
    create_nodes,
    create_pods,
    http_client,
    node,
    pod,
    watch_pods,
)
from tests.e2e.conftest import Scenario

# The fleet plays the chart's topology=service: replicas behind a Service, rolled by a Deployment.
SERVICE_TOPOLOGY = {"topology": "service", "tls": {"enabled": False}}
RECOVERY_SLACK_SECONDS = 15.0
"""Pods that fit are bound within the reservation TTL + this after a fault (the issue's bound)."""


def bound_kinds(pods: dict[str, JSON]) -> tuple[int, int]:
    """(CPU pods, GPU pods) bound."""
    gpu = sum(1 for p in pods.values() if bound_node(p) and GPU in json_requests(p))
    return bound_count(pods) - gpu, gpu


def json_requests(p: JSON) -> dict[str, str]:
    requests: dict[str, str] = p["spec"]["containers"][0]["resources"]["requests"]
    return requests


def all_fit_bound(pods: dict[str, JSON]) -> bool:
    cpu, gpu = bound_kinds(pods)
    return cpu >= PROFILE.cpu_room and gpu >= PROFILE.gpu_room


def bound_at_least(count: int) -> Callable[[dict[str, JSON]], bool]:
    return lambda pods: bound_count(pods) >= count


def mixed_cluster(scenario: Scenario) -> tuple[dict[str, dict[str, int]], int]:
    """Create the mixed nodes; returns their allocatable and how many pods fit on them."""
    nodes = mixed_nodes(PROFILE)
    create_nodes(scenario.core, nodes)
    return allocatable_of(nodes), PROFILE.cpu_room + PROFILE.gpu_room


def check_exactly_fit(final: dict[str, JSON], allocatable: dict[str, dict[str, int]]) -> None:
    assert bound_kinds(final) == (PROFILE.cpu_room, PROFILE.gpu_room)
    assert not over_committed(final, allocatable), over_committed(final, allocatable)


def test_a_replica_killed_mid_burst(scenario: Scenario) -> None:
    allocatable, fit = mixed_cluster(scenario)
    fleet = Fleet(scenario)
    pods = mixed_pods("kill", 2 * PROFILE.cpu_room, 2 * PROFILE.gpu_room)
    started = time.monotonic()
    create_pods(scenario.core, pods)
    at_kill = watch_pods(scenario.core, bound_at_least(fit // 3), timeout=120)
    fleet.kill(1)
    killed = time.monotonic()
    now_pods = {p["metadata"]["name"]: p for p in scenario.client.sanitize_for_serialization(
        scenario.core.list_namespaced_pod(NAMESPACE))["items"]}  # fmt: skip
    held = orphans(ledger_entries(scenario), now_pods, time.time())
    fleet.restart(1)
    restarted = time.monotonic() - killed
    deadline = PROFILE.ttl_seconds + RECOVERY_SLACK_SECONDS
    final = watch_pods(scenario.core, all_fit_bound, timeout=deadline - restarted)
    recovered = time.monotonic() - killed
    check_exactly_fit(final, allocatable)
    record("kill", {
        "pods": len(pods), "fit": fit, "nodes": len(allocatable), "replicas": 3,
        "fault": "SIGKILL replica-1 mid-burst, started again",
        "bound_at_kill": bound_count(at_kill), "unbound_pods_holding_room_after_kill": len(held),
        "restart_seconds": round(restarted, 2), "recovered_seconds": round(recovered, 2),
        "deadline_seconds": deadline, "burst_seconds": round(time.monotonic() - started, 2),
        "wakeups_sent": fleet.total('placement_extender_wakeups_total{outcome="sent"}'),
    })  # fmt: skip


def test_a_rolling_restart_during_a_burst(scenario: Scenario) -> None:
    """The chart's layout: the schedulers call the replicas through a service; each replica in
    turn is replaced as the Deployment's rolling update does, a wave of pods arriving as the
    old one gets SIGTERM."""
    shutdown = chart_shutdown(SERVICE_TOPOLOGY)
    allocatable, fit = mixed_cluster(scenario)
    service = Service().start()
    try:
        delay = {"PLACEMENT_EXTENDER_SERVER__SHUTDOWN_DELAY_SECONDS":
                 str(shutdown.shutdown_delay_seconds)}  # fmt: skip
        fleet = Fleet(scenario, service=service, env=delay)
        waves = [mixed_pods(f"roll{w}", 2 * PROFILE.cpu_room // 3 + 1,
                            2 * PROFILE.gpu_room // 3 + 1) for w in range(3)]  # fmt: skip
        stops = []
        started = time.monotonic()
        for i, wave in enumerate(waves):
            code, seconds, graceful = fleet.roll(
                i, shutdown, before_sigterm=lambda w=wave: create_pods(scenario.core, w)
            )
            stops.append({"replica": i, "exit_code": code, "exit_seconds": round(seconds, 2),
                          "graceful": graceful})  # fmt: skip
        rolled = time.monotonic()
        final = watch_pods(scenario.core, all_fit_bound,
                           timeout=PROFILE.ttl_seconds + RECOVERY_SLACK_SECONDS)  # fmt: skip
        recovered = time.monotonic() - rolled
    finally:
        service.stop()
    check_exactly_fit(final, allocatable)
    # uvicorn re-raises the SIGTERM it handled once it has shut down: -15 is a clean exit
    assert all(s["graceful"] and s["exit_code"] in (0, -15) for s in stops), stops
    server_errors = re.findall(r"with extender at URL \S+, code 5\d\d", fleet.scheduler_log())
    assert not server_errors, server_errors[:5]
    assert fleet.total("placement_extender_requests_total") > 0
    assert fleet.total('placement_extender_requests_total{verb="bind",code="5') == 0
    half_done = orphans(ledger_entries(scenario), final, time.time())
    assert not half_done, half_done  # no reservation left behind without its Binding
    record("rolling", {
        "pods": sum(len(w) for w in waves), "fit": fit, "nodes": len(allocatable),
        "replicas": 3, "fault": "rolling update: surge one, then SIGTERM the old (chart settings)",
        "shutdown": vars(shutdown), "stops": stops,
        "roll_seconds": round(rolled - started, 2), "recovered_seconds": round(recovered, 2),
        "deadline_seconds": PROFILE.ttl_seconds + RECOVERY_SLACK_SECONDS,
    })  # fmt: skip


def test_a_slow_and_stalling_api_server(scenario: Scenario) -> None:
    plane = scenario.plane
    proxy = SlowApiProxy(plane.url, plane.workdir / "apiserver-certs" / "apiserver.crt",
                         plane.workdir).start()  # fmt: skip
    try:
        kubeconfig = write_kubeconfig(plane.workdir / "slow.kubeconfig", proxy.url,
                                      EXTENDER_TOKEN, proxy.cert)  # fmt: skip
        allocatable, fit = mixed_cluster(scenario)
        fleet = Fleet(scenario, kubeconfig=kubeconfig)
        budget = load_settings().bind.budget_seconds  # the default, which the chart keeps
        phases = []
        proxy.write_delay = 0.05
        create_pods(scenario.core, mixed_pods("slow", 2 * PROFILE.cpu_room, 2 * PROFILE.gpu_room))
        t0 = time.monotonic()
        watch_pods(scenario.core, bound_at_least(fit // 4), timeout=120)
        phases.append({"write_delay": 0.05, "seconds": round(time.monotonic() - t0, 2)})
        proxy.write_delay = 0.5
        t1 = time.monotonic()
        watch_pods(scenario.core, bound_at_least(fit // 2), timeout=120)
        phases.append({"write_delay": 0.5, "seconds": round(time.monotonic() - t1, 2)})
        proxy.write_delay = budget + 2  # a stall longer than the bind budget
        held_before = proxy.writes_held
        time.sleep(PROFILE.stall_seconds)  # the fault lasts this long
        proxy.write_delay = 0.0
        phases.append({"write_delay": budget + 2, "seconds": PROFILE.stall_seconds})
        stalled_writes = proxy.writes_held - held_before
        ended = time.monotonic()
        final = watch_pods(scenario.core, all_fit_bound,
                           timeout=PROFILE.ttl_seconds + RECOVERY_SLACK_SECONDS)  # fmt: skip
        recovered = time.monotonic() - ended
        check_exactly_fit(final, allocatable)
        exhausted = fleet.total('placement_extender_binds_total{outcome="budget_exhausted"}')
        unknown = fleet.total('placement_extender_binds_total{outcome="unknown_outcome"}')
        assert stalled_writes > 0 and exhausted + unknown > 0  # the stall met binds in flight
        # each failed bind said why: the budget ran out, or the Binding's outcome is unknown
        # and its room is kept until its entry expires
        clear = re.escape(f"bind budget of {budget:g}s exhausted") + "|outcome is unknown"
        assert re.search(clear, fleet.scheduler_log())
        within = fleet.total('placement_extender_bind_duration_seconds_bucket{le="5.0"}')
        assert within == fleet.total("placement_extender_bind_duration_seconds_count")
        record("slow-api", {
            "pods": 2 * fit, "fit": fit, "nodes": len(allocatable), "replicas": 3,
            "fault": "writes held 50 ms, 500 ms, then stalled past the bind budget",
            "phases": phases, "writes_held_in_stall": stalled_writes,
            "binds_budget_exhausted": exhausted, "binds_unknown_outcome": unknown,
            "recovered_seconds": round(recovered, 2),
            "deadline_seconds": PROFILE.ttl_seconds + RECOVERY_SLACK_SECONDS,
        })  # fmt: skip
    finally:
        proxy.stop()


AT_ONCE = {"gracePeriodSeconds": "0"}
"""Delete options: no kubelet runs to wait for."""


class Churn:
    """Creates pods at a steady pace and deletes each once it is seen bound; counts them. A
    call the API server refuses or does not answer (it may throttle a burst with 429) is
    counted and tried again on the next tick; anything else stops the churn and is raised by
    :meth:`stop`."""

    def __init__(self, scenario: Scenario, rate: float) -> None:
        self.scenario = scenario
        self.rate = rate
        self.created = 0
        self.bound: set[str] = set()
        self.failed_calls = 0
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="churn", daemon=True)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(60)
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            self._churn()
        except BaseException as exc:  # surfaced by stop(): a dead churn fails the soak
            self.error = exc

    def _churn(self) -> None:
        pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
        with http_client(self.scenario.core) as http, ThreadPoolExecutor(8) as pool:

            def call(method: str, path: str, **options: Any) -> httpx.Response | None:
                try:
                    reply = http.request(method, path, **options)
                except httpx.TransportError:
                    reply = None
                if reply is not None and method == "POST" and reply.status_code == 409:
                    return reply  # created by an earlier try whose answer was lost
                if reply is None or reply.status_code >= 300:
                    self.failed_calls += 1
                    return None
                return reply

            start = time.monotonic()
            while not self.stopping.is_set():
                due = int((time.monotonic() - start) * self.rate)
                batch = [pod(f"soak-{i}", scheduler=f"sched-{i % 3}", cpu="100m", memory="16Mi")
                         for i in range(self.created, due)]  # fmt: skip
                made = list(pool.map(lambda p: call("POST", pods, json=p), batch))
                if all(made):
                    self.created = due
                else:  # carry on from the first that was not created (names stay unique)
                    self.created += made.index(None)
                listed = call("GET", pods, params={"fieldSelector": "spec.nodeName!="})
                fresh = [] if listed is None else [
                    i["metadata"]["name"] for i in listed.json()["items"]
                    if i["metadata"]["name"] not in self.bound
                ]  # fmt: skip
                self.bound.update(fresh)
                list(pool.map(lambda name: call("DELETE", f"{pods}/{name}", params=AT_ONCE), fresh))
                self.stopping.wait(0.5)


def test_a_soak_of_steady_churn(scenario: Scenario) -> None:
    nodes = [node(f"soak-{i}", cpu="4") for i in range(PROFILE.soak_nodes)]
    create_nodes(scenario.core, nodes)
    fleet = Fleet(scenario)
    churn = Churn(scenario, PROFILE.soak_pods_per_second)
    samples: list[dict[str, Any]] = []
    expired_seen = 0
    started = time.monotonic()
    churn.thread.start()
    try:
        while (elapsed := time.monotonic() - started) < PROFILE.soak_seconds:
            now = time.time()
            entries = ledger_entries(scenario)
            expired_seen += sum(1 for e in entries if not e.live(now))
            rss = fleet.rss_bytes()
            samples.append({"t": round(elapsed, 1), "rss_mb": [round(r / 2**20, 1) for r in rss],
                            "entries": len(entries), "bound": len(churn.bound)})  # fmt: skip
            time.sleep(max(1.0, PROFILE.soak_seconds / 120))  # the sampling pace
    finally:
        churn.stop()
    # the last pods created bind after the churn stopped looking: count them too
    left = watch_pods(scenario.core, lambda ps: all(bound_node(p) for p in ps.values()), timeout=60)
    churn.bound.update(left)
    scenario.core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0)
    rest_started = time.monotonic()
    # the last entries are pruned when about to expire: a TTL and a sweep or two after rest
    rest_deadline = PROFILE.ttl_seconds + 3 * PROFILE.tidy_interval_seconds + 15
    while ledger_entries(scenario) and time.monotonic() - rest_started < rest_deadline:
        time.sleep(1)  # the API offers no event for "every ledger empty": poll, with a deadline
    at_rest = len(ledger_entries(scenario))
    rest_seconds = time.monotonic() - rest_started

    warm = [s for s in samples if s["t"] >= PROFILE.soak_seconds / 3]
    first, last = warm[: max(1, len(warm) // 10)], warm[-max(1, len(warm) // 10) :]
    growth = [
        statistics.median(s["rss_mb"][i] for s in last)
        / statistics.median(s["rss_mb"][i] for s in first) - 1
        for i in range(3)
    ]  # fmt: skip
    bound_by_extender = fleet.total('placement_extender_binds_total{outcome="bound"}')
    record("soak", {
        "nodes": len(nodes), "replicas": 3, "seconds": PROFILE.soak_seconds,
        "pods_per_second": PROFILE.soak_pods_per_second, "created": churn.created,
        "bound": len(churn.bound), "binds_bound_metric": bound_by_extender,
        "failed_api_calls": churn.failed_calls,
        "rss_growth_after_warmup": [round(g, 4) for g in growth],
        "entries_at_rest": at_rest, "rest_seconds": round(rest_seconds, 1),
        "expired_entries_seen": expired_seen, "samples": samples,
    })  # fmt: skip
    # the churn kept its pace to the end, and the pods it created were bound as they came
    assert churn.created >= 0.95 * PROFILE.soak_pods_per_second * PROFILE.soak_seconds
    assert len(churn.bound) == churn.created
    assert all(g < 0.10 for g in growth), growth
    assert at_rest == 0
    assert expired_seen == 0  # no entry outlived its TTL
    assert bound_by_extender == len(churn.bound)
    assert all(httpx.get(f"{r.url}/readyz").is_success for r in fleet.replicas)
