"""One measured run: start a server (and its API server), warm it up, run k6, stop it."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import apiserver
from loadtest.k6run import metric_values, run_k6
from loadtest.loopback import LOOPBACK, RunError, free_port, http_post
from loadtest.processes import Proc, Procs, Server, argv, wait_ready
from loadtest.scenarios import Scenario, State

RERUN_HINT = "python -m loadtest.run --scenario {scenario}  (or: make loadtest SCENARIO={scenario})"


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


@dataclass(frozen=True)
class RunSettings:
    """The command-line settings one run needs."""

    k6: str
    rate: int
    duration: str
    k6_env: dict[str, str]
    ready_timeout: float
    apiserver_cmd: str
    apiserver_ready_path: str
    apiserver_seed: bool  # create the cluster's objects over HTTP (an API server not preloaded)


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


def logged_errors(procs: Sequence[Proc]) -> dict[str, Any]:
    """Error-level lines the target(s) logged (JSON logs, or tracebacks): a bug under load."""
    count, first = 0, ""
    for proc in procs:
        with contextlib.suppress(OSError):
            for line in proc.log.read_text(errors="replace").splitlines():
                if line.startswith("Traceback") or any(
                    f'"level":"{level}"' in line for level in ("error", "critical")
                ):
                    count += 1
                    if not first:
                        with contextlib.suppress(ValueError, AttributeError):
                            rec = json.loads(line)
                            exc = (rec.get("exception") or "").strip().splitlines()
                            line = f"{rec.get('message')}: {exc[-1] if exc else ''}"
                        first = line[:400]
    return {"logged_errors": count, "first_logged_error": first} if count else {}


def _start_apiserver(
    state: State, s: RunSettings, procs: Procs, workdir: Path, tag: str
) -> tuple[Proc, str, Path]:
    """A fresh API server with the scenario's objects; (process, base URL, kubeconfig)."""
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    api = procs.start(
        "apiserver",
        argv(s.apiserver_cmd, port=port, state=state),
        dict(os.environ),
        workdir / f"{tag}-apiserver.log",
    )
    wait_ready(api, base + s.apiserver_ready_path, s.ready_timeout)
    if s.apiserver_seed:
        apiserver.seed_apiserver(base, state)
    apiserver.fix_bind_uids(base, state)
    return api, base, apiserver.write_kubeconfig(workdir / f"{tag}-kubeconfig.json", base)


def _check_binds(
    sc: Scenario, state: State, api_base: str, bases: Sequence[str], summary: Any
) -> dict[str, Any]:
    extra = apiserver.check_overcommit(api_base, state)
    extra["binds_ok"] = metric_values(summary).get("binds_ok", {}).get("count")
    if metrics := apiserver.scrape_bind_metrics(bases):
        extra["extender_metrics"] = metrics
    if not extra["binds_ok"]:
        first = json.loads((state.payloads / "bind.jsonl").read_text().split("\n")[0])
        if why := apiserver.bind_unavailable(bases[0], first["Node"]):
            raise RunError(
                f"the extender's /bind is not implemented yet: it answered {why!r}.\n"
                f"  Run this scenario again once /bind lands (app/commit/):\n"
                f"    {RERUN_HINT.format(scenario=sc.name)}"
            )
    return extra


def one_run(
    sc: Scenario,
    state: State,
    server: Server,
    *,
    rnd: int,
    settings: RunSettings,
    procs: Procs,
    workdir: Path,
) -> RunResult:
    """Start ``server`` (with a fresh API server when the scenario needs one), run k6 against
    it once, stop everything it started, and return what was measured."""
    tag = f"{server.side}-r{rnd}"
    started: list[Proc] = []
    servers: list[Proc] = []
    extra: dict[str, Any] = {}
    env = {**os.environ, **server.env}
    try:
        api_base = None
        if sc.needs_apiserver:
            api, api_base, kubeconfig = _start_apiserver(state, settings, procs, workdir, tag)
            started.append(api)
            env["PLACEMENT_EXTENDER_KUBE__KUBECONFIG"] = str(kubeconfig)
            env["KUBECONFIG"] = str(kubeconfig)
        bases = []
        ready = 0.0
        for i in range(sc.replicas):
            port = free_port()
            cmd = argv(server.cmd, port=port, state=state, kubeconfig=env.get("KUBECONFIG", ""))
            p = procs.start(f"{server.side}#{i}", cmd, env, workdir / f"{tag}-{i}.log", server.cwd)
            started.append(p)
            servers.append(p)
            base = f"http://{LOOPBACK}:{port}"
            url = base + (server.ready_path or "")
            listens = None if server.ready_path else port
            ready = max(ready, wait_ready(p, url, settings.ready_timeout, port=listens))
            bases.append(base)
        for base in bases:  # filter and prioritize only: no bind, no state change
            warm_up(base, state.payloads)
        time.sleep(0.5)
        load0 = os.getloadavg()[0]
        rate_env = {"RATE": str(settings.rate), "DURATION": settings.duration} if sc.rate else {}
        k6 = run_k6(
            settings.k6,
            sc,
            bases=bases,
            payloads=state.payloads,
            env_over={**rate_env, **settings.k6_env},
            summary=workdir / f"{tag}-summary.json",
            log=workdir / f"{tag}-k6.log",
            server_pgids=[p.pgid for p in servers],
            procs=procs,
            apiserver_pgids=[p.pgid for p in started if p not in servers],
        )
        if api_base and server.side == "target":
            extra.update(_check_binds(sc, state, api_base, bases, k6.summary))
        for p in started:
            if not p.alive():
                raise RunError(f"{p.name} died during the run:\n{p.tail()}")
    finally:
        procs.stop(started)
    if server.side == "target":
        extra.update(logged_errors(servers))
    metrics = metric_values(k6.summary)
    reqs = metrics.get("http_reqs", {}).get("count", 0)
    thresholds_ok = all(
        t.get("ok", True)
        for m in k6.summary.get("metrics", {}).values()
        for t in (m.get("thresholds") or {}).values()
    )
    return RunResult(
        side=server.side,
        round=rnd,
        k6_exit=k6.exit_code,
        thresholds_ok=thresholds_ok,
        metrics=metrics,
        server_cpu_ms_per_req=(1000 * k6.server_s / reqs) if reqs else None,
        k6_cpu_cores=k6.k6_cores,
        background_cores=k6.background_cores,
        apiserver_cores=k6.apiserver_cores,
        loadavg_before=load0,
        wall_s=k6.wall_s or 0.0,
        ready_s=ready,
        extra=extra,
    )
