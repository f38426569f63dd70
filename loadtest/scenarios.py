"""The load-test scenarios, and the generated cluster and payloads each one runs on."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from loadtest import generate

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str
    what: str
    nodes: int
    pods: int
    mode: str
    candidates: int
    count: int
    rate: int = 0  # pairs/s (arrival-rate scenarios)
    duration: str = ""
    needs_apiserver: bool = False
    replicas: int = 1
    # "mixed" (the generator's GPU/CPU/best-effort mix), "cpu" or "gpu": every pod of that kind
    pod_kind: str = "mixed"
    # also measure the Go peer floor (go-extender-floor: filter and prioritize only)
    go_peer: bool = False
    # (label, k6 metric, stat) compared target vs floor; the first one gives the verdict
    key: tuple[str, str, str] = ("p99", "http_req_duration", "p(99)")
    # False: the floor does not do the work (its /bind writes nothing), so the ratio is shown
    # but the verdict rests on the checks alone (errors, over-commit, binds vs API server)
    ratio_gates: bool = True
    k6_env: dict[str, str] = field(default_factory=dict)


def _filter_prioritize_5000(pod_kind: str) -> Scenario:
    suffix = "" if pod_kind == "mixed" else f"-{pod_kind}"
    pods = {"mixed": "", "cpu": ", CPU pods only", "gpu": ", GPU pods only"}[pod_kind]
    return Scenario(
        name=f"filter-prioritize-5000{suffix}",
        script="filter-prioritize.js",
        what=f"filter+prioritize pairs, names mode, 5,000 candidates a pod (5,000 nodes){pods}",
        nodes=5000,
        pods=10000,
        mode="names",
        candidates=5000,
        count=200,
        rate=150,
        duration="15s",
        pod_kind=pod_kind,
        go_peer=True,
    )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="filter-prioritize-500",
            script="filter-prioritize.js",
            what="filter+prioritize pairs, names mode, 500 candidates a pod (1,000-node cluster)",
            nodes=1000,
            pods=3000,
            mode="names",
            candidates=500,
            count=500,
            rate=150,
            duration="15s",
            go_peer=True,
        ),
        _filter_prioritize_5000("mixed"),
        _filter_prioritize_5000("cpu"),
        _filter_prioritize_5000("gpu"),
        Scenario(
            name="filter-prioritize-full-200",
            script="filter-prioritize.js",
            what="filter+prioritize pairs, full-nodes mode, 200 v1.Nodes a body (~0.8 MB)",
            nodes=1000,
            pods=3000,
            mode="full",
            candidates=200,
            count=40,
            rate=25,
            duration="15s",
            go_peer=True,
        ),
        Scenario(
            name="burst",
            script="burst.js",
            what="100 pods at once: filter → prioritize → bind each; time until all are bound",
            nodes=500,
            pods=1500,
            mode="names",
            candidates=200,
            count=100,
            needs_apiserver=True,
            key=("all bound", "bound_after", "max"),
            ratio_gates=False,
            k6_env={"PODS": "100"},
        ),
        Scenario(
            name="bind-contention",
            script="bind-contention.js",
            what="3 replicas, 300 pods, 6 nodes: bind successes vs refusals, no over-commit",
            nodes=6,
            pods=6,
            mode="names",
            candidates=6,
            count=300,
            needs_apiserver=True,
            replicas=3,
            key=("pod p99", "pod_e2e", "p(99)"),
            ratio_gates=False,
            k6_env={"VUS": "24"},
        ),
    )
}


def select(spec: str) -> list[Scenario]:
    """The scenarios a ``--scenario`` value names: one name, a comma-separated list, or all."""
    if spec == "all":
        return list(SCENARIOS.values())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown or not names:
        raise ValueError(
            f"unknown scenario {', '.join(unknown) or repr(spec)}; one of: all, "
            + ", ".join(SCENARIOS)
        )
    return [SCENARIOS[n] for n in names]


@dataclass
class State:
    cluster: Path
    payloads: Path


def prepare_state(sc: Scenario, *, seed: int, regen: bool) -> State:
    """Generate (or reuse) the cluster file and payload directory for a scenario."""
    DATA.mkdir(parents=True, exist_ok=True)
    # JSON, not YAML: the extender reads a 5,000-node snapshot in ~1 s instead of 20-70 s here
    cluster = DATA / f"cluster-n{sc.nodes}-p{sc.pods}-s{seed}.json"
    if regen or not cluster.exists():
        t0 = time.monotonic()
        tmp = cluster.with_suffix(".tmp.json")
        generate.write_cluster(generate.make_cluster(sc.nodes, sc.pods, seed), tmp)
        tmp.replace(cluster)
        print(f"  generated {cluster.name} in {time.monotonic() - t0:.1f}s", flush=True)
    pdir = DATA / f"{sc.name}-s{seed}"
    meta = pdir / "meta.json"
    want = {
        "mode": sc.mode,
        "candidates": sc.candidates,
        "count": sc.count,
        "seed": seed + 1,
        "pod_kind": sc.pod_kind,
    }
    fresh = False
    if meta.exists() and not regen:
        m = json.loads(meta.read_text())
        fresh = (
            all(m.get(k, "mixed" if k == "pod_kind" else None) == v for k, v in want.items())
            and m.get("generator_version") == generate.GENERATOR_VERSION
        )
    if not fresh:
        t0 = time.monotonic()
        pl = generate.make_payloads(
            generate.load_cluster(cluster),
            mode=sc.mode,
            candidates=sc.candidates,
            count=sc.count,
            seed=seed + 1,
            pod_kind=sc.pod_kind,
        )
        generate.write_payloads(pl, pdir, cluster_path=str(cluster))
        print(f"  generated {pdir.name}/ in {time.monotonic() - t0:.1f}s", flush=True)
    return State(cluster, pdir)
