"""Draw the fault suite's figures of record: ``python -m tests.chaos.figures DIR PNG`` reads the
runs' ``DIR/<run>.json`` (written by ``make chaos``) and draws one chart in the style of
loadtest/charts.py — recovery after each fault against its deadline, and the soak's memory and
ledger size over time."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from loadtest.charts import _pyplot, _save

RUNS = (("kill", "replica SIGKILLed"), ("rolling", "rolling restart"),
        ("slow-api", "API server stalled"))  # fmt: skip
REPLICA_COLOURS = ("#e4572e", "#4c9bd6", "#76b041")


def load(directory: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def draw(runs: dict[str, dict[str, Any]], path: Path) -> Path:
    plt = _pyplot()
    soak = runs.get("soak")
    if soak:
        fig, (recovery, memory, ledger) = plt.subplots(1, 3, figsize=(13, 4))
    else:  # the soak did not run (or is not of record): recovery only
        fig, recovery = plt.subplots(figsize=(6, 4))
    shown = [(label, runs[run]) for run, label in RUNS if run in runs]
    bars = recovery.bar([label for label, _ in shown],
                        [r["recovered_seconds"] for _, r in shown], color="#e4572e")  # fmt: skip
    recovery.bar_label(bars, labels=[f"{r['recovered_seconds']:.1f} s" for _, r in shown],
                       fontsize=8, padding=2)  # fmt: skip
    deadlines = [r.get("deadline_seconds") for _, r in shown if r.get("deadline_seconds")]
    if deadlines:
        recovery.axhline(max(deadlines), color="#9e9e9e", linestyle="--", linewidth=1)
        recovery.annotate("deadline: reservation TTL + 15 s", (0, max(deadlines)),
                          fontsize=7, va="bottom", color="#616161")  # fmt: skip
    recovery.set_ylabel("all pods that fit bound, s after the fault")
    recovery.set_title("recovery (3 replicas, 3 profiles, burst of 2x room)", fontsize=9)
    recovery.tick_params(axis="x", labelsize=8)

    if soak:
        minutes = [s["t"] / 60 for s in soak["samples"]]
        for i, colour in enumerate(REPLICA_COLOURS):
            memory.plot(minutes, [s["rss_mb"][i] for s in soak["samples"]], color=colour,
                        label=f"replica {i}")  # fmt: skip
        memory.set_ylim(bottom=0)
        memory.set_xlabel("minutes of churn")
        memory.set_ylabel("RSS, MB")
        growth = ", ".join(f"{g:+.1%}" for g in soak["rss_growth_after_warmup"])
        memory.set_title(f"soak: {soak['nodes']} nodes, {soak['pods_per_second']:g} pods/s "
                         f"created, bound, deleted\nRSS growth after warm-up: {growth}",
                         fontsize=9)  # fmt: skip
        memory.legend(fontsize=7)
        ledger.plot(minutes, [s["entries"] for s in soak["samples"]], color="#4c9bd6")
        ledger.set_xlabel("minutes of churn")
        ledger.set_ylabel("ledger entries, all nodes")
        ledger.set_title(f"soak: {soak['bound']} pods bound; entries at rest: "
                         f"{soak['entries_at_rest']} after {soak['rest_seconds']:.0f} s",
                         fontsize=9)  # fmt: skip
    when = max((r.get("at", 0) for r in runs.values()), default=0)
    commit = next((r.get("commit") for r in runs.values() if r.get("commit")), "?")
    fig.suptitle(f"Faults under load (make chaos, commit {commit}, {_date(when)})", fontsize=10)
    return _save(fig, path)


def _date(at: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    print(draw(load(source), target))
