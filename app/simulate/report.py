"""A simulation as the documented JSON, or as a table for a person."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.simulate.capacity import SHAPES
from app.simulate.placement import event_parts
from app.simulate.run import Simulation
from app.state.snapshot import MEMORY
from app.state.table import IntArray
from app.wire.quantity import CPU

SCORE_NOTE = (
    "scores are the extender's 0..10 only: kube-scheduler adds its own plugins' scores "
    "(weighted), which the simulation leaves out"
)


def _amounts(resources: Sequence[str], vector: IntArray) -> dict[str, int]:
    return {r: int(v) for r, v in zip(resources, vector) if v}


def as_json(simulation: Simulation) -> dict[str, Any]:
    """The ``--format json`` document: exactly the documented top-level keys."""
    resources = simulation.resources
    groups = {(g.pool, g.gpu_type): g for g in simulation.groups}
    shortfall = []
    for addition in simulation.additions:
        group = groups[(addition.pool, addition.gpu_type)]
        shortfall.append(
            {
                "pool": addition.pool,
                "gpu_type": addition.gpu_type,
                "pods": addition.pods,
                "add_nodes": [{"like": k, "count": n} for k, n in addition.add_nodes.items()],
                "demand": _amounts(resources, group.demand),
                "free": _amounts(resources, group.free),
            }
        )
    return {
        "placed": simulation.placed,
        "unplaced": simulation.unplaced,
        "elapsed_ms": round(simulation.elapsed_ms, 1),
        "placements": [
            {"pod": p.pod.key, "node": p.node, "score": p.score, "reasons": p.reasons}
            for p in simulation.placements
        ],
        "shortfall": shortfall,
        "unfittable": [{"pod": u.pod, "reason": u.reason} for u in simulation.unfittable],
    }


def _human(resource: str, amount: int) -> str:
    if resource == CPU:
        return f"{amount / 1000:g}"
    if resource == MEMORY:
        return f"{amount / 2**30:.4g}Gi"
    return str(amount)


def _brief(resources: Sequence[str], vector: IntArray, shown: Sequence[str]) -> str:
    amounts = dict(zip(resources, vector.tolist()))
    return " / ".join(_human(r, amounts[r]) for r in shown)


def _columns(rows: Sequence[Sequence[str]], header: Sequence[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows]
    ]


def as_table(simulation: Simulation, gpu_resource: str) -> str:
    """Placements, per pool and GPU type demand / free / unplaced / nodes to add, and the pods
    no node shape can hold."""
    shown = [CPU, MEMORY, gpu_resource]
    lines = [
        f"{len(simulation.placements)} pending pods against {simulation.nodes} nodes: "
        f"{simulation.placed} placed on {simulation.nodes_touched} nodes, "
        f"{simulation.unplaced} unplaced ({simulation.elapsed_ms:.1f} ms)",
        f"({SCORE_NOTE})",
        "",
    ]
    rows = []
    for p in simulation.placements:
        rows.append([p.pod.key, p.node or "-", "-" if p.score is None else str(p.score), ""])
        if not p.placed:  # kube-scheduler's event, one "count reason" a line
            rows[-1][3] = f"0/{simulation.nodes} nodes are available:"
            rows += [["", "", "", f"  {part}"] for part in event_parts(p.reasons)]
    lines += _columns(rows, ["POD", "NODE", "SCORE", "WHY NOT (kube-scheduler's event)"])
    added: Mapping[tuple[str | None, str | None], int] = {
        (a.pool, a.gpu_type): sum(a.add_nodes.values()) for a in simulation.additions
    }
    lines += ["", f"demand and free capacity (cpu cores / memory / {gpu_resource}):"]
    lines += _columns(
        [
            [g.pool or "-", g.gpu_type or "-", str(g.pending), str(g.placed),
             str(g.pending - g.placed), _brief(simulation.resources, g.demand, shown),
             _brief(simulation.resources, g.free, shown), str(added.get((g.pool, g.gpu_type), 0))]
            for g in simulation.groups
        ],
        ["POOL", "GPU TYPE", "PENDING", "PLACED", "UNPLACED", "DEMAND", "FREE BEFORE", "ADD"],
    )  # fmt: skip
    if simulation.additions:
        lines += ["", "what to add (first-fit decreasing over the unplaced pods):"]
        for a in simulation.additions:
            nodes = ", ".join(f"{n} × like {like}" for like, n in a.add_nodes.items())
            where = f"pool {a.pool or '-'}, GPU type {a.gpu_type or '-'}"
            lines.append(f"  {nodes}  ({where}; for {a.pods} pod{'s' if a.pods > 1 else ''})")
    if simulation.unfittable:
        lines += ["", "no existing node shape can hold, even empty:"]
        for u in simulation.unfittable:
            lines.append(f"  {u.pod}: 0/{u.shapes} {SHAPES} are available:")
            lines += [f"    {part}" for part in event_parts(u.reasons)]
    return "\n".join(lines) + "\n"


def comparison_table(first: tuple[str, Simulation], second: tuple[str, Simulation]) -> str:
    """Two simulations of the same pods side by side."""
    rows = [
        ["placed", *(str(s.placed) for _, s in (first, second))],
        ["unplaced", *(str(s.unplaced) for _, s in (first, second))],
        ["nodes touched", *(str(s.nodes_touched) for _, s in (first, second))],
        ["nodes to add", *(str(s.nodes_to_add) for _, s in (first, second))],
        ["unfittable", *(str(len(s.unfittable)) for _, s in (first, second))],
        ["elapsed ms", *(f"{s.elapsed_ms:.1f}" for _, s in (first, second))],
    ]
    return "\n".join(_columns(rows, ["", first[0], second[0]])) + "\n"
