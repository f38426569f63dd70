"""``make bench-live``: the live source (issue "Live cluster state") against the stand-in.

1. Initial sync: the stand-in, in its own process, holds a generated cluster (5,000 nodes and
   100,000 bound pods; ``--quick``: 500 / 10,000); this process runs ``LiveSource`` until ready.
   Per kind: the list arrives in pages of 500 (as client-go's pager); time until the stand-in
   answers the first page (its own copy of the store, not the extender's), time the event loop
   spent applying pages, and when the kind is loaded. RSS is this process's, so the extender's
   alone. Target: RSS < 300 MB once ready.
2. Update lag: with a ready ``LiveSource`` over 500 nodes / 5,000 bound pods, a client in this
   process (its own connection pool) POSTs Bindings for pending pods; lag = time from
   the 201 reaching the client to the pod showing bound in the snapshot (a snapshot listener, on
   the event loop). The watch can win that race (lag ≤ 0). Sequential binds, then 10 in flight,
   repeated; medians over rounds. Target: p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import app.sources
from app.api.server import Runtime
from app.config import Settings, load_settings
from app.kube import WATCH_CONNECTIONS, ApiReply, KubeApi
from app.sources import NODES, PODS, LiveSource
from app.state.live import ClusterWatch
from app.state.readiness import Readiness
from app.state.records import PodFacts
from app.state.snapshot import Snapshot
from bench.common import (
    StandInProcess,
    machine,
    markdown_table,
    median,
    percentile,
    proc_status_mb,
    reset_peak_rss,
    standin_process,
)

RSS_TARGET_MB = 300.0
LAG_TARGET_MS = 100.0
READY_TIMEOUT_S = 600.0
now = time.perf_counter


# ---- initial sync -------------------------------------------------------------------------


@dataclass
class KindTiming:
    """perf_counter instants of one kind's first list, from request to loaded."""

    requested: float = 0.0
    answered: float = 0.0  # first page's headers: the stand-in has built that page
    received: float = 0.0  # first page read
    apply_seconds: float = 0.0  # summed over pages: time the event loop spent applying
    pages: int = 0
    loaded: float = 0.0
    records: int = 0


class TimedKubeApi(KubeApi):
    """KubeApi whose (non-watch) lists note when they were answered and fully read."""

    def __init__(self, client: Any, timings: dict[str, KindTiming]) -> None:
        super().__init__(client)
        self.timings = timings

    def list_nodes(self, **params: Any) -> Any:
        return self._timed(NODES, super().list_nodes, params)

    def list_pods(self, **params: Any) -> Any:
        return self._timed(PODS, super().list_pods, params)

    def _timed(self, kind: str, call: Callable[..., Any], params: dict[str, Any]) -> Any:
        if params.get("watch") or kind in self.timings:
            return call(**params)
        timing = self.timings[kind] = KindTiming(requested=now())
        response = call(**params)
        timing.answered = now()
        _ = response.data  # urllib3 keeps the body: the watcher's own read returns it
        timing.received = now()
        return response


class TimedReadiness(Readiness):
    """Readiness that notes when each kind is first loaded."""

    def __init__(self, timings: dict[str, KindTiming]) -> None:
        super().__init__(NODES, PODS)
        self.timings = timings

    def loaded(self, kind: str) -> None:
        timing = self.timings.get(kind)
        if timing is not None and not timing.loaded:
            timing.loaded = now()
        super().loaded(kind)


def timed_watch(timings: dict[str, KindTiming]) -> type[ClusterWatch]:
    """A ClusterWatch whose snapshot notes how long each kind's first re-list apply takes."""

    class TimedWatch(ClusterWatch):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            snapshot = self.snapshot
            for kind, name in ((NODES, "set_nodes"), (PODS, "set_pods")):
                setattr(snapshot, name, _timed_apply(getattr(snapshot, name), timings, kind))

    return TimedWatch


def _timed_apply(
    apply: Callable[[list[Any]], None], timings: dict[str, KindTiming], kind: str
) -> Callable[[list[Any]], None]:
    """``apply`` (one list page on the loop) adding its time to the kind's first list."""

    def timed(records: list[Any]) -> None:
        timing = timings.get(kind)
        if timing is None or timing.loaded:
            return apply(records)
        started = now()
        apply(records)
        timing.apply_seconds += now() - started
        timing.pages += 1
        timing.records += len(records)
        return None

    return timed


@dataclass
class SyncResult:
    """What one initial sync measured."""

    timings: dict[str, KindTiming]
    started: float
    ready: float
    rss_mb: dict[str, float]
    sizes: dict[str, int]


