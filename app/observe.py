"""Decision observer: feeds metrics and the per-decision debug log from filter and prioritize."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from app.extender import Observer
from app.metrics import MAX_SCORE, Metrics
from app.policy.demand import PodDemand
from app.policy.engine import FilterOutcome
from app.policy.types import Predicate
from app.preempt import PreemptionVerdict

log = logging.getLogger("app.decisions")


class DecisionObserver(Observer):
    """Counts rejections by predicate, unmet demand and the score distribution; logs each
    decision at debug level."""

    def __init__(self, metrics: Metrics) -> None:
        self.counts = metrics.decisions
        self._kept = metrics.preemption_nodes.labels("kept")
        self._dropped = metrics.preemption_nodes.labels("dropped")
        self._victims = metrics.preemption_victims

    def filtered(
        self, demand: PodDemand, outcome: FilterOutcome, predicates: Sequence[Predicate]
    ) -> None:
        counts = self.counts
        if len(counts.rejections) != len(predicates):
            counts.use_predicates(tuple(p.name for p in predicates))
        tallies = counts.rejections
        for group in outcome.groups:
            for index in group.predicates:
                tallies[index] += group.size
        kept = int(np.count_nonzero(outcome.passed))
        if kept == 0 and len(outcome.passed):
            counts.unmet_demand(demand.pool or "", _gpu_type(demand))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "filter",
                extra={
                    "verb": "filter", "pod": demand.pod, "kept": kept,
                    "failed": len(outcome.passed) - kept,
                    "reasons": {g.reason: g.size for g in outcome.groups},
                },
            )  # fmt: skip

    def scored(self, demand: PodDemand, scores: npt.NDArray[np.int64]) -> None:
        self.counts.score_counts(np.bincount(scores, minlength=MAX_SCORE + 1).tolist())
        if log.isEnabledFor(logging.DEBUG) and len(scores):
            log.debug(
                "prioritize",
                extra={"verb": "prioritize", "pod": demand.pod, "nodes": len(scores),
                       "best": int(scores.max())},
            )  # fmt: skip

    def preempted(self, demand: PodDemand, verdict: PreemptionVerdict) -> None:
        """Preemptions are rare and each may evict pods: one info line per decision."""
        self._kept.inc(len(verdict.kept))
        self._dropped.inc(len(verdict.dropped))
        self._victims.inc(verdict.victims)
        log.info(
            "preempt",
            extra={
                "verb": "preempt", "pod": demand.pod, "kept": sorted(verdict.kept),
                "victims": verdict.victims, "dropped": verdict.dropped,
            },
        )  # fmt: skip


def _gpu_type(demand: PodDemand) -> str:
    return demand.preferred_gpu_type or "none"
