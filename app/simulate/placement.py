"""The placement loop: each pending pod, in queue order, through the live path's filter and
prioritize over every node, onto the best-scoring node (ties: the lowest name), where it takes
its capacity before the next pod is decided, as a bind's reservation would."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.extender import Extender
from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.engine import FilterOutcome
from app.simulate.pending import PendingPod
from app.state.records import PodFacts, pod_facts
from app.state.snapshot import Snapshot
from app.state.table import IntArray


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one pod went, or why it went nowhere."""

    pod: PendingPod
    demand: PodDemand
    facts: PodFacts
    """The pod as the snapshot counts it (``node_name`` set when placed)."""
    node: str | None
    score: int | None
    reasons: dict[str, int]
    """Unplaced: each distinct reason sent to kube-scheduler → how many nodes gave it."""

    @property
    def placed(self) -> bool:
        return self.node is not None


def reason_counts(outcome: FilterOutcome) -> dict[str, int]:
    """Failed candidates counted per reason text, as kube-scheduler counts them for its event."""
    counts: dict[str, int] = {}
    for group in outcome.groups:
        counts[group.reason] = counts.get(group.reason, 0) + group.size
    return counts


def event_parts(reasons: Mapping[str, int]) -> list[str]:
    """The "count reason" strings of kube-scheduler's FitError, in its order (sorted as strings)."""
    return sorted(f"{count} {reason}" for reason, count in reasons.items())


def event_message(reasons: Mapping[str, int], total: int, noun: str = "nodes") -> str:
    """kube-scheduler's FitError text: ``0/N nodes are available: 3 reason-a, 4 reason-b.``"""
    return f"0/{total} {noun} are available: {', '.join(event_parts(reasons))}."


class Placer:
    """Places pods one by one on ``extender``'s snapshot, which it changes: give it a fork."""

    def __init__(self, extender: Extender) -> None:
        self.extender = extender
        self.snapshot: Snapshot = extender.snapshot
        self.snapshot.refresh()  # expired reservations no longer count, as in filter
        self.names = sorted(self.snapshot.nodes)
        self._rows = self.snapshot.table.rows_for(self.names)  # by name: ties go to the lowest

    def candidates(
        self,
        rows: npt.NDArray[np.intp] | None = None,
        adjusted: Mapping[int, IntArray] | None = None,
    ) -> Candidates:
        """The nodes as a request naming all of them would see them now; ``adjusted``: what the
        live verbs add to some rows' free room for the pod (its own reservations, less the room
        nominated pods of its priority or higher hold)."""
        snapshot = self.snapshot
        rows = self._rows if rows is None else rows
        return Candidates(snapshot.table, rows, snapshot.nodes, returned=adjusted)

    def place(self, pending: PendingPod) -> Placement:
        """Filter, score the passing nodes (kube-scheduler sends prioritize only those), bind the
        pod in the snapshot to the best. Raises ``PodError`` for a pod that cannot be read."""
        policy = self.extender.policy
        demand = self.extender.demand(pending.pod)
        facts = pod_facts(pending.pod)
        adjusted = self.extender.adjustments(pending.pod, self.snapshot.table)
        outcome = policy.filter(demand, self.candidates(adjusted=adjusted))
        passed = self._rows[outcome.passed]
        if not len(passed):
            return Placement(pending, demand, facts, None, None, reason_counts(outcome))
        scores = policy.score(demand, self.candidates(passed, adjusted)).scores
        best = int(np.argmax(scores))  # the first maximum: rows are in name order
        node = self.snapshot.table.names[int(passed[best])]
        facts = dataclasses.replace(facts, node_name=node)
        self.snapshot.set_pod(facts)
        return Placement(pending, demand, facts, node, int(scores[best]), {})

    def place_all(self, pods: Iterable[PendingPod]) -> list[Placement]:
        """Every pod, in the order given (queue order)."""
        return [self.place(p) for p in pods]


def placed_nodes(placements: Sequence[Placement]) -> set[str]:
    """The nodes that received at least one pod."""
    return {p.node for p in placements if p.node is not None}
