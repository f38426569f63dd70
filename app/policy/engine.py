"""The policy engine: runs the registered predicates and score components over candidates.

Filter: every candidate gets a failure code, a bit for each way it fails, computed in bulk
(:mod:`app.policy.codes`). Candidates are grouped by code (one sort), and each distinct code gets
its reason text and resolvability once, so the reply is joined one group at a time.

Score: the weighted mean of the components gives a value in [0, 1] per node; with
``gpu_preference_dominates`` the pod's GPU preference picks a band of the 0..10 scale and that
value places the node inside its band, so a preferred type always scores higher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from app.config import PodClassScoring, Settings
from app.policy.candidates import Candidates
from app.policy.codes import CodeArray, CodeLayout
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
from app.state.table import FLAG_UNKNOWN, BoolArray, IntArray, limit_count

MAX_SCORE = 10  # kube-scheduler's MaxExtenderPriority
_SHAPES_KEPT = 1024
HASHED_FROM = 2000
"""Candidates from which grouping sorts 16-bit hashes rather than the codes themselves."""


class FailureGroup(NamedTuple):
    """Candidates that fail the same way: ``order[start:stop]`` of their :class:`FilterOutcome`."""

    reason: str
    unresolvable: bool
    start: int
    stop: int
    predicates: tuple[int, ...] = ()
    """Indices into :attr:`Policy.predicates` of the predicates these candidates fail."""

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    """Per-candidate verdicts.

    ``codes`` has a bit per way a candidate fails (0: it passes; see :mod:`app.policy.codes`).
    ``order`` lists candidate indices grouped by code, the passing ones first; each run of one
    failing code is a :class:`FailureGroup`.
    """

    passed: BoolArray
    codes: CodeArray
    order: npt.NDArray[np.intp]
    groups: tuple[FailureGroup, ...]

    @property
    def unresolvable(self) -> BoolArray:
        """Per candidate: failed, and preemption could not help."""
        hard = np.zeros(len(self.codes), np.bool_)
        for group in self.groups:
            hard[self.order[group.start : group.stop]] = group.unresolvable
        return hard

    @property
    def reasons(self) -> list[str]:
        """The reason text of each group."""
        return [group.reason for group in self.groups]

    @property
    def reason_index(self) -> IntArray:
        """For the failed candidates, in request order: their group's index in ``reasons``."""
        index = np.zeros(len(self.codes), np.int64)
        for k, group in enumerate(self.groups):
            index[self.order[group.start : group.stop]] = k
        return index[~self.passed]


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    """Integer scores 0..10 per candidate, and the components behind them."""

    scores: IntArray
    components: dict[str, FloatArray]
    weights: dict[str, float]
    rank: IntArray
    levels: int


_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: Fibonacci hashing
_KEY_SHIFT = np.uint64(48)


def group_by_code(codes: CodeArray) -> tuple[npt.NDArray[np.intp], list[int]]:
    """Candidate indices with equal codes next to each other, code 0 (passing) first, and
    where each run of one code starts.

    Codes are 64-bit but a call has a few dozen distinct ones, so they are sorted by a 16-bit
    hash (numpy radix-sorts 16-bit keys: ~3× quicker than sorting the codes). Two codes that
    share a hash would interleave; that is detected (a code changes where its hash does not)
    and the codes are then sorted themselves. Code 0 hashes to 0, the smallest key.
    """
    keys = None
    if len(codes) >= HASHED_FROM:  # below, the hashing costs more than it saves
        keys = ((codes * _SPREAD) >> _KEY_SHIFT).astype(np.uint16)
        order = np.argsort(keys, kind="stable")
    else:
        order = np.argsort(codes, kind="stable")
    ordered = codes[order]
    changes = ordered[1:] != ordered[:-1]
    if keys is not None and not np.array_equal(changes, np.diff(keys[order]) != 0):
        order = np.argsort(codes, kind="stable")
        ordered = codes[order]
        changes = ordered[1:] != ordered[:-1]
    return order, [0, *(changes.nonzero()[0] + 1).tolist()] if len(codes) else []


@dataclass(slots=True)
class _Shape:
    """What filtering a pod of one :attr:`PodDemand.shape` needs besides the nodes, kept for
    the next pod of that shape: it does not depend on cluster state."""

    needs: IntArray
    groups: dict[int, tuple[str, bool, tuple[int, ...]]] = field(default_factory=dict)
    """Failure code → reason text, unresolvable, failed predicates."""


