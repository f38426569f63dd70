"""Charts of load results (loadtest/charts.py), drawn from synthetic results files.

Covers: the latency series are the medians over each side's rounds, and a side that was not
measured is left out; the cluster benchmark's shape is read into medians per set-up, and a
malformed file is refused with the place it is wrong; each chart is a PNG written beside its
results file; no cluster.json, no cluster chart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from loadtest import charts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _round(side: str, p50: float, p90: float, p99: float) -> dict[str, Any]:
    stats = {"med": p50, "p(90)": p90, "p(95)": (p90 + p99) / 2, "p(99)": p99, "max": 2 * p99}
    return {"side": side, "metrics": {"http_req_duration": stats}, "server_cpu_ms_per_req": p50}


def _results(*sides: str) -> dict[str, Any]:
    runs = []
    for side, scale in (("floor", 1.0), ("go-floor", 2.0), ("target", 4.0)):
        if side in sides:
            runs += [_round(side, scale, 2 * scale, 3 * scale) for _ in range(2)]
            runs.append(_round(side, 10 * scale, 20 * scale, 30 * scale))  # an outlier round
    return {
        "scenario": "filter-prioritize-5000",
        "load": "150/s x 15s",
        "rounds": 3,
        "when": "2026-11-29T15:00:00+00:00",
        "verdict": {"ratio": 4.0, "go_ratio": 2.0},
        "runs": runs,
    }


CLUSTER = {
    "sizes": [
        {
            "nodes": 1000,
            "pods": 2000,
            "rounds": 3,
            "setups": {
                "none": {"pods_per_s": [250.0, 230.0, 300.0]},
                "floor": {"pods_per_s": [117.0, 101.0, 110.0]},
                "ours": {"pods_per_s": [82.0, 90.0, 70.0]},
            },
        },
        {
            "nodes": 5000,
            "pods": 10000,
            "rounds": 3,
            "setups": {
                "none": {"pods_per_s": [120.0, 110.0, 130.0]},
                "floor": {"pods_per_s": [60.0, 55.0, 58.0]},
                "ours": {"pods_per_s": [50.0, 52.0, 40.0]},
            },
        },
    ]
}


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_latency_series_are_medians_over_each_sides_rounds() -> None:
    series = charts.latency_series(_results("floor", "go-floor", "target"))
    assert list(series) == ["floor", "go-floor", "target"]
    assert series["floor"] == {"p50": 1.0, "p90": 2.0, "p99": 3.0}
    assert series["target"] == {"p50": 4.0, "p90": 8.0, "p99": 12.0}


def test_server_cpu_is_the_median_over_each_sides_rounds() -> None:
    assert charts.cpu_series(_results("floor", "go-floor", "target")) == {
        "floor": 1.0,
        "go-floor": 2.0,
        "target": 4.0,
    }


def test_a_side_that_was_not_measured_is_left_out() -> None:
    res = _results("floor", "target")
    assert list(charts.latency_series(res)) == ["floor", "target"]
    assert list(charts.cpu_series(res)) == ["floor", "target"]


def test_the_latency_chart_is_a_png_beside_the_results_file(tmp_path: Path) -> None:
    results = tmp_path / "filter-prioritize-5000.json"
    results.write_text(json.dumps(_results("floor", "go-floor", "target")))
    assert charts.write_latency_chart(results) == [tmp_path / "filter-prioritize-5000.png"]
    assert _png_size(tmp_path / "filter-prioritize-5000.png") == (990, 440)


def test_a_results_file_without_latencies_gets_no_chart(tmp_path: Path) -> None:
    results = tmp_path / "burst.json"
    results.write_text(json.dumps({"scenario": "burst", "runs": []}))
    assert charts.write_latency_chart(results) == []
    assert not (tmp_path / "burst.png").exists()


def test_cluster_sizes_read_each_mix_and_files_without_mixes() -> None:
    mixed = {"sizes": [{**size, "mix": mix} for size in CLUSTER["sizes"] for mix in ("a", "b")]}
    assert [z.mix for z in charts.cluster_sizes(mixed)] == ["a", "b", "a", "b"]
    assert {z.mix for z in charts.cluster_sizes(CLUSTER)} == {""}


def test_the_cluster_chart_draws_every_mix_with_floor_bind(tmp_path: Path) -> None:
    sizes = [
        {**size, "mix": mix, "setups": {**size["setups"], "floor-bind": {"pods_per_s": [90.0]}}}
        for size in CLUSTER["sizes"]
        for mix in ("shared", "unique")
    ]
    (tmp_path / "cluster.json").write_text(json.dumps({"sizes": sizes}))
    assert charts.write_cluster_chart(tmp_path) == [tmp_path / "cluster.png"]


def test_cluster_sizes_read_the_benchmark_shape() -> None:
    sizes = charts.cluster_sizes(CLUSTER)
    assert [(z.nodes, z.pods) for z in sizes] == [(1000, 2000), (5000, 10000)]
    assert sizes[0].median("ours") == 82.0
    assert sizes[0].median("floor") == 110.0
    assert sizes[1].pods_per_s["none"] == [120.0, 110.0, 130.0]


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({}, "non-empty list under 'sizes'"),
        ({"sizes": [{"nodes": 10, "pods": 20}]}, r"sizes\[0\] needs nodes, pods and setups"),
        (
            {"sizes": [{"nodes": 10, "pods": 20, "setups": {"ours": {"pods_per_s": ["fast"]}}}]},
            r"sizes\[0\]",
        ),
        ({"sizes": [{"nodes": 10, "pods": 20, "setups": {"ours": {"pods_per_s": []}}}]}, "without"),
    ],
)
def test_a_malformed_cluster_file_is_refused_saying_where(data: Any, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        charts.cluster_sizes(data, "results/cluster.json")


def test_the_cluster_chart_is_a_png_beside_cluster_json(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text(json.dumps(CLUSTER))
    assert charts.write_cluster_chart(tmp_path) == [tmp_path / "cluster.png"]
    assert _png_size(tmp_path / "cluster.png") == (770, 440)


def test_no_cluster_benchmark_results_no_cluster_chart(tmp_path: Path) -> None:
    assert charts.write_cluster_chart(tmp_path) == []
    assert not (tmp_path / "cluster.png").exists()


def test_write_all_draws_every_scenario_and_the_cluster_chart(tmp_path: Path) -> None:
    (tmp_path / "filter-prioritize-500.json").write_text(json.dumps(_results("floor", "target")))
    (tmp_path / "cluster.json").write_text(json.dumps(CLUSTER))
    written = charts.write_all(tmp_path)
    assert sorted(p.name for p in written) == ["cluster.png", "filter-prioritize-500.png"]
