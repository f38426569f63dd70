"""PNG charts of a simulation (the optional ``report`` extra: matplotlib, never imported by the
server): node utilisation before/after per resource, grouped by pool; shortfall per pool and
GPU type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # figures without pyplot: no GUI backend, no global state

from app.simulate.run import PoolUsage, Simulation
from app.state.snapshot import MEMORY
from app.wire.quantity import CPU

UTILISATION_PNG = "utilisation.png"
SHORTFALL_PNG = "shortfall.png"


def _percent(usage: PoolUsage, pool: str, column: int) -> float:
    total = int(usage.allocatable[pool][column])
    return 100.0 * int(usage.taken[pool][column]) / total if total else 0.0


def utilisation_chart(simulation: Simulation, path: Path, gpu_resource: str) -> None:
    """One panel per resource; per pool a bar before and a bar after placing the pods."""
    resources = [r for r in (CPU, MEMORY, gpu_resource) if r in simulation.resources]
    pools = sorted(simulation.before.allocatable)
    labels = [p or "(no pool)" for p in pools]
    x = np.arange(len(pools))
    figure = Figure(figsize=(max(6, 1.3 * len(pools)), 8))
    axes = figure.subplots(len(resources), 1)
    for axis, resource in zip(np.atleast_1d(axes), resources):
        column = simulation.resources.index(resource)
        before = [_percent(simulation.before, p, column) for p in pools]
        after = [_percent(simulation.after, p, column) for p in pools]
        axis.bar(x - 0.2, before, 0.4, label="before", color="#9bb7d4")
        axis.bar(x + 0.2, after, 0.4, label="after", color="#1f5f99")
        axis.set_ylim(0, 100)
        axis.set_ylabel(f"{resource} used %")
        axis.set_xticks(x, labels)
        axis.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].legend(loc="upper right")
    figure.suptitle(f"Node utilisation per pool: {simulation.placed} pods placed")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def shortfall_chart(simulation: Simulation, path: Path) -> None:
    """Per pool and GPU type with unplaced pods: those that added nodes would place and those
    no node shape holds, with the nodes to add written over each bar."""
    added = {(a.pool, a.gpu_type): a for a in simulation.additions}
    groups = [g for g in simulation.groups if g.pending > g.placed]
    labels = [
        f"{g.pool or '(no pool)'}\n{g.gpu_type or 'CPU'}\nplaced {g.placed}/{g.pending}"
        for g in groups
    ]
    fixable = np.array([added[(g.pool, g.gpu_type)].pods if (g.pool, g.gpu_type) in added else 0
                        for g in groups])  # fmt: skip
    stuck = np.array([g.pending - g.placed for g in groups]) - fixable
    x = np.arange(len(groups))
    figure = Figure(figsize=(max(6, 1.4 * len(groups)), 4.5))
    axis = figure.subplots()
    axis.bar(x, fixable, color="#e0a030", label="fit on added nodes")
    axis.bar(x, stuck, bottom=fixable, color="#c0392b", label="no existing node shape holds them")
    for i, group in enumerate(groups):
        addition = added.get((group.pool, group.gpu_type))
        if addition is not None:
            text = "\n".join(f"+{n} like {like}" for like, n in addition.add_nodes.items())
            axis.annotate(text, (i, group.pending - group.placed), ha="center", va="bottom",
                          fontsize=8)  # fmt: skip
    axis.set_xticks(x, labels, fontsize=8)
    axis.set_ylabel("unplaced pods")
    axis.set_ylim(0, max([g.pending - g.placed for g in groups], default=1) * 1.3 + 0.5)
    axis.legend(loc="upper right", fontsize=8)
    axis.set_title(f"Shortfall: {simulation.unplaced} pods unplaced, nodes to add")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_charts(simulation: Simulation, directory: Path, gpu_resource: str) -> list[Path]:
    """Write both charts into ``directory`` (created if needed); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    utilisation, shortfall = directory / UTILISATION_PNG, directory / SHORTFALL_PNG
    utilisation_chart(simulation, utilisation, gpu_resource)
    shortfall_chart(simulation, shortfall)
    return [utilisation, shortfall]
