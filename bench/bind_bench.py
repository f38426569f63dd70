"""``make bench-bind``: POST /bind with optimistic concurrency on 10 nodes, against the real
kube-apiserver + etcd when ``KUBEBUILDER_ASSETS`` is set (tests/controlplane; the figures of
record), else against the API-server stand-in in its own process (``--apiserver standin``).

Per round, over fresh pending pods (realistic generated objects, CPU-only, nodes' allocatable
raised so every pod fits), each phase sends ``--pods`` binds with ``--concurrency`` in flight
to uniformly random nodes:

* bare: the API calls one bind needs and nothing else — one merge PATCH of an annotation of the
  node's ledger Lease (unconditional) and one Binding POST — with the binder's client settings
  (a kubernetes ApiClient with the same pool size, calls on a thread pool of the same size);
* bind: the binder's own handler (``tests.live.Replica``: own client, watch, snapshot, binder);
  with 1 replica, then with 3 replicas taking the pods in turn and contending for the nodes.

Each bind phase is compared with a bare phase run just before it next to the same replicas
(their watches decode every write, whichever phase makes it). Rounds repeat; the table shows
medians over rounds. Targets (issue 9, on the real API server): bind p99 with 3 replicas ≤ 2×
bare p99; no bind past its budget.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from kubernetes.client import CoreV1Api, V1Namespace, V1ObjectMeta

from app.config import load_settings
from app.contract import LEDGER_OF_NODE, Keys
from app.kube import WATCH_CONNECTIONS, KubeApi, Unreachable
from app.metrics import PREFIX
from app.state.snapshot import Snapshot
from bench.common import (
    StandInProcess,
    machine,
    markdown_table,
    median,
    percentile,
    standin_process,
)
from bench.standin_proc import make_pending
from loadtest.generate import GPU, make_cluster
from tests.controlplane.cluster import Assets, ControlPlane
from tests.controlplane.objects import create_nodes, create_pods
from tests.live import Replica, replicas

ApiServer = StandInProcess | ControlPlane
"""Either serves ``api_client(**configuration)``, all that ``tests.live`` needs."""

TARGET_RATIO = 2.0
NODE_COUNT = 10
PODS_PER_GENERATED_NODE = 90  # make_cluster's limit is 0.9 × 110 pods a node
BIG_ALLOCATABLE = {"cpu": "100000", "memory": "1Pi", "ephemeral-storage": "1Pi", "pods": "100000"}
now = time.perf_counter


# ---- the cluster --------------------------------------------------------------------------


def bench_cluster(pods: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """10 generated nodes with room for everything, and ``pods`` pending CPU-only pods."""
    wanted = pods * 2  # GPU pods are dropped: room for them
    generated = make_cluster(max(NODE_COUNT, wanted // PODS_PER_GENERATED_NODE + 1), wanted, seed)
    items = generated["items"]
    nodes = [_roomy(n) for n in items if n["kind"] == "Node"][:NODE_COUNT]
    cpu_pods = [make_pending(p) for p in items if p["kind"] == "Pod" and not _wants_gpu(p)]
    if len(cpu_pods) < pods:
        raise RuntimeError(f"only {len(cpu_pods)} CPU pods generated, {pods} wanted")
    return nodes, cpu_pods[:pods]


def _roomy(node: dict[str, Any]) -> dict[str, Any]:
    status = node["status"]
    allocatable = {**status["allocatable"], **BIG_ALLOCATABLE}
    capacity = {**status["capacity"], **BIG_ALLOCATABLE}
    return {**node, "status": {**status, "allocatable": allocatable, "capacity": capacity}}


def _wants_gpu(pod: dict[str, Any]) -> bool:
    containers = pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])
    return any(GPU in (c.get("resources", {}).get("requests") or {}) for c in containers)


def write_list(items: list[dict[str, Any]], path: Path) -> Path:
    """Write ``items`` as a ``kind: List`` JSON file."""
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    return path


# ---- phases -------------------------------------------------------------------------------


@dataclass
class Phase:
    """One phase of one round: per-operation durations (ms) and what went wrong."""

    name: str
    durations: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    conflicts: int = 0

    @property
    def p50(self) -> float:
        return percentile(self.durations, 50)

    @property
    def p99(self) -> float:
        return percentile(self.durations, 99)


Work = list[tuple[dict[str, Any], str]]


async def drive(work: Work, concurrency: int, operation: Callable[[int, dict[str, Any], str],
                Awaitable[str]], phase: Phase) -> Phase:  # fmt: skip
    """Run ``operation(i, pod, node)`` over ``work`` with ``concurrency`` in flight, timing each."""
    queue = list(reversed(list(enumerate(work))))

    async def worker() -> None:
        while queue:
            i, (pod, node) = queue.pop()
            started = now()
            error = await operation(i, pod, node)
            phase.durations.append((now() - started) * 1000)
            if error:
                phase.errors.append(error)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return phase


class Bare:
    """The bare API calls of one bind, with the binder's client settings."""

    def __init__(self, standin: ApiServer) -> None:
        self.client = standin.api_client(connection_pool_maxsize=WATCH_CONNECTIONS)
        self.api = KubeApi(self.client)
        self.timeout = load_settings().bind.request_timeout_seconds
        self.namespace = load_settings().kube.ledger_namespace

    async def create_ledgers(self, nodes: list[str]) -> None:
        """An empty ledger Lease per node, as the binder's first write would create it."""
        keys = Keys(load_settings().prefix)
        for name in nodes:
            lease = {"metadata": {"name": name, "labels": {keys.ledger: LEDGER_OF_NODE},
                                  "annotations": {keys.reservations: "{}"}}}  # fmt: skip
            reply = await self.api.create_lease(self.namespace, lease, self.timeout)
            if not reply.ok:
                raise RuntimeError(f"creating the ledger Lease of {name}: {reply.status}")

    async def calls(self, pod: dict[str, Any], node: str) -> str:
        """PATCH an annotation of ``node``'s ledger Lease, then POST the Binding; "" or what
        failed."""
        meta = pod["metadata"]
        value = json.dumps({meta["uid"]: {"r": {"cpu": 100}, "e": time.time(), "p": meta["name"]}})
        patch = {"metadata": {"annotations": {"bench.placement-extender.io/bare": value}}}
        try:
            reply = await self.api.patch_lease(self.namespace, node, patch, self.timeout)
            if not reply.ok:
                return f"patch {reply.status}"
            reply = await self.api.create_binding(
                namespace=meta["namespace"], name=meta["name"], uid=meta["uid"], node=node,
                timeout=self.timeout,
            )  # fmt: skip
        except Unreachable as exc:  # the same per-call timeout as the binder's
            return f"no answer: {exc}"
        return "" if reply.ok else f"binding {reply.status}"

    async def run(self, work: Work, concurrency: int) -> Phase:
        async def operation(_: int, pod: dict[str, Any], node: str) -> str:
            return await self.calls(pod, node)

        return await drive(work, concurrency, operation, Phase("bare"))

    async def close(self) -> None:
        await self.api.aclose()
        self.client.close()


