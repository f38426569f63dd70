"""The preempt verb's decision: which of kube-scheduler's preemption candidates would truly make
room for the preemptor.

kube-scheduler picks victims with a dry run of its in-tree plugins, which cannot see this
extender's ledger: room held by live reservations of other pods looks freeable. For each
candidate node the extender runs its own filter with the victims' room given back (and the pod's
own reservations, less what nominated pods of the same or higher priority hold, as in filter).
A node where the preemptor then passes is kept with kube-scheduler's victims unchanged; any other
node is dropped, so no pod is evicted there for nothing. Victims are never added nor reprieved:
see ``docs/preemption.md`` for why.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.policy.engine import FilterOutcome
from app.state.snapshot import Snapshot
from app.state.table import IntArray
from app.wire.types import ExtenderPreemptionArgs, MetaPod, MetaVictims, Victims

NO_VICTIMS = "no victims named (kube-scheduler refuses a node without victims)"
UNNAMED_VICTIM = "a victim without a UID (it could not be named back to kube-scheduler)"
Passes = Callable[[Mapping[str, IntArray], Sequence[str]], FilterOutcome]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One candidate node as kube-scheduler sent it: its victims' UIDs in kube-scheduler's
    order (decreasing importance), or None when a victim cannot be named."""

    node: str
    victims: tuple[str, ...] | None
    pdb_violations: int


@dataclass(slots=True)
class PreemptionVerdict:
    """The answer: kept nodes as ``MetaVictims`` JSON, dropped nodes with the reason."""

    kept: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def victims(self) -> int:
        """Victims on the kept nodes (the ones kube-scheduler may evict)."""
        return sum(len(v["Pods"]) for v in self.kept.values())


def candidates(args: ExtenderPreemptionArgs) -> list[Candidate]:
    """The candidate nodes of either map (nodeCacheCapable true: UIDs; false: whole pods).
    kube-scheduler sends one of them; should both come, a node in ``NodeNameToMetaVictims``
    is read from there."""
    found: dict[str, Candidate] = {}
    for node, victims in (args.NodeNameToVictims or {}).items():
        found[node] = _candidate(node, victims)
    for node, meta in (args.NodeNameToMetaVictims or {}).items():
        found[node] = _candidate(node, meta)
    return list(found.values())


def _candidate(node: str, victims: Victims | MetaVictims | None) -> Candidate:
    if victims is None:
        return Candidate(node, (), 0)
    uids: list[str] = []
    for pod in victims.Pods or ():
        if pod is None:
            uid = ""
        elif isinstance(pod, MetaPod):
            uid = pod.UID
        else:
            uid = pod.metadata.uid
        if not uid:
            return Candidate(node, None, victims.NumPDBViolations)
        uids.append(uid)
    return Candidate(node, tuple(uids), victims.NumPDBViolations)


def preemption_verdict(
    snapshot: Snapshot, args: ExtenderPreemptionArgs, passes: Passes
) -> PreemptionVerdict:
    """Keep the candidates where ``passes`` (the filter, with each node's freed room given
    back) lets the preemptor through; drop the rest with the filter's reason."""
    verdict = PreemptionVerdict()
    named: list[Candidate] = []
    for candidate in candidates(args):
        if candidate.victims is None:
            verdict.dropped[candidate.node] = UNNAMED_VICTIM
        elif not candidate.victims:
            verdict.dropped[candidate.node] = NO_VICTIMS
        else:
            named.append(candidate)
    if not named:
        return verdict
    freed = {c.node: _freed(snapshot, c) for c in named}
    outcome = passes(freed, [c.node for c in named])
    reasons = _reasons(outcome)
    for i, candidate in enumerate(named):
        if outcome.passed[i]:
            verdict.kept[candidate.node] = {
                "Pods": [{"UID": uid} for uid in candidate.victims or ()],
                "NumPDBViolations": candidate.pdb_violations,
            }
        else:
            verdict.dropped[candidate.node] = f"not enough with these victims: {reasons[i]}"
    return verdict


def _freed(snapshot: Snapshot, candidate: Candidate) -> IntArray:
    """What the victims hold on the node in this snapshot's accounting (a victim the snapshot
    does not count there frees nothing)."""
    total = np.zeros(len(snapshot.table.resources), np.int64)
    for uid in dict.fromkeys(candidate.victims or ()):
        held = snapshot.counted_on(uid, candidate.node)
        if held is not None:
            total += held
    return total


def _reasons(outcome: FilterOutcome) -> dict[int, str]:
    reasons: dict[int, str] = {}
    for group in outcome.groups:
        for index in outcome.order[group.start : group.stop].tolist():
            reasons[index] = group.reason
    return reasons
