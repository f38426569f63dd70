"""``python -m bench.preemption_bench``: what nominated-pod accounting and the preempt verb cost,
in-process (the extender's own decode → policy → encode; medians over every pod).

- filter at 500 and 5,000 nodes (names mode, a new window of candidates per pod), with 0, 10 and
  100 pending pods nominated to random nodes at a priority above every pod's (so each counts in
  every decision). Run on a checkout without nominated-pod accounting, the same script measures
  "before" (the nominations are then ignored).
- preempt: ExtenderPreemptionArgs naming 10 and 100 candidate nodes (kube-scheduler's dry run
  offers max(10 % of nodes, 100) by default), 3 victims each, in both modes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec

from app.extender import Extender
from app.state.records import pod_facts
from app.wire.codec import decode_extender_args_raw_names
from app.wire.types import Pod
from bench.handler_bench import build_extender
from loadtest.generate import make_cluster, make_payloads

NOMINATED_PRIORITY = 1_000_000


def median_ms(function: Callable[[bytes], object], bodies: list[bytes]) -> float:
    for body in bodies[:20]:  # warm caches (demand shapes, reason texts)
        function(body)
    times = []
    for body in bodies:
        start = time.perf_counter_ns()
        function(body)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def nominate(extender: Extender, count: int, rng: random.Random, serial: list[int]) -> None:
    """Add ``count`` pending pods nominated to random nodes (1 GPU or 2 CPUs each)."""
    names = sorted(extender.snapshot.nodes)
    for _ in range(count):
        serial[0] += 1
        gpu = rng.random() < 0.5
        requests = {"nvidia.com/gpu": "1"} if gpu else {"cpu": "2", "memory": "4Gi"}
        obj = {
            "metadata": {"name": f"nominated-{serial[0]}", "namespace": "bench",
                         "uid": f"nominated-{serial[0]}"},
            "spec": {"priority": NOMINATED_PRIORITY,
                     "containers": [{"name": "c", "resources": {"requests": requests}}]},
            "status": {"phase": "Pending", "nominatedNodeName": rng.choice(names)},
        }  # fmt: skip
        extender.snapshot.set_pod(pod_facts(msgspec.convert(obj, Pod)))


def preempt_bodies(
    extender: Extender, cluster: dict[str, Any], pods: list[dict[str, Any]], nodes: int, full: bool
) -> list[bytes]:
    """One body per pending pod: ``nodes`` candidates with 3 of their pods as victims each."""
    snapshot = extender.snapshot
    objects = {o["metadata"]["uid"]: o for o in cluster["items"] if o["kind"] == "Pod"}
    by_node: dict[str, list[str]] = {}
    for uid, facts in snapshot.pods.items():
        if facts.node_name and uid in objects:
            by_node.setdefault(facts.node_name, []).append(uid)
    candidates = [n for n, uids in sorted(by_node.items()) if len(uids) >= 3]
    rng = random.Random(f"preempt:{nodes}")
    bodies = []
    for pod in pods:
        chosen = rng.sample(candidates, min(nodes, len(candidates)))
        if full:
            victims: dict[str, Any] = {
                n: {"Pods": [objects[u] for u in by_node[n][:3]], "NumPDBViolations": 0}
                for n in chosen
            }
            args = {"Pod": pod, "NodeNameToVictims": victims, "NodeNameToMetaVictims": None}
        else:
            meta = {
                n: {"Pods": [{"UID": u} for u in by_node[n][:3]], "NumPDBViolations": 0}
                for n in chosen
            }
            args = {"Pod": pod, "NodeNameToVictims": None, "NodeNameToMetaVictims": meta}
        bodies.append(json.dumps(args).encode())
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    codec = importlib.import_module("app.wire.codec")
    decode: Callable[[bytes], Any] | None = getattr(codec, "decode_preemption_args", None)
    print(f"python {platform.python_version()}, {args.requests} pods per case, medians (ms)")
    for nodes, pods in ((500, 1000), (5000, 10000)):
        cluster = make_cluster(nodes, pods, args.seed)
        extender = build_extender(cluster)
        payloads = make_payloads(
            cluster, mode="names", candidates=nodes, count=args.requests, seed=args.seed
        )

        def filter_call(body: bytes, extender: Extender = extender) -> bytes:
            return extender.filter(decode_extender_args_raw_names(body))

        rng, serial, added = random.Random(args.seed), [0], 0
        for nominated in (0, 10, 100):
            nominate(extender, nominated - added, rng, serial)
            added = nominated
            ms = median_ms(filter_call, payloads.bodies)
            print(f"filter   {nodes:>5} nodes, {nominated:>3} nominated pods: {ms:.3f}")
        if decode is None:  # a checkout without the preempt verb: filter only
            continue

        def preempt_call(
            body: bytes, extender: Extender = extender, decode: Callable[[bytes], Any] = decode
        ) -> bytes:
            return extender.preempt(decode(body))

        for candidates in (10, 100):
            for full in (False, True):
                bodies = preempt_bodies(extender, cluster, payloads.pods, candidates, full)
                ms = median_ms(preempt_call, bodies)
                mode = "full pods" if full else "UIDs"
                print(f"preempt  {nodes:>5} nodes, {candidates:>3} candidates × 3 victims "
                      f"({mode}): {ms:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
