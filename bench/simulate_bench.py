"""``simulate`` timings: the README's example (100 pods on the demo cluster) and 1,000 pending
pods against a generated 5,000-node cluster. ``make bench-simulate [ARGS=--quick]``."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from app.config import load_settings
from app.simulate.pending import PendingPod, pending_pods, read_pending
from app.simulate.run import Simulation, simulate
from app.sources import FileSource
from app.state.file_source import parse_objects
from app.state.snapshot import NodeParsing, Snapshot
from bench.common import machine
from loadtest.generate import cluster_pods, make_cluster, make_payloads

EXAMPLES = Path(__file__).parent.parent / "examples"


def _generated(nodes: int, running: int, pending: int) -> tuple[Snapshot, list[PendingPod]]:
    settings = load_settings()
    cluster = make_cluster(nodes, running, seed=1)
    snapshot = Snapshot(NodeParsing.from_settings(settings))
    node_facts, pod_facts = parse_objects(cluster, snapshot.parsing, "generated")
    snapshot.replace_nodes(node_facts)
    snapshot.replace_pods(pod_facts)
    payloads = make_payloads(cluster, mode="names", candidates=1, count=pending, seed=2)
    assert len(cluster_pods(cluster)) == running
    return snapshot, pending_pods(payloads.pods, "generated")


def _time(label: str, run: Callable[[], Simulation], rounds: int) -> None:
    elapsed: list[float] = []
    result = run()  # warm-up (imports, caches)
    for _ in range(rounds):
        result = run()
        elapsed.append(result.elapsed_ms)
    pods = len(result.placements)
    median = statistics.median(elapsed)
    print(
        f"| {label} | {pods} | {result.nodes:,} | {result.placed} / {result.unplaced} | "
        f"{median:.0f} ms (min {min(elapsed):.0f}, max {max(elapsed):.0f}) | "
        f"{median / pods * 100:.0f} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500 nodes, 100 pending pods")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    print(f"machine: {machine()}\n")
    print("| case | pending pods | nodes | placed / unplaced | simulate (median) | per 100 pods |")
    print("|---|---|---|---|---|---|")
    demo = FileSource(EXAMPLES / "demo-cluster.yaml").load(settings)
    example = read_pending(EXAMPLES / "pending-pods.yaml")
    _time(
        "examples/pending-pods.yaml on the demo cluster",
        lambda: simulate(settings, demo, example),
        args.rounds,
    )
    nodes, running, pending = (500, 2_000, 100) if args.quick else (5_000, 20_000, 1_000)
    started = time.perf_counter()
    snapshot, pods = _generated(nodes, running, pending)
    took = time.perf_counter() - started
    print(f"\n(generated {nodes} nodes, {running} running pods in {took:.1f} s)\n")
    _time(
        f"generated, {running:,} pods running",
        lambda: simulate(settings, snapshot, pods),
        args.rounds,
    )


if __name__ == "__main__":
    main()
