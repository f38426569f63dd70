"""From the rounds of one scenario to medians per side, and the verdict: target ÷ floor against
the 1.5x target, and target vs the Go peer floor where it was measured."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from loadtest.measure import RunResult
from loadtest.scenarios import Scenario

TARGET_RATIO = 1.5
# (label in the results, k6 trend stat)
STATS = [("p50", "med"), ("p90", "p(90)"), ("p95", "p(95)"), ("p99", "p(99)")]
# bind outcomes (placement_extender_binds_total{outcome}) that are not a bug under contention
BIND_OUTCOMES_OK = {"bound", "already_bound", "no_longer_fits", "bound_elsewhere"}
NOISY_CORES = 0.3  # other processes' CPU during a round above which it is flagged


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values that are there; None when none is."""
    vs = [v for v in values if v is not None]
    return statistics.median(vs) if vs else None


def aggregate(sc: Scenario, runs: Sequence[RunResult], side: str) -> dict[str, Any]:
    """Medians over the rounds of one side ({} when that side never ran)."""
    rs = [r for r in runs if r.side == side]
    if not rs:
        return {}

    def m(metric: str, stat: str) -> float | None:
        return median([r.metrics.get(metric, {}).get(stat) for r in rs])

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
    out["server_cpu_ms_per_req"] = median([r.server_cpu_ms_per_req for r in rs])
    out["k6_cpu_cores"] = median([r.k6_cpu_cores for r in rs])
    out["background_cores"] = median([r.background_cores for r in rs])
    out["background_cores_max"] = max((r.background_cores or 0.0) for r in rs)
    if any(r.apiserver_cores is not None for r in rs):
        out["apiserver_cores"] = median([r.apiserver_cores for r in rs])
    if any(r.extra for r in rs):
        out["apiserver_checks"] = [r.extra for r in rs]
    return out


def _ratio_text(sc: Scenario, t: float, f: float) -> tuple[bool, str]:
    ratio = t / f
    ok = ratio <= TARGET_RATIO or not sc.ratio_gates
    label = f"{sc.key[0]} {sc.key[1]}"
    head = f"target/floor {label}: {t:.2f} / {f:.2f} ms = {ratio:.2f}x"
    if not sc.ratio_gates:
        return ok, (
            f"{head} (for information: the floor's /bind writes nothing; the verdict rests on"
            " the checks)"
        )
    budget = TARGET_RATIO * f
    if ok:
        return ok, (
            f"{head} (target <= {TARGET_RATIO}x): PASS with {TARGET_RATIO - ratio:.2f}x headroom"
            f" ({t:.2f} ms vs a budget of {budget:.2f} ms)"
        )
    over = t - budget
    return ok, (
        f"{head} (target <= {TARGET_RATIO}x): MISS by {ratio - TARGET_RATIO:.2f}x ({over:.2f} ms"
        f" over a budget of {budget:.2f} ms, {100 * over / budget:.0f}% over)"
    )


def go_peer_comparison(sc: Scenario, target: dict[str, Any], go: dict[str, Any]) -> dict[str, Any]:
    """Target vs the Go peer floor on the scenario's key figure: ahead (lower) or behind."""
    t, g = target.get("key"), go.get("key")
    if not t or not g:
        return {}
    ratio = t / g
    where = "ahead of" if t < g else "behind"
    return {
        "go_ratio": ratio,
        "go_text": f"target vs Go peer {sc.key[0]}: {t:.2f} vs {g:.2f} ms = {ratio:.2f}x:"
        f" {where} the Go peer",
    }


def _bind_problems(target: dict[str, Any]) -> list[str]:
    problems = []
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
    return problems


def verdict(
    sc: Scenario,
    floor: dict[str, Any],
    target: dict[str, Any],
    go: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """PASS / MISS / FAIL for the target, with the ratios and what else went wrong."""
    f, t = floor.get("key"), target.get("key")
    if not f or t is None:
        return {"ratio": None, "verdict": "n/a", "text": "no comparison (a side is missing)"}
    ok, text = _ratio_text(sc, t, f)
    fc, tc = floor.get("server_cpu_ms_per_req"), target.get("server_cpu_ms_per_req")
    problems = []
    if (target.get("failed_rate") or 0) > 0.01 or (target.get("checks_rate") or 1) < 0.99:
        problems.append("target errors/checks over threshold")
    for name, side in (("target", target), ("floor", floor), ("Go peer", go or {})):
        if side.get("dropped_iterations"):
            problems.append(f"{name} dropped {side['dropped_iterations']:.0f} iterations")
    problems += _bind_problems(target)
    if any((s.get("background_cores_max") or 0) > NOISY_CORES for s in (floor, target, go or {})):
        problems.append(f"other processes used >{NOISY_CORES} cores during some rounds: noisy")
    errors = any("error" in p or "over-committed" in p for p in problems)
    return {
        "ratio": t / f,
        "verdict": "FAIL" if errors else ("PASS" if ok else "MISS"),
        "text": text,
        "cpu_ratio": (tc / fc) if fc and tc else None,
        "problems": problems,
        **(go_peer_comparison(sc, target, go) if go else {}),
    }
