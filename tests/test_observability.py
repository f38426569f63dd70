"""The operator's view shipped by the chart: the Grafana dashboard ConfigMap and the
PrometheusRule, rendered by the real Helm SDK with both enabled.

Covers: both are off by default; the dashboard ConfigMap carries the sidecar's label and the
committed JSON; the PrometheusRule has the prometheus-operator shape (kubernetes-validate has no
schema for it), one alert per condition docs/operations.md lists, each with a runbook_url
pointing at its section there; `promtool check rules` accepts the rendered rules; `promtool test
rules` (tests/prometheus/alerts-test.yaml) shows each alert firing and not firing. Lint and
Kubernetes validation of the same values run in tests/test_chart.py (scenario
"dashboards-and-alerts"). tests/test_prometheus_live.py evaluates every expression against a real
Prometheus scraping a real extender.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.promql import dashboard_queries, load_dashboard, names, require_binary, substitute
from tests.test_chart import CHART, FULLNAME, NAMESPACE, helm, render, rendered
from tools.check_docs import anchors

OPERATIONS_ANCHORS = anchors(Path(__file__).parent.parent / "docs" / "operations.md")
ALERTS = {
    "PlacementExtenderNotReady",
    "PlacementExtenderAbsent",
    "PlacementExtenderBindErrors",
    "PlacementExtenderBindNearBudget",
    "PlacementExtenderSnapshotStale",
    "PlacementExtenderWatchRelistStorm",
    "PlacementExtenderCASConflictStorm",
    "PlacementExtenderWakeupsFailing",
    "PlacementExtenderUnmetDemand",
}
ROWS = ["Verbs", "Decisions", "Unmet demand by pool and GPU type", "Bind", "State"]
RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
UNIT_TESTS = Path(__file__).parent / "prometheus" / "alerts-test.yaml"
SCENARIO = "dashboards-and-alerts"


def rule_groups(chart: Any, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The rendered PrometheusRule's groups, as a Prometheus rule file holds them."""
    out = render(chart, values) if values is not None else rendered(chart, SCENARIO)
    rule = out.get("PrometheusRule", FULLNAME)
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def write_rules(directory: Path, groups: list[dict[str, Any]]) -> Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def chart() -> Any:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def test_both_are_off_by_default(chart: Any) -> None:
    default = rendered(chart, "default")
    assert not default.all("PrometheusRule")
    assert not [o for o in default.all("ConfigMap") if o["metadata"]["name"].endswith("dashboard")]
    assert chart.values["dashboards"]["enabled"] is False
    assert chart.values["prometheusRule"]["enabled"] is False


def test_dashboard_configmap_is_the_committed_json_with_the_sidecar_label(chart: Any) -> None:
    configmap = rendered(chart, SCENARIO).get("ConfigMap", f"{FULLNAME}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    (key,) = configmap["data"]
    committed = (CHART / "dashboards" / "placement-extender.json").read_text()
    dashboard = load_dashboard(configmap["data"][key])
    assert dashboard == load_dashboard(committed)
    with_folder = render(
        chart, {"dashboards": {"enabled": True, "annotations": {"grafana_folder": "Scheduling"}}}
    )
    meta = with_folder.get("ConfigMap", f"{FULLNAME}-dashboard")["metadata"]
    assert meta["annotations"] == {"grafana_folder": "Scheduling"}


def test_dashboard_has_the_rows_variables_and_one_data_source() -> None:
    dashboard = load_dashboard((CHART / "dashboards" / "placement-extender.json").read_text())
    panels = dashboard["panels"]
    assert [p["title"] for p in panels if p["type"] == "row"] == ROWS
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "pod"}
    assert variables["pod"]["label"] == "Replica"
    for panel in panels:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]
    for where, expr in dashboard_queries(dashboard):
        # every query is scoped to the chosen namespace and replicas
        for metric, labels in names(substitute(expr)).selectors:
            assert {"namespace", "pod"} <= labels, (where, metric)


def test_prometheus_rule_has_the_operator_shape_and_every_alert(chart: Any) -> None:
    out = rendered(chart, SCENARIO)
    rule = out.get("PrometheusRule", FULLNAME)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == NAMESPACE
    assert set(rule["spec"]) == {"groups"}
    groups = rule["spec"]["groups"]
    for group in groups:
        assert set(group) <= {"name", "interval", "rules"} and group["name"] and group["rules"]
        for r in group["rules"]:
            assert set(r) <= RULE_KEYS and isinstance(r["expr"], str), r
    found = alerts(groups)
    assert set(found) == ALERTS
    for name, r in found.items():
        assert r["labels"]["severity"] in {"critical", "warning", "info"}, name
        annotations = r["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        base, _, anchor = annotations["runbook_url"].partition("#")
        assert base.endswith("/docs/operations.md") and anchor == name.lower(), name
        assert anchor in OPERATIONS_ANCHORS, f"{name}: docs/operations.md has no runbook for it"
        # every series is this release's: the ServiceMonitor's job and the release namespace
        for metric, labels in names(r["expr"]).selectors:
            assert {"job", "namespace"} <= labels, (name, metric)


def test_thresholds_and_labels_come_from_values(chart: Any) -> None:
    values = {
        "prometheusRule": {
            "enabled": True, "labels": {"release": "prom"}, "alertLabels": {"team": "sched"},
            "bindErrorRatio": 0.2, "unmetDemandFor": "2h",
        }
    }  # fmt: skip
    out = render(chart, values)
    assert out.get("PrometheusRule", FULLNAME)["metadata"]["labels"]["release"] == "prom"
    found = alerts(rule_groups(chart, values))
    assert found["PlacementExtenderBindErrors"]["expr"].rstrip().endswith("> 0.2")
    assert found["PlacementExtenderUnmetDemand"]["for"] == "2h"
    assert all(r["labels"]["team"] == "sched" for r in found.values())


@pytest.mark.parametrize(
    "values",
    [
        {"prometheusRule": {"enabled": "yes"}},
        {"prometheusRule": {"bindErrorRatio": 5}},
        {"prometheusRule": {"unmetDemandFor": "half an hour"}},
        {"prometheusRule": {"treshold": 1}},
        {"dashboards": {"labels": {"grafana_dashboard": 1}}},
    ],
    ids=repr,
)
def test_schema_rejects_wrong_values(chart: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(chart, values)


def test_promtool_checks_the_rendered_rules(chart: Any, tmp_path: Path) -> None:
    rules = write_rules(tmp_path, rule_groups(chart))
    done = promtool("check", "rules", str(rules))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_promtool_check_catches_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: a typo in an expression is refused."""
    broken = [{"name": "x", "rules": [{"alert": "Broken", "expr": "rate(up[5m]) >"}]}]
    done = promtool("check", "rules", str(write_rules(tmp_path, broken)))
    assert done.returncode != 0


def test_promtool_unit_tests_of_every_alert(chart: Any, tmp_path: Path) -> None:
    groups = rule_groups(chart)
    for r in alerts(groups).values():  # annotations are checked above and by `check rules`
        r.pop("annotations")
    write_rules(tmp_path, groups)
    unit_tests = shutil.copy(UNIT_TESTS, tmp_path)
    tested = {t["alertname"] for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
              for t in case["alert_rule_test"]}  # fmt: skip
    assert tested == ALERTS
    done = promtool("test", "rules", str(unit_tests))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_each_alert_has_a_case_where_it_fires_and_one_where_it_does_not() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    assert fires == ALERTS
    assert silent == ALERTS
