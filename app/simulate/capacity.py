"""What capacity to add: for the pods the cluster could not place, few new nodes shaped like
existing ones, found by first-fit decreasing (a heuristic, not a proven minimum) with the live
path's own predicates.

A *shape* is everything about a node the policy reads except its name and what runs on it:
allocatable resources, GPU type and memory, pool, pool-only, pool priority, spot. Each distinct
shape is represented by its lowest-named node (``like``), and is tried empty: a pod no empty
shape passes is *unfittable* (adding nodes like the existing ones would not help), with the
reasons the shapes gave. The others are grouped by pool and most preferred GPU type; per group,
pods are taken largest first (GPUs, then CPU, then memory) and each goes to the first added node
it fits (the same filter, over the added nodes with the pods already put there), or opens a new
node of the shape that holds the most pods of the group (its preferred GPU type first).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.engine import Policy
from app.simulate.placement import Placement, event_message, reason_counts
from app.state.records import NodeFacts, stable_hash64
from app.state.snapshot import Snapshot
from app.state.table import BoolArray

SHAPES = "node shapes"

GroupKey = tuple[str | None, str | None]
"""(pool, most preferred GPU type) of a pod; None: no pool / a CPU pod."""


def group_of(demand: PodDemand) -> GroupKey:
    """The pool and most preferred GPU type a pod's shortfall is reported under."""
    return (demand.pool, demand.preferred_gpu_type)


@dataclass(frozen=True, slots=True)
class Addition:
    """Nodes to add for one pool and GPU type, and how many of its unplaced pods they place."""

    pool: str | None
    gpu_type: str | None
    pods: int
    add_nodes: dict[str, int]
    """Existing node name (the shape to copy) → how many such nodes, in order of need."""


@dataclass(frozen=True, slots=True)
class Unfittable:
    """A pod that no existing node shape can hold, even empty."""

    pod: str
    reasons: dict[str, int]
    """Each distinct reason → how many shapes gave it."""
    shapes: int

    @property
    def reason(self) -> str:
        return event_message(self.reasons, self.shapes, SHAPES)


@dataclass(frozen=True, slots=True)
class Plan:
    additions: list[Addition]
    unfittable: list[Unfittable]


def shape_key(facts: NodeFacts) -> Hashable:
    """What the policy reads of a node, less its name, state and ledger."""
    return (
        tuple(sorted(facts.allocatable.items())), facts.gpu_type, facts.gpu_memory_mib,
        facts.pool, facts.pool_only, facts.pool_priority, facts.preemptible,
    )  # fmt: skip


def _blank(facts: NodeFacts, name: str) -> NodeFacts:
    """A new, empty node of ``facts``' shape."""
    return dataclasses.replace(
        facts, name=name, resource_version="", uid="", name_hash=stable_hash64(name)
    )


class Shapes:
    """One empty node of each distinct, readable shape among ``nodes``."""

    def __init__(self, policy: Policy, template: Snapshot, nodes: Iterable[NodeFacts]) -> None:
        self.policy = policy
        representatives: dict[Hashable, NodeFacts] = {}
        for facts in sorted(nodes, key=lambda f: f.name):
            if not facts.problems:
                representatives.setdefault(shape_key(facts), facts)
        self.like = sorted(f.name for f in representatives.values())
        self.facts = {f.name: f for f in representatives.values()}
        self.empty = Snapshot(template.parsing, template.clock)
        for name in self.like:
            self.empty.set_node(_blank(self.facts[name], name))
        self.rows = self.empty.table.rows_for(self.like)

    def holding(self, demand: PodDemand) -> tuple[BoolArray, dict[str, int]]:
        """Per shape (in ``like`` order): holds the pod when empty; and why the others fail."""
        nodes = Candidates(self.empty.table, self.rows, self.empty.nodes)
        outcome = self.policy.filter(demand, nodes)
        return outcome.passed, reason_counts(outcome)


def _largest_first(demand: PodDemand, columns: Sequence[int]) -> tuple[int, ...]:
    return tuple(-int(demand.requests[c]) for c in columns)


class _AddedNodes:
    """The nodes added for one group, filled first-fit with the live accounting."""

    def __init__(self, shapes: Shapes) -> None:
        self.shapes = shapes
        self.snapshot = Snapshot(shapes.empty.parsing, shapes.empty.clock)
        self.names: list[str] = []
        self.like: list[str] = []

    def first_fit(self, demand: PodDemand) -> str | None:
        if not self.names:
            return None
        table = self.snapshot.table
        nodes = Candidates(table, table.rows_for(self.names), self.snapshot.nodes)
        passed = np.flatnonzero(self.shapes.policy.filter(demand, nodes).passed)
        return self.names[int(passed[0])] if len(passed) else None

    def open(self, like: str) -> str:
        name = f"{like}+{len(self.names) + 1}"
        self.snapshot.set_node(_blank(self.shapes.facts[like], name))
        self.names.append(name)
        self.like.append(like)
        return name


def plan_additions(policy: Policy, snapshot: Snapshot, placements: Sequence[Placement]) -> Plan:
    """Nodes to add for the unplaced pods, per (pool, GPU type), and the pods nothing holds."""
    if all(p.placed for p in placements):
        return Plan([], [])
    shapes = Shapes(policy, snapshot, snapshot.nodes.values())
    unfittable: list[Unfittable] = []
    groups: dict[GroupKey, list[tuple[Placement, BoolArray]]] = {}
    for placement in placements:
        if placement.placed:
            continue
        holds, why = shapes.holding(placement.demand)
        if not holds.any():
            unfittable.append(Unfittable(placement.pod.key, why, len(shapes.like)))
        else:
            groups.setdefault(group_of(placement.demand), []).append((placement, holds))

    table = snapshot.table
    size_columns = _size_columns(table.resources, table.gpu_column)
    additions = []
    for (pool, gpu_type), members in sorted(groups.items(), key=lambda g: group_order(g[0])):
        holds_count = np.sum([holds for _, holds in members], axis=0)
        preference = sorted(
            range(len(shapes.like)),
            key=lambda s: (
                shapes.facts[shapes.like[s]].gpu_type != gpu_type,
                -int(holds_count[s]),
                *(-int(shapes.empty.table.alloc[c, shapes.rows[s]]) for c in size_columns),
                shapes.like[s],
            ),
        )
        added = _AddedNodes(shapes)
        members.sort(key=lambda m: _largest_first(m[0].demand, size_columns))
        for placement, holds in members:
            node = added.first_fit(placement.demand)
            if node is None:
                node = added.open(shapes.like[next(s for s in preference if holds[s])])
            added.snapshot.set_pod(dataclasses.replace(placement.facts, node_name=node))
        additions.append(Addition(pool, gpu_type, len(members), dict(Counter(added.like))))
    return Plan(additions, unfittable)


def _size_columns(resources: Sequence[str], gpu_column: int) -> list[int]:
    """Resource columns in the order pods are sized by: GPUs first, then the table's order
    (CPU, memory, ...)."""
    return [gpu_column, *(c for c in range(len(resources)) if c != gpu_column)]


def group_order(key: GroupKey) -> tuple[str, str]:
    """Groups sort by pool, then GPU type (None first)."""
    return (key[0] or "", key[1] or "")
