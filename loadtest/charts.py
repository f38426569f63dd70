"""PNG charts of the load results, drawn beside the results files with matplotlib (from the
``load`` extra; never a server dependency).

- ``<scenario>.png``: p50 / p90 / p99 of k6's http_req_duration, medians over the rounds, for
  each server measured (the floor, the Go peer floor, the extender), and beside it each
  server's CPU time per request;
- ``cluster.png``: kube-scheduler pods/s per set-up for each cluster size of the cluster
  benchmark (``results/cluster.json``, written by ``make bench-cluster``), median over rounds
  with the range as error bars.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PERCENTILES = (("p50", "med"), ("p90", "p(90)"), ("p99", "p(99)"))
# results "side" → label and colour, in drawing order
SIDES = {
    "floor": ("Python floor (bare ASGI)", "#9e9e9e"),
    "go-floor": ("Go peer floor", "#4c9bd6"),
    "target": ("extender", "#e4572e"),
}
SETUP_LABELS = {
    "none": "no extender",
    "floor": "do-nothing extender",
    "floor-bind": "do-nothing extender + Go bind-only extender",
    "ours": "placement-extender",
    "ours-noahead": "placement-extender, no reserving ahead",
}
SETUP_COLOURS = {"none": "#bdbdbd", "floor": "#9e9e9e", "floor-bind": "#616161", "ours": "#e4572e"}
CLUSTER_FILE = "cluster.json"


class MatplotlibMissing(RuntimeError):
    """matplotlib is not installed (it comes with the ``load`` extra)."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise MatplotlibMissing(
            "matplotlib is not installed: .venv/bin/pip install -e '.[load]'"
        ) from e
    return plt


# --- data ----------------------------------------------------------------------------------------


def latency_series(res: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """{side: {"p50": ms, "p90": ms, "p99": ms}} of a scenario's results, each the median over
    that side's rounds; sides that were not measured are left out."""
    out: dict[str, dict[str, float]] = {}
    for side in SIDES:
        rounds = [
            r["metrics"].get("http_req_duration", {})
            for r in res.get("runs", [])
            if r.get("side") == side
        ]
        values = {
            label: statistics.median(vs)
            for label, stat in PERCENTILES
            if (vs := [m[stat] for m in rounds if m.get(stat) is not None])
        }
        if len(values) == len(PERCENTILES):
            out[side] = values
    return out


def cpu_series(res: Mapping[str, Any]) -> dict[str, float]:
    """{side: the server's CPU ms per request, median over its rounds}: steadier than latency
    on a shared machine, because other processes' load delays requests but adds no CPU."""
    out = {}
    for side in SIDES:
        values = [
            r["server_cpu_ms_per_req"]
            for r in res.get("runs", [])
            if r.get("side") == side and r.get("server_cpu_ms_per_req") is not None
        ]
        if values:
            out[side] = float(statistics.median(values))
    return out


@dataclass(frozen=True)
class ClusterSize:
    """One cluster size of the cluster benchmark: pods/s per set-up, every round."""

    nodes: int
    pods: int
    pods_per_s: dict[str, list[float]]  # set-up → one figure a round
    mix: str = ""
    """The pod mix (``shared``, ``unique``…); "" in files written before mixes."""

    def median(self, setup: str) -> float:
        return float(statistics.median(self.pods_per_s[setup]))


def cluster_sizes(data: Mapping[str, Any], source: str = CLUSTER_FILE) -> list[ClusterSize]:
    """The sizes of a cluster benchmark result:
    ``{"sizes": [{"nodes", "pods", "mix", "rounds", "setups": {name: {"pods_per_s": [...]}}}]}``
    (``mix`` optional)."""
    sizes = data.get("sizes") if isinstance(data, Mapping) else None
    if not isinstance(sizes, list) or not sizes:
        raise ValueError(f"{source}: expected a non-empty list under 'sizes'")
    out = []
    for i, size in enumerate(sizes):
        try:
            per_setup = {
                name: [float(v) for v in setup["pods_per_s"]]
                for name, setup in size["setups"].items()
            }
            entry = ClusterSize(
                int(size["nodes"]), int(size["pods"]), per_setup, str(size.get("mix", ""))
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ValueError(
                f"{source}: sizes[{i}] needs nodes, pods and setups.<name>.pods_per_s: {e!r}"
            ) from e
        if not per_setup or not all(per_setup.values()):
            raise ValueError(f"{source}: sizes[{i}] has a set-up without pods_per_s figures")
        out.append(entry)
    return out


# --- drawing -------------------------------------------------------------------------------------


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    _pyplot().close(fig)
    return path


def _bars(
    ax: Any,
    groups: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    errors: Sequence[Sequence[Sequence[float]] | None] | None = None,
    digits: int = 1,
) -> None:
    """Grouped bars: one group per label in ``groups``, one bar per (label, colour, values)."""
    width = 0.8 / len(series)
    for i, (label, colour, values) in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        err = errors[i] if errors else None
        bars = ax.bar(xs, values, width, label=label, color=colour, yerr=err, capsize=3)
        ax.bar_label(bars, labels=[f"{v:.{digits}f}" for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)), groups)
    ax.legend(fontsize=8)


def write_latency_chart(results_json: Path) -> list[Path]:
    """``<scenario>.png`` beside a scenario's results JSON ([] when it has no latencies)."""
    res = json.loads(results_json.read_text())
    series = latency_series(res)
    if not series:
        return []
    plt = _pyplot()
    fig, (ax, cpu_ax) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [3, 1]})
    _bars(
        ax,
        [label for label, _ in PERCENTILES],
        [(SIDES[s][0], SIDES[s][1], [v[p] for p, _ in PERCENTILES]) for s, v in series.items()],
        digits=2,
    )
    ax.set_yscale("log")  # a 1 ms floor and a 200 ms miss both stay readable
    ax.set_ylabel("http_req_duration, ms (log scale)")
    verdict = res.get("verdict", {})
    ratios = [f"p99 extender ÷ floor {verdict['ratio']:.2f}x"] if verdict.get("ratio") else []
    if verdict.get("go_ratio"):
        ratios.append(f"÷ Go peer {verdict['go_ratio']:.2f}x")
    ax.set_title(
        f"{res.get('scenario', results_json.stem)}: {res.get('load', '')},"
        f" medians of {res.get('rounds', '?')} rounds, {res.get('when', '')[:10]}\n"
        + ", ".join(ratios),
        fontsize=9,
    )
    cpu = cpu_series(res)
    bars = cpu_ax.bar(
        [SIDES[s][0].split(" (")[0] for s in cpu],
        list(cpu.values()),
        color=[SIDES[s][1] for s in cpu],
    )
    cpu_ax.bar_label(bars, labels=[f"{v:.2f}" for v in cpu.values()], fontsize=7, padding=2)
    cpu_ax.set_ylabel("server CPU, ms per request (median)")
    cpu_ax.tick_params(axis="x", labelsize=7, labelrotation=20)
    return [_save(fig, results_json.with_suffix(".png"))]


