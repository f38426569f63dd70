"""Every PromQL expression of the dashboard and the alerts, evaluated by a real Prometheus that
scrapes a real extender process after real traffic.

The extender (`python -m app serve --kubeconfig ...`) watches the API-server stand-in and serves
two waves of filter, prioritize and bind calls (one bind refused by an injected API error, one
pod that no node fits); the stand-in's history is compacted between the waves so both kinds
re-list. Prometheus (Debian's `prometheus`, started here on a free loopback port with its own
config and data directory) scrapes it every second under the job and target labels a
ServiceMonitor gives, and loads the chart's rendered rules. Then each dashboard query and each
operand of each alert must return data, and may name only metrics and labels found in what
Prometheus scraped.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.state.live import KINDS
from loadtest.apiserver import write_kubeconfig
from tests.builders import P, args_body, node, pod
from tests.promql import (
    dashboard_queries,
    load_dashboard,
    names,
    operands,
    require_binary,
    substitute,
    variable_queries,
)
from tests.standin import ApiServerStandIn
from tests.test_chart import CHART, FULLNAME, NAMESPACE, helm, render
from tests.test_cli import free_port

ROOT = Path(__file__).parent.parent
REPLICA = f"{FULLNAME}-7d9f8-abcde"
PREFIX = "placement_extender_"
NODES = ["cpu-1", "cpu-2", "gpu-1"]
DEADLINE = 60.0


def until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll another process until ``condition()`` holds (it has no event to wait on)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Prometheus:
    base: str

    def get(self, path: str, **params: Any) -> Any:
        reply = httpx.get(f"{self.base}{path}", params=params, timeout=10)
        body = reply.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data)
        result: list[dict[str, Any]] = data["result"]
        return result

    def total(self, expr: str) -> float:
        return sum(float(s["value"][1]) for s in self.query(expr))

    def scraped_labels(self) -> dict[str, set[str]]:
        """Metric name → the label names of its series, as scraped from the extender."""
        found: dict[str, set[str]] = {}
        for series in self.get("/api/v1/series", **{"match[]": f'{{job="{FULLNAME}"}}'}):
            found.setdefault(series.pop("__name__"), set()).update(series)
        return found


@dataclass
class Scraped:
    prometheus: Prometheus
    labels: dict[str, set[str]]
    rules: list[dict[str, Any]]
    dashboard: dict[str, Any]

    def problems(self, expr: str) -> list[str]:
        """What is wrong with ``expr``: a metric or label the extender does not export, or an
        operand that returns no data."""
        wrong = []
        named = names(expr)
        known: set[str] = set()
        for metric, labels in named.selectors:
            if metric not in self.labels:
                wrong.append(f"no series named {metric!r}")
                continue
            known |= self.labels[metric]
            if labels - self.labels[metric]:
                wrong.append(f"{metric} has no label {sorted(labels - self.labels[metric])}")
        if named.grouping - known:
            wrong.append(f"grouped by unknown labels {sorted(named.grouping - known)}")
        for operand in operands(expr):
            values = [float(s["value"][1]) for s in self.prometheus.query(operand)]
            if not any(math.isfinite(v) for v in values):
                wrong.append(f"no data: {operand}")
        return wrong


def start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bind_body(created: dict[str, Any]) -> dict[str, str]:
    meta = created["metadata"]
    return {"PodName": meta["name"], "PodNamespace": meta["namespace"], "PodUID": meta["uid"],
            "Node": "cpu-1"}  # fmt: skip


def wave(http: httpx.Client, api: ApiServerStandIn, n: int) -> None:
    """Filter and prioritize two CPU pods, filter a pod no node fits, bind a pod, and bind
    another while the API server refuses the Binding."""
    for i in range(2):
        body = args_body(pod(f"web-{n}-{i}", cpu="500m"), NODES)
        assert http.post("/filter", content=body).status_code == 200
        assert http.post("/prioritize", content=body).status_code == 200
    a100 = pod(f"train-{n}", gpus=1, annotations={P + "gpu-types": "A100", P + "pool": "train"})
    assert http.post("/filter", content=args_body(a100, NODES)).json()["NodeNames"] == []
    bound = api.add_pod(pod(f"worker-{n}", cpu="1"))
    assert http.post("/bind", json=bind_body(bound)).json() == {"Error": ""}
    refused = api.add_pod(pod(f"refused-{n}", cpu="1"))
    api.fail_next("POST", f"/pods/{refused['metadata']['name']}/binding", status=500)
    assert http.post("/bind", json=bind_body(refused)).json()["Error"]


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    prometheus_bin = require_binary("prometheus")
    work = tmp_path_factory.mktemp("prometheus")
    with helm.Chart.load(CHART) as chart:
        out = render(chart, {"dashboards": {"enabled": True}, "prometheusRule": {"enabled": True}})
    rules = out.get("PrometheusRule", FULLNAME)["spec"]["groups"]
    configmap = out.get("ConfigMap", f"{FULLNAME}-dashboard")
    dashboard = load_dashboard(next(iter(configmap["data"].values())))
    (work / "rules.yaml").write_text(yaml.safe_dump({"groups": rules}))

    with ApiServerStandIn() as api:
        api.add_node(node("cpu-1", cpu="8"))
        api.add_node(node("cpu-2", cpu="8"))
        api.add_node(node("gpu-1", gpus=2, product="Tesla-T4"))
        kubeconfig = write_kubeconfig(work / "kubeconfig.json", api.base_url)
        port = free_port()
        extender = start(
            [
                sys.executable,
                "-m",
                "app",
                "serve",
                "--kubeconfig",
                str(kubeconfig),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            work / "extender.log",
        )
        prom_port = free_port()
        (work / "prometheus.yml").write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(work / "rules.yaml")],
            "scrape_configs": [{
                "job_name": FULLNAME,  # a ServiceMonitor's job: the Service's name
                "static_configs": [{"targets": [f"127.0.0.1:{port}"],
                                    "labels": {"namespace": NAMESPACE, "pod": REPLICA}}],
            }],
        }))  # fmt: skip
        server = start(
            [
                prometheus_bin,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            work / "prometheus.log",
        )
        prometheus = Prometheus(f"http://127.0.0.1:{prom_port}")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                until(lambda: _answers(http, "/readyz"), "the extender to be ready")
                until(lambda: _answers(httpx, f"{prometheus.base}/-/ready"), "Prometheus")
                ready = f'{PREFIX}ready{{job="{FULLNAME}"}}'
                until(lambda: prometheus.total(ready) == 1, "a first scrape of a ready extender")
                requests = f'{PREFIX}requests_total{{job="{FULLNAME}"}}'
                wave(http, api, 1)
                until(lambda: prometheus.total(requests) == 7, "a scrape after the first wave")
                api.compact()  # every kind's watch gets 410 Expired and re-lists
                relists = f'{PREFIX}watch_events_total{{job="{FULLNAME}", event="relists"}}'
                until(lambda: prometheus.total(relists) == len(KINDS), "the re-lists to be scraped")
                until(lambda: _answers(http, "/readyz"), "the extender to be ready again")
                wave(http, api, 2)
                until(lambda: prometheus.total(requests) == 14, "a scrape after the second wave")
                until(lambda: _rules_evaluated(prometheus), "the rules to be evaluated")
            yield Scraped(prometheus, prometheus.scraped_labels(), rules, dashboard)
        finally:
            stop(server)
            stop(extender)


def _answers(client: Any, url: str) -> bool:
    try:
        return bool(client.get(url).status_code == 200)
    except httpx.TransportError:
        return False


def _rules_evaluated(prometheus: Prometheus) -> bool:
    groups = prometheus.get("/api/v1/rules")["groups"]
    return bool(groups) and all(
        not r["lastEvaluation"].startswith("0001") for g in groups for r in g["rules"]
    )


def test_every_dashboard_query_returns_data_and_names_only_exported_series(
    scraped: Scraped,
) -> None:
    queries = list(dashboard_queries(scraped.dashboard))
    assert len(queries) >= 15
    wrong = {where: p for where, expr in queries if (p := scraped.problems(substitute(expr)))}
    assert wrong == {}


def test_every_dashboard_variable_names_an_exported_label(scraped: Scraped) -> None:
    for variable, selector, label in variable_queries(scraped.dashboard):
        assert scraped.problems(substitute(selector)) == [], variable
        ((metric, _),) = names(selector).selectors
        assert label in scraped.labels[metric], (variable, label)


def test_every_alert_expression_returns_data_and_names_only_exported_series(
    scraped: Scraped,
) -> None:
    wrong = {r["alert"]: p for g in scraped.rules for r in g["rules"]
             if (p := scraped.problems(r["expr"]))}  # fmt: skip
    assert wrong == {}


def test_prometheus_evaluates_every_rule_without_error(scraped: Scraped) -> None:
    groups = scraped.prometheus.get("/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == sum(len(g["rules"]) for g in scraped.rules)
    assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []


def test_the_check_fails_for_a_metric_or_label_the_extender_does_not_export(
    scraped: Scraped,
) -> None:
    """The checks above can fail: a misspelt metric, an unknown label, a query with no data."""
    typo = 'sum(rate(placement_extender_request_total{namespace=~"$namespace"}[$__rate_interval]))'
    assert "no series named 'placement_extender_request_total'" in scraped.problems(
        substitute(typo)
    )
    by_node = f"sum by (node) (rate({PREFIX}binds_total[1m]))"
    assert "grouped by unknown labels ['node']" in scraped.problems(by_node)
    wrong_label = f'{PREFIX}binds_total{{result="bound"}}'
    assert f"{PREFIX}binds_total has no label ['result']" in scraped.problems(wrong_label)
    assert scraped.problems(f'{PREFIX}binds_total{{outcome="no_such_outcome"}}') == [
        f'no data: {PREFIX}binds_total{{outcome="no_such_outcome"}}'
    ]