@dataclass(frozen=True, slots=True)
class _Scoring:
    """A pod class's score components with their (positive) weights, all weights by name,
    and the sum of the positive ones: fixed by the settings, so worked out once."""

    components: tuple[tuple[ScoreComponent, float], ...]
    weights: dict[str, float]
    total_weight: float


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
        self.layout = CodeLayout(self.predicates, limit_count(len(resources)), FLAG_UNKNOWN)
        self.dominant_preference = settings.scoring.gpu_preference_dominates
        self._classes = {False: settings.scoring.cpu_pods, True: settings.scoring.gpu_pods}
        self._fit = {mode: fit.component(mode) for mode in ("binpack", "spread")}
        self._shapes: dict[tuple[object, ...], _Shape] = {}
        self._scoring = {wants_gpu: self._components(wants_gpu) for wants_gpu in (False, True)}

    # ---- filter --------------------------------------------------------------------------

    def filter(self, pod: PodDemand, nodes: Candidates) -> FilterOutcome:
        """Run every predicate over all candidates and group the failures by code.

        Predicates may fail unknown nodes for other reasons too (their columns are zeros);
        those nodes report only "unknown node", as resolvable.
        """
        shape = self._shape(pod)
        codes = self.layout.codes(pod, nodes, shape.needs)
        order, starts = group_by_code(codes)
        groups: list[FailureGroup] = []
        stops = [*starts[1:], len(codes)]
        for code, start, stop in zip(codes[order[starts]].tolist(), starts, stops):
            if code:
                known = shape.groups.get(code)
                if known is None:
                    known = shape.groups[code] = self._group_of(pod, code)
                reason, hard, failed = known
                groups.append(FailureGroup(reason, hard, start, stop, failed))
        return FilterOutcome(codes == 0, codes, order, tuple(groups))

    def _shape(self, pod: PodDemand) -> _Shape:
        key = pod.shape
        shape = self._shapes.get(key)
        if shape is None:
            if len(self._shapes) >= _SHAPES_KEPT:
                self._shapes.clear()
            needs = np.array(self.layout.needs(pod), np.int64)
            shape = self._shapes[key] = _Shape(needs)
        return shape

    def _group_of(self, pod: PodDemand, code: int) -> tuple[str, bool, tuple[int, ...]]:
        failed, hard = self.layout.verdict(code)
        reason = "; ".join(self.predicates[i].reason(pod) for i in failed)
        return reason, hard, failed

    # ---- score ---------------------------------------------------------------------------

    def _components(self, wants_gpu: bool) -> _Scoring:
        scoring: PodClassScoring = self._classes[wants_gpu]
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
        weighted = tuple((c, named[c.name]) for c in components if named[c.name] > 0)
        return _Scoring(weighted, named, sum(weight for _, weight in weighted))

    def score(self, pod: PodDemand, nodes: Candidates) -> ScoreOutcome:
        """Scores 0..10 for every candidate (unknown nodes score 0)."""
        scoring = self._scoring[pod.wants_gpu]
        values: dict[str, FloatArray] = {}
        within = np.zeros(len(nodes))
        for component, weight in scoring.components:
            value = values[component.name] = component.score(pod, nodes)
            within += weight * value
        if scoring.total_weight > 0:
            within /= scoring.total_weight
        levels = gpu_preference.levels(pod) if self.dominant_preference else 1
        rank = gpu_preference.rank(pod, nodes)
        if levels > 1:
            band = (levels - 1) - np.minimum(rank, levels - 1)
            low = band * (MAX_SCORE + 1) // levels
            high = (band + 1) * (MAX_SCORE + 1) // levels - 1
            scores = low + np.rint(within * (high - low)).astype(np.int64)
        else:
            scores = np.rint(within * MAX_SCORE).astype(np.int64)
        np.minimum(np.maximum(scores, 0, out=scores), MAX_SCORE, out=scores)  # a safety net
        unknown = nodes.unknown_positions()
        if len(unknown):
            scores[unknown] = 0
        return ScoreOutcome(scores, values, scoring.weights, rank, levels)

    # ---- explain -------------------------------------------------------------------------

    def explain(self, pod: PodDemand, nodes: Candidates) -> list[dict[str, Any]]:
        """Per node: passed or not, every failed predicate in detail, the score's parts."""
        verdict = self.filter(pod, nodes)
        codes, unresolvable = verdict.codes.tolist(), verdict.unresolvable
        scored = self.score(pod, nodes)
        report: list[dict[str, Any]] = []
        for i in range(len(nodes)):
            failures = [
                {"predicate": p.name, "reason": p.explain(pod, nodes, i)}
                for p in map(self.predicates.__getitem__, self.layout.verdict(codes[i]).failed)
            ]
            entry: dict[str, Any] = {
                "node": nodes.name(i),
                "passed": not failures,
                "failures": failures,
                "unresolvable": bool(unresolvable[i]),
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