def malloc_trim() -> bool:
    """Hand freed heap back to the OS (glibc); False where unavailable."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


@asynccontextmanager
async def live_source(
    settings: Settings, api: KubeApi, readiness: Readiness
) -> AsyncIterator[LiveSource]:
    """A started LiveSource over ``api`` (not necessarily ready yet)."""
    runtime = Runtime(settings=settings, readiness=readiness)
    source = LiveSource(settings, api)
    await source.start(runtime)
    try:
        yield source
    finally:
        await source.stop()


async def until_ready(readiness: Readiness, timeout: float = READY_TIMEOUT_S) -> None:
    """Wait for ``readiness`` without polling."""
    ready = asyncio.Event()
    readiness.listeners.append(lambda ok: ready.set() if ok else None)
    if not readiness.ready:
        await asyncio.wait_for(ready.wait(), timeout)


def snapshot_sizes(snapshot: Snapshot) -> dict[str, int]:
    """Counts and the node table's array bytes."""
    table = snapshot.table
    arrays = [getattr(table, c) for c in table._COLUMNS] + [table.limits]
    return {
        "nodes": len(snapshot.nodes),
        "pods": len(snapshot.pods),
        "bound pods": sum(1 for p in snapshot.pods.values() if p.node_name),
        "table rows": table.size,
        "table bytes": sum(a.nbytes for a in arrays),
    }


async def measure_sync(standin: StandInProcess, settings: Settings) -> SyncResult:
    """Start a LiveSource over ``standin``, wait until ready, note times, RSS and sizes."""
    timings: dict[str, KindTiming] = {}
    client = standin.api_client(connection_pool_maxsize=WATCH_CONNECTIONS)
    readiness = TimedReadiness(timings)
    api = TimedKubeApi(client, timings)  # first CoreV1Api: ~1.5 s of lazy client imports
    gc.collect()
    rss = {"before": proc_status_mb("VmRSS")}
    reset_peak_rss()
    started = now()
    with mock.patch.object(app.sources, "ClusterWatch", timed_watch(timings)):
        async with live_source(settings, api, readiness) as source:
            await until_ready(readiness)
            ready = now()
            rss["ready"] = proc_status_mb("VmRSS")
            rss["peak"] = proc_status_mb("VmHWM")
            gc.collect()
            rss["after gc"] = proc_status_mb("VmRSS")
            if malloc_trim():
                rss["after malloc_trim"] = proc_status_mb("VmRSS")
            assert source.snapshot is not None
            sizes = snapshot_sizes(source.snapshot)
    client.close()
    return SyncResult(timings, started, ready, rss, sizes)


def sync_tables(result: SyncResult) -> list[str]:
    """The sync result as Markdown tables: per-kind timeline, then RSS and sizes."""

    def ms(a: float, b: float) -> str:
        return f"{(b - a) * 1000:.0f}"

    rows = []
    for kind in (NODES, PODS):
        t = result.timings[kind]
        rows.append([
            kind, f"{t.records:,}", f"{t.pages:,}", ms(t.requested, t.answered),
            f"{t.apply_seconds * 1000:.0f}", ms(result.started, t.loaded),
        ])  # fmt: skip
    timeline = markdown_table(
        ["kind", "objects", "pages", "first page answered ms", "applied on the loop ms",
         "loaded at ms"],
        rows,
    )  # fmt: skip
    rss = result.rss_mb
    ready_ms = (result.ready - result.started) * 1000
    verdict = "PASS" if rss["ready"] < RSS_TARGET_MB else "MISS"
    summary = markdown_table(
        ["time to ready", "RSS before", "RSS ready", "RSS peak", "RSS after gc",
         "RSS after malloc_trim", f"target RSS < {RSS_TARGET_MB:.0f} MB"],
        [[f"{ready_ms:.0f} ms", *(f"{rss.get(k, float('nan')):.0f} MB" for k in
          ("before", "ready", "peak", "after gc", "after malloc_trim")), verdict]],
    )  # fmt: skip
    sizes = markdown_table(list(result.sizes), [[f"{v:,}" for v in result.sizes.values()]])
    return [timeline, summary, sizes]


# ---- update lag ---------------------------------------------------------------------------


@dataclass
class LagRound:
    """One round of binds: per-bind lag and POST round trip, in ms."""

    mode: str
    lags: list[float] = field(default_factory=list)
    posts: list[float] = field(default_factory=list)


