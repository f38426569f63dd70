"""The load-test runner's pieces that need no k6 and no server (loadtest/*.py).

Covers: choosing scenarios by name, list or all; the Go peer floor found where the install
script puts it, joined as a third server, or skipped with one line when missing; medians over
rounds per side and the verdict against the floor and the Go peer; the results table, which
starts a new header when its columns change, and the README table between its markers.
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from loadtest import report, run
from loadtest.analysis import aggregate, verdict
from loadtest.measure import RunResult
from loadtest.processes import find_go_floor
from loadtest.scenarios import SCENARIOS, select

FP5000 = SCENARIOS["filter-prioritize-5000"]


def test_scenarios_are_chosen_by_name_by_list_or_all() -> None:
    assert select("all") == list(SCENARIOS.values())
    names = "filter-prioritize-500, filter-prioritize-5000-gpu"
    assert [s.name for s in select(names)] == [
        "filter-prioritize-500",
        "filter-prioritize-5000-gpu",
    ]
    with pytest.raises(ValueError, match="unknown scenario filter-prioritize-50; one of: all, "):
        select("filter-prioritize-500,filter-prioritize-50")


def test_the_5000_node_variants_differ_only_in_their_pods() -> None:
    cpu, gpu = SCENARIOS["filter-prioritize-5000-cpu"], SCENARIOS["filter-prioritize-5000-gpu"]
    assert (FP5000.pod_kind, cpu.pod_kind, gpu.pod_kind) == ("mixed", "cpu", "gpu")
    assert {(s.nodes, s.candidates, s.rate, s.go_peer) for s in (FP5000, cpu, gpu)} == {
        (5000, 5000, 150, True)
    }


def _fake_binary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_the_go_floor_is_found_in_kubebuilder_assets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = _fake_binary(tmp_path / "assets" / "go-extender-floor")
    monkeypatch.delenv("GO_EXTENDER_FLOOR", raising=False)
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(binary.parent))
    assert find_go_floor() == str(binary)
    # an explicit path is the only one tried
    assert find_go_floor(str(tmp_path / "nowhere" / "go-extender-floor")) is None


def _args(**over: Any) -> argparse.Namespace:
    args = run.parse_args(["--scenario", "filter-prioritize-5000"])
    return argparse.Namespace(**(vars(args) | over))


def test_the_go_floor_is_a_third_server_when_present(tmp_path: Path) -> None:
    binary = _fake_binary(tmp_path / "go-extender-floor")
    servers, label = run._servers(FP5000, _args(go_floor=str(binary)))
    assert [s.side for s in servers] == ["floor", "go-floor", "target"]
    assert servers[1].cmd == f"{binary} {{port}}"
    assert servers[1].ready_path is None  # it has no health route: ready once it listens
    assert label == "extender"


def test_a_missing_go_floor_is_said_in_one_line_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    servers, _ = run._servers(FP5000, _args(go_floor=str(tmp_path / "go-extender-floor")))
    assert [s.side for s in servers] == ["floor", "target"]
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "go-extender-floor not found" in out


def test_scenarios_without_a_go_peer_never_start_one(tmp_path: Path) -> None:
    binary = _fake_binary(tmp_path / "go-extender-floor")
    servers, _ = run._servers(SCENARIOS["burst"], _args(go_floor=str(binary)))
    assert [s.side for s in servers] == ["floor", "target"]


def _run(side: str, rnd: int, p99: float, cpu: float = 0.5, bg: float = 0.1) -> RunResult:
    duration = {"med": p99 / 4, "p(90)": p99 / 2, "p(95)": p99 / 1.5, "p(99)": p99, "max": p99}
    return RunResult(
        side=side,
        round=rnd,
        k6_exit=0,
        thresholds_ok=True,
        metrics={
            "http_req_duration": duration,
            "http_reqs": {"rate": 300.0, "count": 4500.0},
            "http_req_failed": {"rate": 0.0},
            "checks": {"rate": 1.0},
        },
        server_cpu_ms_per_req=cpu,
        k6_cpu_cores=0.2,
        background_cores=bg,
        loadavg_before=0.5,
        wall_s=15.0,
        ready_s=1.0,
    )


def _results(target_p99: float) -> dict[str, Any]:
    runs = [
        r
        for rnd in (1, 2, 3)
        for r in (
            _run("floor", rnd, 2.0 + rnd, cpu=0.4),
            _run("go-floor", rnd, 4.0 + rnd),
            _run("target", rnd, target_p99 + rnd, cpu=1.2),
        )
    ]
    floor, go, target = (aggregate(FP5000, runs, s) for s in ("floor", "go-floor", "target"))
    return {
        "when": "2026-11-29T15:00:00+00:00",
        "rev": "abc1234",
        "target_label": "extender",
        "load": "150/s x 15s",
        "rounds": 3,
        "params": {},
        "floor": floor,
        "go_floor": go,
        "target": target,
        "verdict": verdict(FP5000, floor, target, go),
    }


def test_medians_over_rounds_per_side_and_the_verdict_against_floor_and_go_peer() -> None:
    res = _results(target_p99=10.0)
    assert res["floor"]["key"] == 4.0 and res["go_floor"]["key"] == 6.0
    assert res["target"]["http_req_duration"]["p90"] == 6.0
    v = res["verdict"]
    assert v["verdict"] == "MISS" and v["ratio"] == pytest.approx(12 / 4)
    assert v["go_ratio"] == pytest.approx(12 / 6)
    assert "behind the Go peer" in v["go_text"]
    assert v["cpu_ratio"] == pytest.approx(3.0)


def test_a_target_faster_than_the_go_peer_is_ahead_of_it() -> None:
    v = _results(target_p99=2.5)["verdict"]
    assert v["verdict"] == "PASS"
    assert "ahead of the Go peer" in v["go_text"] and v["go_ratio"] < 1


def test_the_results_table_starts_a_new_header_when_its_columns_change(tmp_path: Path) -> None:
    md = tmp_path / "filter-prioritize-5000.md"
    old_header = "| when (UTC) | rev | target |\n|---|---|---|\n"
    md.write_text("# filter-prioritize-5000\n\n" + old_header + "| 2026-11-27 | `x` | y |\n")
    for _ in range(2):
        report.write_reports(FP5000, _results(target_p99=10.0), results=tmp_path)
    text = md.read_text()
    assert text.startswith("# filter-prioritize-5000\n\n" + old_header + "| 2026-11-27 |")
    assert text.count(report.MD_HEADER) == 1
    rows = text.split(report.MD_HEADER)[1].splitlines()
    assert len(rows) == 2
    assert all(row.count("|") == report.MD_HEADER.splitlines()[0].count("|") for row in rows)
    assert rows[0].endswith("| 1.50 / 4.00 / 6.00 | 2.00x |")  # Go peer p50/p95/p99, target ÷ Go


def test_the_readme_table_is_rewritten_between_its_markers(tmp_path: Path) -> None:
    report.write_reports(FP5000, _results(target_p99=10.0), results=tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_BEGIN}\nstale\n{report.README_END}\nafter\n")
    report.update_readme(readme, tmp_path)
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "| filter-prioritize-5000 | 2026-11-29 15:00 | `abc1234` |" in text


@pytest.fixture(autouse=True)
def _no_inherited_go_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own environment must not decide these tests."""
    for name in ("GO_EXTENDER_FLOOR", "KUBEBUILDER_ASSETS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", os.defpath)