def write_cluster_chart(results: Path) -> list[Path]:
    """``cluster.png`` from ``results/cluster.json`` ([] when the benchmark has not run)."""
    source = results / CLUSTER_FILE
    if not source.exists():
        return []
    sizes = cluster_sizes(json.loads(source.read_text()), str(source))
    setups = [s for s in SETUP_LABELS if any(s in z.pods_per_s for z in sizes)]
    setups += sorted({s for z in sizes for s in z.pods_per_s} - set(setups))
    shown = [z for z in sizes if all(s in z.pods_per_s for s in setups)]
    if not shown:
        raise ValueError(f"{source}: no size has every set-up ({', '.join(setups)})")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    groups = []
    for z in shown:
        label = f"{z.nodes:,} nodes / {z.pods:,} pods" + (f"\n{z.mix} mix" if z.mix else "")
        floor = next((f for f in ("floor-bind", "floor") if f in z.pods_per_s), None)
        if "ours" in z.pods_per_s and floor:
            label += f"\nours ÷ {floor} {z.median('ours') / z.median(floor):.2f}x"
        groups.append(label)
    series, errors = [], []
    for s in setups:
        medians = [z.median(s) for z in shown]
        series.append((SETUP_LABELS.get(s, s), SETUP_COLOURS.get(s, "#607d8b"), medians))
        errors.append(
            [
                [m - min(z.pods_per_s[s]) for m, z in zip(medians, shown, strict=True)],
                [max(z.pods_per_s[s]) - m for m, z in zip(medians, shown, strict=True)],
            ]
        )
    _bars(ax, groups, series, errors, digits=0)
    ax.tick_params(axis="x", labelsize=7 if len(groups) > 2 else 10)
    ax.set_ylabel("kube-scheduler pods/s (median, range over rounds)")
    ax.set_title("Real kube-scheduler throughput per set-up (make bench-cluster)", fontsize=9)
    return [_save(fig, results / "cluster.png")]


def write_all(results: Path) -> list[Path]:
    """Every chart the results directory has data for."""
    written = []
    for path in sorted(results.glob("*.json")):
        if path.name != CLUSTER_FILE:
            written += write_latency_chart(path)
    return written + write_cluster_chart(results)