def conflicts(replica: Replica) -> float:
    """The replica's CAS conflicts so far."""
    value = replica.metrics.registry.get_sample_value(f"{PREFIX}_cas_conflicts_total")
    return value or 0.0


async def bind_phase(name: str, pool: Sequence[Replica], work: Work, concurrency: int) -> Phase:
    """Bind every pod through the replicas' handlers, pod i on replica i mod len(pool)."""

    async def operation(i: int, pod: dict[str, Any], node: str) -> str:
        return await pool[i % len(pool)].bind(pod, node)

    before = sum(conflicts(r) for r in pool)
    phase = await drive(work, concurrency, operation, Phase(name))
    phase.conflicts = round(sum(conflicts(r) for r in pool) - before)
    return phase


# ---- rounds -------------------------------------------------------------------------------


@dataclass
class Round:
    """The four phases of one round."""

    bare_1: Phase
    bind_1: Phase
    bare_3: Phase
    bind_3: Phase


async def run_round(standin: ApiServer, bare: Bare, batches: list[Work],
                    concurrency: int) -> Round:  # fmt: skip
    """bare then bind next to 1 replica; bare then bind across 3 contending replicas."""
    async with replicas(standin, 1) as one:  # type: ignore[arg-type]
        await await_pods(one, batches)
        bare_1 = await bare.run(batches[0], concurrency)
        bind_1 = await bind_phase("bind, 1 replica", one, batches[1], concurrency)
    async with replicas(standin, 3) as three:  # type: ignore[arg-type]
        await await_pods(three, batches)
        bare_3 = await bare.run(batches[2], concurrency)
        bind_3 = await bind_phase("bind, 3 replicas", three, batches[3], concurrency)
    return Round(bare_1, bind_1, bare_3, bind_3)


