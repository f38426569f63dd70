"""Reports of a scenario's results: the console summary, results/<scenario>.json and .md, and
the table in loadtest/README.md between its result markers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from loadtest.scenarios import SCENARIOS, Scenario

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
README = HERE / "README.md"
README_BEGIN = "<!-- results:begin (written by python -m loadtest.run) -->"
README_END = "<!-- results:end -->"
MD_STATS = ("p50", "p95", "p99")
MD_HEADER = (
    "| when (UTC) | rev | target | load | rounds | floor p50 / p95 / p99 ms "
    "| target p50 / p95 / p99 ms | req/s floor / target | server CPU ms/req floor / target "
    "| target errors | p99 ratio | verdict | max bg cores | Go peer p50 / p95 / p99 ms "
    "| target ÷ Go peer |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def _git(*args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=False
    )
    return out.stdout.strip()


# the runner's own output: rewriting it between scenarios does not change what is measured
OWN_OUTPUT = (f":!{RESULTS.relative_to(REPO)}", f":!{README.relative_to(REPO)}")


def git_rev() -> str:
    """The checked-out commit, short, with +dirty when tracked files other than the runner's
    own output differ from it."""
    try:  # read-only
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *OWN_OUTPUT)
        return _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def latencies(side: dict[str, Any] | None, metric: str = "http_req_duration") -> str:
    """One side's p50 / p95 / p99 of a metric, in ms ("-" when not measured)."""
    s = (side or {}).get(metric, {})
    return " / ".join(fmt(s.get(k)) for k in MD_STATS) if s else "-"


def binds_text(agg: dict[str, Any]) -> str:
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


def apiserver_text(extra: dict[str, Any]) -> str:
    text = (
        f"{extra.get('pending_pods_bound')}/{extra.get('pending_pods')} pending pods bound, "
        f"over-committed nodes: {extra.get('overcommit') or 'none'}"
    )
    if extra.get("extender_metrics"):
        text += "; extender metrics " + ", ".join(
            f"{k} {v:g}" for k, v in sorted(extra["extender_metrics"].items())
        )
    return text


def _ratio_note(res: dict[str, Any]) -> str:
    params = res.get("params", {})
    if params.get("ratio_gates", True):
        return ""
    return f" ({params.get('key', ['key'])[0]}; info only)"


def markdown_row(res: dict[str, Any]) -> str:
    """One results row (the columns of MD_HEADER) for a scenario's results."""
    fl, tg, v = res["floor"], res["target"], res["verdict"]
    go = res.get("go_floor") or {}
    errs = tg.get("failed_rate")
    sides = (fl, tg, go)
    bg = max((s.get("background_cores_max") or 0) for s in sides)
    go_ratio = f"{fmt(v.get('go_ratio'))}x" if v.get("go_ratio") is not None else "-"
    return (
        f"| {res['when'][:16].replace('T', ' ')} | `{res['rev']}` | {res['target_label']} "
        f"| {res['load']} | {res['rounds']} | {latencies(fl)} | {latencies(tg)} "
        f"| {fmt(fl.get('req_per_s'), 0)} / {fmt(tg.get('req_per_s'), 0)} "
        f"| {fmt(fl.get('server_cpu_ms_per_req'))} / {fmt(tg.get('server_cpu_ms_per_req'))} "
        f"| {fmt(100 * errs if errs is not None else None)}%"
        f"{'; binds ' + binds_text(tg) if 'binds_ok' in tg else ''} "
        f"| {fmt(v.get('ratio'))}x{_ratio_note(res)} | {v['verdict']} | {bg:.2f} "
        f"| {latencies(go)} | {go_ratio} |"
    )


def print_summary(sc: Scenario, res: dict[str, Any]) -> None:
    """The medians of every side and the verdict, on stdout."""
    v = res["verdict"]
    print(f"\n== {sc.name}: medians over {res['rounds']} round(s) ==")
    for side, label in (("floor", "floor"), ("go_floor", "Go peer"), ("target", "target")):
        agg = res.get(side)
        if not agg:
            continue
        print(
            f"  {label:8} p50/p95/p99 {latencies(agg)} ms  req/s {fmt(agg.get('req_per_s'), 1)}  "
            f"failed {fmt(100 * (agg.get('failed_rate') or 0))}%  "
            f"checks {fmt(100 * (agg.get('checks_rate') or 0))}%  "
            f"dropped {agg.get('dropped_iterations', 0):.0f}  "
            f"server CPU {fmt(agg.get('server_cpu_ms_per_req'), 3)} ms/req  "
            f"other procs {fmt(agg.get('background_cores'))} cores"
        )
        if sc.key[1] != "http_req_duration":
            print(f"           {sc.key[0]} ({sc.key[1]} {sc.key[2]}): {fmt(agg.get('key'))} ms")
        if "binds_ok" in agg:
            print(f"           binds: {binds_text(agg)}")
    print(f"  {v['text']}")
    if v.get("go_text"):
        print(f"  {v['go_text']}")
    if v.get("cpu_ratio"):
        print(f"  server CPU per request, target/floor: {v['cpu_ratio']:.2f}x")
    for p in v.get("problems", []):
        print(f"  note: {p}")


def _last_header(md_text: str) -> str:
    lines = md_text.splitlines(keepends=True)
    heads = [i for i, line in enumerate(lines) if line.startswith("| when (UTC) |")]
    return "".join(lines[heads[-1] : heads[-1] + 2]) if heads else ""


def write_reports(sc: Scenario, res: dict[str, Any], results: Path = RESULTS) -> Path:
    """results/<scenario>.json (this run), a row appended to results/<scenario>.md (a new table
    when the columns changed) and the README table; returns the JSON's path."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{sc.name}.json"
    path.write_text(json.dumps(res, indent=1) + "\n")
    md = results / f"{sc.name}.md"
    if not md.exists():
        md.write_text(
            f"# {sc.name}\n\n{sc.what}.\n\nOne row per `python -m loadtest.run --scenario "
            f"{sc.name}` (medians over the rounds; latencies are k6's http_req_duration over "
            "every request).\n\n" + MD_HEADER
        )
    elif _last_header(md.read_text()) != MD_HEADER:
        with md.open("a") as f:
            f.write("\n" + MD_HEADER)
    with md.open("a") as f:
        f.write(markdown_row(res) + "\n")
    if results == RESULTS:
        update_readme()
    return path


def update_readme(readme: Path = README, results: Path = RESULTS) -> None:
    """Rewrite the table between the README's result markers from every results JSON."""
    if not readme.exists():
        return
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        return
    rows = []
    for name in SCENARIOS:
        path = results / f"{name}.json"
        if path.exists():
            res = json.loads(path.read_text())
            rows.append(f"| {name} " + markdown_row(res))
    head = "| scenario " + MD_HEADER.replace("\n|---", "\n|---|---", 1)
    body = head + ("\n".join(rows) + "\n" if rows else "| (no run yet) |\n")
    start = text.index(README_BEGIN) + len(README_BEGIN)
    end = text.index(README_END)
    readme.write_text(text[:start] + "\n" + body + text[end:])