class BoundWatcher:
    """Snapshot listener: resolves a future when an awaited pod is first seen bound."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.awaited: dict[str, asyncio.Future[float]] = {}
        snapshot.listeners.append(self.changed)

    def expect(self, uid: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.awaited[uid] = future
        return future

    def changed(self) -> None:
        for uid in [u for u in self.awaited if self.snapshot.is_bound(u)]:
            self.awaited.pop(uid).set_result(now())


async def post_binding(api: KubeApi, pod: PodFacts, node: str) -> tuple[ApiReply, float, float]:
    """POST the Binding; returns the reply and when it was sent and answered."""
    sent = now()
    reply = await api.create_binding(
        namespace=pod.namespace, name=pod.name, uid=pod.uid, node=node, timeout=5.0
    )
    return reply, sent, now()


async def bind_round(
    api: KubeApi, watcher: BoundWatcher, work: list[tuple[PodFacts, str]],
    concurrency: int, mode: str,
) -> LagRound:  # fmt: skip
    """Bind every (pod, node) with ``concurrency`` in flight; note lag and round trip."""
    result = LagRound(mode)
    queue = list(reversed(work))

    async def worker() -> None:
        while queue:
            pod, node = queue.pop()
            seen = watcher.expect(pod.uid)
            reply, sent, answered = await post_binding(api, pod, node)
            if reply.status != 201:
                raise RuntimeError(f"binding {pod.name}: {reply.status} {reply.body[:200]!r}")
            seen_at = await asyncio.wait_for(seen, 10.0)
            result.lags.append((seen_at - answered) * 1000)
            result.posts.append((answered - sent) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result


async def measure_lag(
    standin: StandInProcess, settings: Settings, binds: int, rounds: int
) -> list[LagRound]:
    """Rounds of sequential and concurrent binds against a ready LiveSource."""
    client = standin.api_client(connection_pool_maxsize=WATCH_CONNECTIONS)
    readiness = Readiness(NODES, PODS)
    results: list[LagRound] = []
    async with live_source(settings, KubeApi(client), readiness) as source:
        await until_ready(readiness)
        snapshot = source.snapshot
        assert snapshot is not None
        pending = [p for p in snapshot.pods.values() if not p.node_name]
        nodes = list(snapshot.nodes)
        watcher = BoundWatcher(snapshot)
        scheduler = standin.api_client()  # the binding client
        api = KubeApi(scheduler)
        for _ in range(rounds):
            for concurrency, mode in ((1, "sequential"), (10, "10 in flight")):
                batch, pending = pending[:binds], pending[binds:]
                work = [(pod, nodes[i % len(nodes)]) for i, pod in enumerate(batch)]
                results.append(await bind_round(api, watcher, work, concurrency, mode))
        await api.aclose()
        scheduler.close()
    client.close()
    return results


def lag_table(results: list[LagRound]) -> tuple[str, bool]:
    """Medians over rounds per mode, and whether every mode's median p99 meets the target."""
    rows, ok = [], True
    for mode in dict.fromkeys(r.mode for r in results):
        mine = [r for r in results if r.mode == mode]
        p50 = median([percentile(r.lags, 50) for r in mine])
        p99 = median([percentile(r.lags, 99) for r in mine])
        worst = max(max(r.lags) for r in mine)
        post = median([percentile(r.posts, 50) for r in mine])
        early = sum(sum(1 for lag in r.lags if lag <= 0) for r in mine)
        total = sum(len(r.lags) for r in mine)
        verdict = "PASS" if p99 < LAG_TARGET_MS else "MISS"
        ok = ok and p99 < LAG_TARGET_MS
        rows.append([
            mode, f"{len(mine)}×{len(mine[0].lags)}", f"{p50:.2f}", f"{p99:.2f}", f"{worst:.2f}",
            f"{post:.2f}", f"{early}/{total}", verdict,
        ])  # fmt: skip
    header = ["binds", "rounds×binds", "lag p50 ms", "lag p99 ms", "lag max ms",
              "POST p50 ms", "seen before 201", f"p99 < {LAG_TARGET_MS:.0f} ms"]  # fmt: skip
    return markdown_table(header, rows), ok


# ---- main ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    nodes, pods = (500, 10_000) if args.quick else (args.nodes, args.pods)
    lag_nodes, lag_pods = (200, 2_000) if args.quick else (500, 5_000)
    binds = 100 if args.quick else args.binds
    print(f"machine: {machine()}")
    print(f"\n### Initial sync: {nodes:,} nodes, {pods:,} bound pods\n")
    with standin_process("--generate", str(nodes), str(pods), str(args.seed)) as standin:
        sync = await measure_sync(standin, settings)
    for table in sync_tables(sync):
        print(table + "\n")
    pending = binds * 2 * args.rounds
    print(f"### Update lag: {lag_nodes:,} nodes, {lag_pods:,} bound pods, {binds} binds a round\n")
    generate = ("--generate", str(lag_nodes), str(lag_pods + pending), str(args.seed))
    with standin_process(*generate, "--pending", str(pending)) as standin:
        rounds = await measure_lag(standin, settings, binds, args.rounds)
    table, _ = lag_table(rounds)
    print(table)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smaller cluster and fewer binds")
    parser.add_argument("--nodes", type=int, default=5_000)
    parser.add_argument("--pods", type=int, default=100_000)
    parser.add_argument("--binds", type=int, default=300, help="binds per round and mode")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