async def await_pods(pool: Sequence[Replica], batches: list[Work]) -> None:
    """Every replica has listed every pod of the round (they are preloaded: a formality)."""
    keys = [(p["metadata"]["namespace"], p["metadata"]["name"]) for b in batches for p, _ in b]
    for replica in pool:
        await replica.changes.until(partial(_has_all, replica.snapshot, keys), timeout=30)


def _has_all(snapshot: Snapshot, keys: list[tuple[str, str]]) -> bool:
    return all(snapshot.pod_named(*key) is not None for key in keys)


def plan(pods: list[dict[str, Any]], nodes: list[str], per_phase: int, rounds: int,
         seed: int) -> list[list[Work]]:  # fmt: skip
    """Per round, four batches of (pod, random node)."""
    rng = random.Random(f"bind-bench:{seed}")
    work = [(pod, rng.choice(nodes)) for pod in pods]
    batches = [work[i : i + per_phase] for i in range(0, per_phase * 4 * rounds, per_phase)]
    return [batches[r * 4 : r * 4 + 4] for r in range(rounds)]


# ---- report -------------------------------------------------------------------------------


PHASES: list[tuple[str, Callable[[Round], Phase]]] = [
    ("bare API calls (next to 1 replica)", lambda r: r.bare_1),
    ("bind, 1 replica", lambda r: r.bind_1),
    ("bare API calls (next to 3 replicas)", lambda r: r.bare_3),
    ("bind, 3 contending replicas", lambda r: r.bind_3),
]


def phase_table(rounds: list[Round]) -> str:
    """Per phase: medians over rounds of p50 and p99, the overall max, conflicts, failures."""
    rows = []
    for label, pick in PHASES:
        phases = [pick(r) for r in rounds]
        ops = sum(len(p.durations) for p in phases)
        per_bind = f"{sum(p.conflicts for p in phases) / ops:.2f}" if label[:4] == "bind" else "–"
        rows.append([
            label, f"{len(phases)}×{len(phases[0].durations)}",
            f"{median([p.p50 for p in phases]):.2f}", f"{median([p.p99 for p in phases]):.2f}",
            f"{max(max(p.durations) for p in phases):.2f}", per_bind,
            sum(len(p.errors) for p in phases),
        ])  # fmt: skip
    header = ["phase", "rounds×ops", "p50 ms", "p99 ms", "max ms", "conflicts/bind", "failed"]
    return markdown_table(header, rows)


def verdict_table(rounds: list[Round], budget_s: float) -> str:
    """The targets: p99 ratio with 3 replicas (median over rounds), and the budget."""
    single = median([r.bind_1.p99 / r.bare_1.p99 for r in rounds])
    contended = median([r.bind_3.p99 / r.bare_3.p99 for r in rounds])
    binds = [p for r in rounds for p in (r.bind_1, r.bind_3)]
    longest = max(max(p.durations) for p in binds)
    exhausted = sum(1 for p in binds for e in p.errors if "budget" in e)
    return markdown_table(
        ["check", "measured", "target", "verdict"],
        [
            ["bind p99 / bare p99, 1 replica", f"{single:.2f}×", "(for reference)", "–"],
            ["bind p99 / bare p99, 3 contending replicas", f"{contended:.2f}×",
             f"≤ {TARGET_RATIO:g}×", "PASS" if contended <= TARGET_RATIO else "MISS"],
            ["longest bind vs budget", f"{longest:.0f} ms", f"< {budget_s * 1000:.0f} ms",
             "PASS" if longest < budget_s * 1000 else "MISS"],
            ["binds failed: budget exhausted", str(exhausted), "0",
             "PASS" if not exhausted else "MISS"],
        ],
    )  # fmt: skip


