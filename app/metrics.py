"""Prometheus metrics, one registry per running extender (tests run several in one process).

Every series is documented in the README's metrics table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "placement_extender"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
MAX_SCORE = 10

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """The extender's series. Counters of sources (watch restarts...) are read at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.request_seconds = Histogram(
            f"{PREFIX}_request_duration_seconds", "Time to answer one kube-scheduler call.",
            ["verb"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.requests = Counter(
            f"{PREFIX}_requests_total", "kube-scheduler calls by verb and HTTP status.",
            ["verb", "code"], registry=r,
        )  # fmt: skip
        self.decisions = DecisionCounts()
        r.register(_DecisionCollector(self.decisions))
        self.binds = Counter(f"{PREFIX}_binds_total", "Bind outcomes.", ["outcome"], registry=r)
        self.bind_seconds = Histogram(
            f"{PREFIX}_bind_duration_seconds", "Time one bind took, retries included.",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.cas_conflicts = Counter(
            f"{PREFIX}_cas_conflicts_total",
            "Reservation writes refused with 409 Conflict (another writer got there first).",
            registry=r,
        )
        self.reserved_ahead = Counter(
            f"{PREFIX}_reserved_ahead_total",
            "Entries reserved ahead for pending pods of the same workload (event=written), and "
            "binds that found theirs and wrote nothing (event=used).",
            ["event"], registry=r,
        )  # fmt: skip
        for event in ("written", "used"):  # exported from zero, so rate() sees the first
            self.reserved_ahead.labels(event)
        self.wakeups = Counter(
            f"{PREFIX}_wakeups_total",
            "Rings of the wake-up object after room freed without an API event kube-scheduler "
            "watches: sent (this replica wrote it), coalesced (another replica rang after the "
            "room freed), failed.",
            ["outcome"], registry=r,
        )  # fmt: skip
        for outcome in ("sent", "coalesced", "failed"):
            self.wakeups.labels(outcome)
        self.bind_retries = Counter(
            f"{PREFIX}_bind_retries_total", "Reservation attempts after the first.", registry=r
        )
        self.bind_budget = Gauge(
            f"{PREFIX}_bind_budget_seconds",
            "The time one bind may take (bind.budget_seconds); 0 while binding is unavailable.",
            registry=r,
        )
        self.preemption_nodes = Counter(
            f"{PREFIX}_preemption_nodes_total",
            "kube-scheduler's preemption candidates, by the preempt verb's verdict: kept (the "
            "preemptor fits once the victims are gone) or dropped (it would not: the ledger, "
            "nominated pods or the extender's predicates hold the node).",
            ["verdict"], registry=r,
        )  # fmt: skip
        for verdict in ("kept", "dropped"):
            self.preemption_nodes.labels(verdict)
        self.preemption_victims = Counter(
            f"{PREFIX}_preemption_victims_total",
            "Victims on the candidate nodes the preempt verb kept (kube-scheduler evicts those "
            "of the one node it then picks).",
            registry=r,
        )
        self.ready = Gauge(
            f"{PREFIX}_ready", "1 while this replica answers /readyz with 200, else 0.", registry=r
        )

    def watch_source(
        self, snapshot: Callable[[], object], counters: Callable[[], dict[str, int]]
    ) -> None:
        """Expose the snapshot's size and age and the source's watch counters at scrape."""
        self.registry.register(_SourceCollector(snapshot, counters))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class DecisionCounts:
    """Per-decision tallies kept as plain integers (a filter at 5,000 nodes touches them tens
    of times; prometheus-client's locked counters would cost more than the decision) and
    exposed at scrape time."""

    def __init__(self) -> None:
        self.predicates: tuple[str, ...] = ()
        self.rejections: list[int] = []
        """Nodes rejected, per predicate in ``predicates`` order (indexed, not keyed by name:
        this is touched for every failure group of every filter)."""
        self.scores = [0] * (MAX_SCORE + 1)
        self.unmet: dict[tuple[str, str], int] = {}

    def use_predicates(self, names: tuple[str, ...]) -> None:
        """Name the predicates whose rejections are tallied by index."""
        if names != self.predicates:
            self.predicates = names
            self.rejections = [0] * len(names)

    def score_counts(self, counts: Iterable[int]) -> None:
        for score, count in enumerate(counts):
            self.scores[score] += count

    def unmet_demand(self, pool: str, gpu_type: str) -> None:
        key = (pool, gpu_type)
        self.unmet[key] = self.unmet.get(key, 0) + 1


class _DecisionCollector(Collector):
    def __init__(self, counts: DecisionCounts) -> None:
        self._counts = counts

    def collect(self) -> Iterable[CounterMetricFamily]:
        counts = self._counts
        rejections = CounterMetricFamily(
            f"{PREFIX}_filter_rejections",
            "Candidate nodes rejected by filter, by the predicate that rejected them.",
            labels=["predicate"],
        )
        for predicate, value in zip(counts.predicates, list(counts.rejections), strict=False):
            if value:
                rejections.add_metric([predicate], value)
        scores = CounterMetricFamily(
            f"{PREFIX}_prioritize_scores",
            "Node scores given by prioritize, by score (0..10): the score distribution.",
            labels=["score"],
        )
        for score, value in enumerate(counts.scores):
            scores.add_metric([str(score)], value)
        unmet = CounterMetricFamily(
            f"{PREFIX}_unmet_demand",
            "Filter calls where no candidate node fits the pod, by the pod's pool and most "
            "preferred GPU type ('none' for CPU pods): the demand asking for more capacity.",
            labels=["pool", "gpu_type"],
        )
        for (pool, gpu_type), value in sorted(counts.unmet.items()):
            unmet.add_metric([pool, gpu_type], value)
        yield from (rejections, scores, unmet)


class _SourceCollector(Collector):
    def __init__(
        self, snapshot: Callable[[], object], counters: Callable[[], dict[str, int]]
    ) -> None:
        self._snapshot = snapshot
        self._counters = counters

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        snapshot = self._snapshot()
        nodes = GaugeMetricFamily(f"{PREFIX}_snapshot_nodes", "Nodes in the snapshot.")
        pods = GaugeMetricFamily(f"{PREFIX}_snapshot_pods", "Pods in the snapshot.")
        age = GaugeMetricFamily(
            f"{PREFIX}_snapshot_age_seconds", "Seconds since the snapshot last changed."
        )
        version = GaugeMetricFamily(
            f"{PREFIX}_snapshot_version", "Changes applied to the snapshot since start."
        )
        if snapshot is not None:
            nodes.add_metric([], len(getattr(snapshot, "nodes", ())))
            pods.add_metric([], len(getattr(snapshot, "pods", ())))
            updated = float(getattr(snapshot, "updated_at", 0.0))
            age.add_metric([], max(0.0, time.time() - updated) if updated else 0.0)
            version.add_metric([], float(getattr(snapshot, "version", 0)))
        yield from (nodes, pods, age, version)
        events = CounterMetricFamily(
            f"{PREFIX}_watch_events", "List/watch activity of the live source, by kind and event.",
            labels=["kind", "event"],
        )  # fmt: skip
        for key, value in sorted(self._counters().items()):
            kind, _, event = key.partition("_")
            events.add_metric([kind, event], value)
        yield events
