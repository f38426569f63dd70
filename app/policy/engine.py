"""The policy engine: runs the registered predicates and score components over candidates.

Filter: every predicate sets one bit per failing node; nodes with the same bits share one reason
string, built once. Score: the weighted mean of the components gives a value in [0, 1] per node;
with ``gpu_preference_dominates`` the pod's GPU preference picks a band of the 0..10 scale and
that value places the node inside its band, so a preferred type always scores higher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.config import PodClassScoring, Settings
from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.predicates import (
    gpu_memory,
    gpu_reserved,
    gpu_type,
    known_node,
    node_health,
    pool,
    preemptible,
    resource_fit,
)
from app.policy.scores import affinity, fit, gpu_preference, pool_priority
from app.policy.types import FloatArray, Predicate, ScoreComponent
from app.state.table import BoolArray, IntArray

MAX_SCORE = 10  # kube-scheduler's MaxExtenderPriority


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """Per-candidate verdicts.

    ``codes`` has one bit per failed predicate. The failed candidates, in order, have the
    reason texts ``reasons[reason_index[k]]``.
    """

    passed: BoolArray
    unresolvable: BoolArray
    codes: IntArray
    reasons: list[str]
    reason_index: IntArray


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    """Integer scores 0..10 per candidate, and the components behind them."""

    scores: IntArray
    components: dict[str, FloatArray]
    weights: dict[str, float]
    rank: IntArray
    levels: int


def _distinct(codes: IntArray) -> tuple[IntArray, IntArray]:
    """``np.unique(codes, return_inverse=True)`` for small non-negative codes, by counting
    instead of sorting."""
    distinct = np.flatnonzero(np.bincount(codes))
    lookup = np.zeros(int(distinct[-1]) + 1, np.int64)
    lookup[distinct] = np.arange(len(distinct))
    return distinct, lookup[codes]


class Policy:
    """The configured predicates and score components."""

    def __init__(self, settings: Settings, resources: tuple[str, ...]) -> None:
        predicates: list[Predicate] = [known_node.PREDICATE, node_health.PREDICATE]
        predicates += resource_fit.predicates(resources)
        predicates += [gpu_type.PREDICATE, gpu_memory.PREDICATE]
        if settings.policy.gpu_nodes_for_gpu_pods_only:
            predicates.append(gpu_reserved.PREDICATE)
        predicates += [pool.PREDICATE, preemptible.PREDICATE]
        self.predicates: tuple[Predicate, ...] = tuple(predicates)
        self._unknown_code = 1 << self.predicates.index(known_node.PREDICATE)
        self.dominant_preference = settings.scoring.gpu_preference_dominates
        self._classes = {False: settings.scoring.cpu_pods, True: settings.scoring.gpu_pods}
        self._fit = {mode: fit.component(mode) for mode in ("binpack", "spread")}

    # ---- filter --------------------------------------------------------------------------

    def filter(self, pod: PodDemand, nodes: Candidates) -> FilterOutcome:
        """Run every predicate over all candidates.

        Predicates may fail unknown nodes for other reasons too (their columns are zeros);
        those nodes report only "unknown node".
        """
        masks: list[BoolArray] = []
        bits: list[int] = []
        always_hard = 0
        partly_hard: list[BoolArray] = []
        for bit, predicate in enumerate(self.predicates):
            check = predicate.check(pod, nodes)
            if check is None:
                continue
            masks.append(check.failed)
            bits.append(1 << bit)
            if check.unresolvable is True:
                always_hard |= 1 << bit
            elif check.unresolvable is not False:
                partly_hard.append(check.failed & check.unresolvable)
        known = nodes.known
        # float dot runs in BLAS; codes stay far below 2**53, so the conversion is exact
        codes = np.dot(np.array(bits, np.float64), np.array(masks, np.float64)).astype(np.int64)
        codes[~known] = self._unknown_code
        unresolvable = (codes & always_hard) != 0
        for hard in partly_hard:
            unresolvable |= hard
        unresolvable &= known
        passed = codes == 0
        reasons: list[str] = []
        index = np.zeros(0, np.int64)
        if not passed.all():
            distinct, index = _distinct(codes[~passed])
            texts: dict[int, str] = {}
            for code in distinct.tolist():
                parts = []
                for bit, predicate in enumerate(self.predicates):
                    if code >> bit & 1:
                        if bit not in texts:
                            texts[bit] = predicate.reason(pod)
                        parts.append(texts[bit])
                reasons.append("; ".join(parts))
        return FilterOutcome(passed, unresolvable, codes, reasons, index)

    # ---- score ---------------------------------------------------------------------------

    def _components(self, pod: PodDemand) -> tuple[list[ScoreComponent], dict[str, float]]:
        scoring: PodClassScoring = self._classes[pod.wants_gpu]
        weights = scoring.weights
        components = [pool_priority.COMPONENT, self._fit[scoring.fit], affinity.COMPONENT]
        named = {
            pool_priority.NAME: weights.pool_priority,
            fit.NAME: weights.fit,
            affinity.NAME: weights.affinity,
        }
        if not self.dominant_preference:
            components.append(gpu_preference.COMPONENT)
            named[gpu_preference.NAME] = weights.gpu_preference
        return [c for c in components if named[c.name] > 0], named

    def score(self, pod: PodDemand, nodes: Candidates) -> ScoreOutcome:
        """Scores 0..10 for every candidate (unknown nodes score 0)."""
        components, weights = self._components(pod)
        values = {c.name: c.score(pod, nodes) for c in components}
        total_weight = sum(weights[name] for name in values)
        within = np.zeros(len(nodes))
        for name, value in values.items():
            within += weights[name] * value
        if total_weight > 0:
            within /= total_weight
        levels = gpu_preference.levels(pod) if self.dominant_preference else 1
        rank = gpu_preference.rank(pod, nodes)
        if levels > 1:
            band = (levels - 1) - np.minimum(rank, levels - 1)
            low = band * (MAX_SCORE + 1) // levels
            high = (band + 1) * (MAX_SCORE + 1) // levels - 1
            scores = low + np.rint(within * (high - low)).astype(np.int64)
        else:
            scores = np.rint(within * MAX_SCORE).astype(np.int64)
        scores = np.where(nodes.known, np.clip(scores, 0, MAX_SCORE), 0)
        return ScoreOutcome(scores, values, weights, rank, levels)

    # ---- explain -------------------------------------------------------------------------

    def explain(self, pod: PodDemand, nodes: Candidates) -> list[dict[str, Any]]:
        """Per node: passed or not, every failed predicate in detail, the score's parts."""
        verdict = self.filter(pod, nodes)
        scored = self.score(pod, nodes)
        report: list[dict[str, Any]] = []
        for i in range(len(nodes)):
            code = int(verdict.codes[i])
            failures = [
                {"predicate": p.name, "reason": p.explain(pod, nodes, i)}
                for bit, p in enumerate(self.predicates)
                if code >> bit & 1
            ]
            entry: dict[str, Any] = {
                "node": nodes.name(i),
                "passed": not failures,
                "failures": failures,
                "unresolvable": bool(verdict.unresolvable[i]),
            }
            if not failures:
                entry["score"] = int(scored.scores[i])
                entry["score_components"] = {
                    name: {"value": round(float(v[i]), 4), "weight": scored.weights[name]}
                    for name, v in scored.components.items()
                }
                if scored.levels > 1:
                    entry["score_components"]["gpu_preference_rank"] = int(scored.rank[i])
            report.append(entry)
        return report
