"""One simulation: fork the snapshot, place the pods, plan the nodes to add, time it all."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.config import Settings
from app.contract import ANY_GPU_TYPE
from app.extender import Extender
from app.simulate.capacity import (
    Addition,
    Plan,
    Unfittable,
    group_of,
    group_order,
    plan_additions,
)
from app.simulate.pending import PendingPod
from app.simulate.placement import Placement, Placer, placed_nodes
from app.state.records import NodeFacts
from app.state.snapshot import Snapshot
from app.state.table import IntArray, NodeTable

NO_POOL = ""


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """Per pool (``""``: nodes in no pool): what is taken and what is allocatable, per resource
    in the table's column order."""

    taken: dict[str, IntArray]
    allocatable: dict[str, IntArray]


@dataclass(frozen=True, slots=True)
class Group:
    """The pending pods of one pool and most preferred GPU type."""

    pool: str | None
    gpu_type: str | None
    pending: int
    placed: int
    demand: IntArray
    """Summed requests of the group's pending pods."""
    free: IntArray
    """Summed free capacity, before placing, of the nodes of that pool and GPU type."""


@dataclass(frozen=True, slots=True)
class Simulation:
    """Everything a report needs."""

    resources: tuple[str, ...]
    nodes: int
    placements: list[Placement]
    groups: list[Group]
    additions: list[Addition]
    unfittable: list[Unfittable]
    before: PoolUsage
    after: PoolUsage
    elapsed_ms: float

    @property
    def placed(self) -> int:
        return sum(p.placed for p in self.placements)

    @property
    def unplaced(self) -> int:
        return len(self.placements) - self.placed

    @property
    def nodes_touched(self) -> int:
        return len(placed_nodes(self.placements))

    @property
    def nodes_to_add(self) -> int:
        return sum(sum(a.add_nodes.values()) for a in self.additions)


def pool_usage(table: NodeTable, rows: Sequence[int]) -> PoolUsage:
    """Taken (allocatable − free) and allocatable, summed per pool over ``rows``."""
    taken: dict[str, IntArray] = {}
    allocatable: dict[str, IntArray] = {}
    for row in rows:
        pool = table.pools.values[int(table.pool[row])]
        alloc = table.alloc[:, row]
        taken[pool] = taken.get(pool, 0) + alloc - table.free[:, row]
        allocatable[pool] = allocatable.get(pool, 0) + alloc
    return PoolUsage(taken, allocatable)


def simulate(
    settings: Settings, snapshot: Snapshot, pods: Sequence[PendingPod], *, forked: bool = False
) -> Simulation:
    """Place ``pods`` (in the order given) on a fork of ``snapshot``, which stays untouched
    (``forked``: ``snapshot`` already is a fork the caller gives up, used as is).

    Raises ``app.extender.PodError`` for a pod whose annotations or quantities cannot be read.
    """
    started = time.perf_counter()
    extender = Extender(settings, snapshot if forked else snapshot.fork())
    placer = Placer(extender)
    table = extender.snapshot.table
    rows = [int(r) for r in table.rows_for(placer.names)]
    before = pool_usage(table, rows)
    free_before = table.free.copy()
    placements = placer.place_all(pods)
    after = pool_usage(table, rows)
    plan: Plan = plan_additions(extender.policy, extender.snapshot, placements)
    groups = _groups(extender, placements, free_before)
    elapsed = (time.perf_counter() - started) * 1000
    return Simulation(
        table.resources, len(rows), placements, groups, plan.additions, plan.unfittable,
        before, after, elapsed,
    )  # fmt: skip


def _groups(
    extender: Extender, placements: Sequence[Placement], free_before: IntArray
) -> list[Group]:
    """Demand and free capacity per (pool, GPU type) of the pending pods."""
    members: dict[tuple[str | None, str | None], list[Placement]] = {}
    for placement in placements:
        members.setdefault(group_of(placement.demand), []).append(placement)
    snapshot = extender.snapshot
    table, gpu = snapshot.table, snapshot.parsing.gpu_resource
    groups = []
    for (pool, gpu_type), group in sorted(members.items(), key=lambda g: group_order(g[0])):
        rows = [
            table.rows[name]
            for name, node in snapshot.nodes.items()
            if _serves(node, pool, gpu_type, gpu)
        ]
        demand = np.sum([p.demand.requests for p in group], axis=0)
        placed = sum(p.placed for p in group)
        free = free_before[:, rows].sum(axis=1)
        groups.append(Group(pool, gpu_type, len(group), placed, demand, free))
    return groups


def _serves(node: NodeFacts, pool: str | None, gpu_type: str | None, gpu_resource: str) -> bool:
    """Whether ``node`` is one of the pool's nodes of that GPU type (no pool: the nodes that are
    not pool-only; no GPU type: the nodes without GPUs)."""
    if node.problems or (node.pool != pool if pool else node.pool_only):
        return False
    has_gpus = node.allocatable.get(gpu_resource, 0) > 0
    if gpu_type is None:
        return not has_gpus
    return has_gpus and gpu_type in (ANY_GPU_TYPE, node.gpu_type)
