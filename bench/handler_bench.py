"""``make bench``: decode → policy → encode through the extender's own handler, against a floor.

The floor only decodes the same body (msgspec, untyped) and encodes a same-sized reply naming
every node: the least any extender must do. Handler and floor alternate request by request so
machine noise hits both. Every pod is a different pod, filtered then prioritized as
kube-scheduler calls them. The node list is what kube-scheduler sends: a window of the cluster's
names, locally out of order. Names-mode cases run twice: with a new window every pod, as
kube-scheduler's rotating start index makes it, and with the list repeated for runs of
``--same-list`` pods (``percentageOfNodesToScore: 100`` and an unchanged order). In names mode
prioritize gets the nodes the extender's filter kept, byte for byte as kube-scheduler sends them
(in full-nodes mode it repeats the filter's body).
Target: filter median ≤ 3× floor median; prioritize (whose floor encodes a dict per node) ≤ 4×.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgspec

from app.config import load_settings
from app.extender import Extender
from app.metrics import Metrics
from app.observe import DecisionObserver
from app.state.file_source import parse_objects
from app.state.snapshot import NodeParsing, Snapshot
from app.wire.codec import decode_extender_args_raw_names as decode_extender_args
from loadtest.generate import Payloads, make_cluster, make_payloads

TARGETS = {"filter": 3.0, "prioritize": 4.0}
_decode = msgspec.json.decode
_encode = msgspec.json.encode


def build_extender(cluster: dict[str, Any]) -> Extender:
    settings = load_settings()
    snapshot = Snapshot(NodeParsing.from_settings(settings))
    nodes, pods = parse_objects(cluster, snapshot.parsing, "generated")
    snapshot.replace_nodes(nodes)
    snapshot.replace_pods(pods)
    return Extender(settings, snapshot, DecisionObserver(Metrics()))  # as served


def _names(request: dict[str, Any]) -> list[str]:
    if request.get("NodeNames") is not None:
        return list(request["NodeNames"])
    return [n["metadata"]["name"] for n in request["Nodes"]["items"]]


def floor_filter(body: bytes) -> bytes:
    request = _decode(body)
    if request.get("NodeNames") is not None:
        reply = {"NodeNames": request["NodeNames"], "FailedNodes": {}, "Error": ""}
    else:
        reply = {"Nodes": request["Nodes"], "NodeNames": None, "FailedNodes": {}, "Error": ""}
    return _encode(reply)


def floor_prioritize(body: bytes) -> bytes:
    return _encode([{"Host": n, "Score": 0} for n in _names(_decode(body))])


CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}
"""``cpu`` counts only this thread's CPU time: steadier than wall time on a shared machine."""


def timed(function: Callable[[bytes], bytes], body: bytes, clock: Callable[[], int]) -> float:
    start = clock()
    function(body)
    return (clock() - start) / 1e6


def kept_nodes_body(filter_body: bytes, filter_reply: bytes) -> bytes:
    """The prioritize body kube-scheduler sends after ``filter_reply``: the same pod, the kept
    names as Go's encoding/json writes them."""
    request = _decode(filter_body)
    request["NodeNames"] = _decode(filter_reply)["NodeNames"]
    return _encode(request)


def run_case(
    label: str, extender: Extender, bodies: list[bytes], clock: Callable[[], int]
) -> list[dict[str, Any]]:
    def handle_filter(body: bytes) -> bytes:
        return extender.filter(decode_extender_args(body))

    def handle_prioritize(body: bytes) -> bytes:
        return extender.prioritize(decode_extender_args(body))

    verbs = {
        "filter": (handle_filter, floor_filter),
        "prioritize": (handle_prioritize, floor_prioritize),
    }
    pairs = [
        (body, kept_nodes_body(body, handle_filter(body)))
        if _decode(body).get("NodeNames") is not None
        else (body, body)
        for body in bodies
    ]  # the cluster does not change: each filter keeps the same nodes when timed
    for pair in pairs[-20:]:  # warm caches and code paths (long evicted when timed)
        for body, (handler, floor) in zip(pair, verbs.values()):
            handler(body), floor(body)
    times: dict[str, tuple[list[float], list[float]]] = {verb: ([], []) for verb in verbs}
    gc.collect()
    for pair in pairs:  # pod by pod, filter then prioritize, as kube-scheduler calls them
        for body, (verb, (handler, floor)) in zip(pair, verbs.items()):
            handler_ms, floor_ms = times[verb]
            floor_ms.append(timed(floor, body, clock))
            handler_ms.append(timed(handler, body, clock))
    rows = []
    for verb, (handler_ms, floor_ms) in times.items():
        quantiles = lambda xs: (statistics.median(xs), statistics.quantiles(xs, n=100)[98])  # noqa: E731
        (h50, h99), (f50, f99) = quantiles(handler_ms), quantiles(floor_ms)
        rows.append(
            {"case": label, "verb": verb, "handler_median_ms": h50, "handler_p99_ms": h99,
             "floor_median_ms": f50, "floor_p99_ms": f99, "ratio": h50 / f50}
        )  # fmt: skip
    return rows


def names_bodies(payloads: Payloads, same_list: int) -> list[bytes]:
    """Names-mode bodies of ``payloads``' pods, each window's list kept for ``same_list`` pods."""
    return [
        b'{"Pod":' + _encode(pod) + b',"Nodes":null,"NodeNames":'
        + _encode(payloads.windows[i - i % same_list]) + b"}"
        for i, pod in enumerate(payloads.pods)
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--same-list", type=int, default=50, help="pods per repeated list")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args()
    cases = [  # label, nodes, pods, mode, candidates, pods per list
        ("names 500, same", 500, 1000, "names", 500, args.same_list),
        ("names 500, new", 500, 1000, "names", 500, 1),
        ("names 5000, same", 5000, 10000, "names", 5000, args.same_list),
        ("names 5000, new", 5000, 10000, "names", 5000, 1),
        ("full-nodes 200", 500, 1000, "full", 200, 1),
    ]
    rows: list[dict[str, Any]] = []
    clusters: dict[int, tuple[dict[str, Any], Extender]] = {}
    for label, nodes, pods, mode, candidates, same_list in cases:
        if nodes not in clusters:
            cluster = make_cluster(nodes, pods, args.seed)
            clusters = {nodes: (cluster, build_extender(cluster))}
        cluster, extender = clusters[nodes]
        payloads = make_payloads(
            cluster, mode=mode, candidates=candidates, count=args.requests, seed=args.seed
        )
        bodies = payloads.bodies if same_list == 1 else names_bodies(payloads, same_list)
        rows += run_case(label, extender, bodies, CLOCKS[args.clock])
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, python {platform.python_version()}, {args.clock} clock")
    print(f"{'case':<20}{'verb':<12}{'handler p50/p99 ms':>22}{'floor p50/p99 ms':>20}{'ratio':>8}")
    for r in rows:
        print(
            f"{r['case']:<20}{r['verb']:<12}"
            f"{r['handler_median_ms']:>10.3f} /{r['handler_p99_ms']:>8.3f}"
            f"{r['floor_median_ms']:>10.3f} /{r['floor_p99_ms']:>7.3f}{r['ratio']:>7.2f}×"
        )
    for verb, target in TARGETS.items():
        worst = max(r["ratio"] for r in rows if r["verb"] == verb)
        verdict = "PASS" if worst <= target else f"MISS by {worst / target:.2f}×"
        print(f"target: {verb} median ≤ {target}× floor median — worst {worst:.2f}× — {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