def notes(rounds: list[Round], concurrency: int, ledgers: list[int]) -> str:
    """The settings, per-round p99s, ledger sizes, and the distinct bind errors if any."""
    per_round = ", ".join(f"{r.bind_3.p99:.0f}/{r.bare_3.p99:.0f}" for r in rounds)
    lines = [
        f"concurrency {concurrency}; medians over {len(rounds)} rounds",
        f"p99 bind/bare with 3 replicas, per round: {per_round} ms",
        f"ledger entries per node at the end: {min(ledgers)}..{max(ledgers)}",
    ]
    errors = sorted({e for r in rounds for p in (r.bind_1, r.bind_3) for e in p.errors})
    if errors:
        lines.append("bind errors: " + "; ".join(errors[:5]))
    return "\n".join(f"- {line}" for line in lines)


async def ledger_sizes(api: KubeApi, nodes: list[str]) -> list[int]:
    """How many reservations each node's ledger holds now."""
    settings = load_settings()
    key = Keys(settings.prefix).reservations
    sizes = []
    for name in nodes:
        reply = await api.get_lease(settings.kube.ledger_namespace, name, 5.0)
        annotations = json.loads(reply.body)["metadata"].get("annotations") or {}
        sizes.append(len(json.loads(annotations.get(key) or "{}")))
    return sizes


@contextlib.contextmanager
def api_server(
    kind: str, nodes: list[dict[str, Any]], pods: list[dict[str, Any]], tmp: Path
) -> Iterator[tuple[ApiServer, list[dict[str, Any]]]]:
    """The API server holding ``nodes`` and ``pods``, and the pods as it stored them."""
    if kind == "standin":
        with standin_process("--load", str(write_list(nodes + pods, tmp / "cluster.json"))) as s:
            yield s, pods
        return
    assets = Assets.from_env()
    if assets is None:
        raise SystemExit("--apiserver real needs KUBEBUILDER_ASSETS (etcd, kube-apiserver)")
    plane = ControlPlane(assets, tmp, etcd_on_tmpfs=False).start()
    try:
        with plane.api_client(connection_pool_maxsize=32) as client:
            core = CoreV1Api(client)
            for namespace in sorted({p["metadata"]["namespace"] for p in pods} - {"default"}):
                core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=namespace)))
            create_nodes(core, [_creatable(n) for n in nodes])
            created = create_pods(core, [_creatable(p) for p in pods])
        yield plane, created
    finally:
        plane.stop()


def _creatable(obj: dict[str, Any]) -> dict[str, Any]:
    """A generated object as a client would create it: no server-set metadata."""
    server_set = ("uid", "resourceVersion", "creationTimestamp", "managedFields")
    meta = {k: v for k, v in obj["metadata"].items() if k not in server_set}
    return {**obj, "metadata": meta}


async def run(args: argparse.Namespace) -> int:
    per_phase = 100 if args.quick else args.pods
    rounds = 2 if args.quick else args.rounds
    settings = load_settings()
    nodes, generated = bench_cluster(per_phase * 4 * rounds, args.seed)
    names = [n["metadata"]["name"] for n in nodes]
    print(f"machine: {machine()}; API server: {args.apiserver}")
    with (
        tempfile.TemporaryDirectory() as tmp,
        api_server(args.apiserver, nodes, generated, Path(tmp)) as (server, pods),
    ):
        bare = Bare(server)
        try:
            await bare.create_ledgers(names)
            results = [
                await run_round(server, bare, batches, args.concurrency)
                for batches in plan(pods, names, per_phase, rounds, args.seed)
            ]
            ledgers = await ledger_sizes(bare.api, names)
        finally:
            await bare.close()
    print(f"\n### Bind: {NODE_COUNT} nodes, {per_phase} binds a phase, "
          f"{args.concurrency} in flight\n")  # fmt: skip
    print(phase_table(results) + "\n")
    print(verdict_table(results, settings.bind.budget_seconds) + "\n")
    print(notes(results, args.concurrency, ledgers))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 binds a phase, 2 rounds")
    parser.add_argument("--pods", type=int, default=300, help="binds per phase")
    parser.add_argument("--concurrency", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--apiserver", choices=["real", "standin"],
                        default="real" if Assets.from_env() else "standin")  # fmt: skip
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
