"""What a user installs, rendered from the Helm chart: the scheduler profile and the
extender's RBAC. Only what differs between a cluster and loopback is changed (the kubeconfig,
leader election, client rate limits, and the extender's URL: with the default topology only its
port, with topology=service the Service's name)."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from app.config import Settings
from tests.controlplane.cluster import EXTENDER_NAMESPACE, ROOT

CHART = ROOT / "deploy" / "helm" / "placement-extender"
RELEASE = "pe"


@cache
def _render(values_yaml: str) -> tuple[dict[str, Any], ...]:
    import helm_python  # the [chart] extra: the real Helm v4 SDK

    with helm_python.Chart.load(CHART) as chart:
        files = chart.render(
            yaml.safe_load(values_yaml), name=RELEASE, namespace=EXTENDER_NAMESPACE
        )
    objects: list[dict[str, Any]] = []
    for path, text in sorted(files.items()):
        if path.endswith(".yaml"):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return tuple(objects)


def rendered(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart's objects for ``values`` (deep copies: callers may edit them)."""
    return copy.deepcopy(list(_render(yaml.safe_dump(values or {}, sort_keys=True))))


def scheduler_config(
    *,
    extender_url: str,
    kubeconfig: str,
    scheduler_name: str = "placement-scheduler",
    values: dict[str, Any] | None = None,
    qps: int = 5000,
) -> dict[str, Any]:
    """The chart's KubeSchedulerConfiguration, pointed at ``extender_url`` over loopback. With
    the default topology (the extender beside kube-scheduler in its pod) the chart's URL is
    already loopback: only the port may differ."""
    chart_values: dict[str, Any] = {"scheduler": {"name": scheduler_name}}
    for key, value in (values or {}).items():
        if isinstance(value, dict):
            chart_values.setdefault(key, {}).update(value)
        else:
            chart_values[key] = value
    maps = [
        o for o in rendered(chart_values)
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-scheduler")
    ]  # fmt: skip
    assert len(maps) == 1, "the chart renders one scheduler ConfigMap"
    config: dict[str, Any] = yaml.safe_load(maps[0]["data"]["config.yaml"])
    config["leaderElection"] = {"leaderElect": False}
    config["clientConnection"] = {"kubeconfig": kubeconfig, "qps": qps, "burst": qps}
    (extender,) = config["extenders"]
    if chart_values.get("topology", "scheduler-pod") == "scheduler-pod":
        chart_url, url = urlsplit(extender["urlPrefix"]), urlsplit(extender_url)
        assert (chart_url.scheme, chart_url.hostname) == (url.scheme, url.hostname), extender_url
    extender["urlPrefix"] = extender_url
    return config


def extender_rbac() -> list[dict[str, Any]]:
    """The chart's roles (ClusterRole, and the Role for the ledger Leases) and their bindings
    for the extender's service account (the default topology's: the scheduler pod's)."""
    objects = rendered()
    roles = [o for o in objects if o["kind"] in ("ClusterRole", "Role")]
    names = {(r["kind"], r["metadata"]["name"]) for r in roles}
    bindings = [
        o for o in objects
        if o["kind"] in ("ClusterRoleBinding", "RoleBinding")
        and (o["roleRef"]["kind"], o["roleRef"]["name"]) in names
    ]  # fmt: skip
    return [*roles, *bindings]


# topology=service, where mutual TLS is the default.
TLS_VALUES: dict[str, Any] = {"topology": "service", "tls": {"secretName": "extender-tls"}}


def chart_client_certificate(directory: Path, days: int = 3650) -> dict[str, str]:
    """The scheduler's client Secret as a render of the chart issues it, as files (renders are
    cached by values: other ``days``, another install and CA)."""
    values = {**TLS_VALUES, "tls": {**TLS_VALUES["tls"], "clientAuth": {"validityDays": days}}}
    (secret,) = [
        o for o in rendered(values)
        if o["kind"] == "Secret" and o["metadata"]["name"].endswith("-scheduler-client")
    ]  # fmt: skip
    directory.mkdir()
    files = {}
    for key in ("ca.crt", "tls.crt", "tls.key"):
        path = directory / key
        path.write_bytes(base64.b64decode(secret["data"][key]))
        files[key] = str(path)
    return files


def tls_files(server_ca: str, client: dict[str, str]) -> Callable[[dict[str, Any]], None]:
    """Point the chart's profile's mounted paths at this machine's copies."""

    def edit(config: dict[str, Any]) -> None:
        (extender,) = config["extenders"]
        assert extender["enableHTTPS"] is True
        assert set(extender["tlsConfig"]) == {"caFile", "certFile", "keyFile"}
        extender["tlsConfig"] = {
            "caFile": server_ca, "certFile": client["tls.crt"], "keyFile": client["tls.key"],
        }  # fmt: skip

    return edit


@dataclass(frozen=True)
class Shutdown:
    """How the chart stops an extender replica: its preStop sleep (serving on), then SIGTERM,
    after which the app waits ``shutdown_delay_seconds`` (still serving) before it closes; the
    kubelet SIGKILLs what still runs ``grace_seconds`` after the preStop sleep began."""

    prestop_sleep_seconds: float
    grace_seconds: float
    shutdown_delay_seconds: float


def chart_shutdown(values: dict[str, Any] | None = None) -> Shutdown:
    """The shutdown settings a render of the chart gives the extender's container."""
    objects = rendered(values)
    ((spec, container),) = [
        (o["spec"]["template"]["spec"], c) for o in objects if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"]
        if c["name"] != "kube-scheduler" and (c.get("lifecycle") or {}).get("preStop")
    ]  # fmt: skip
    config = next(
        yaml.safe_load(o["data"]["config.yaml"]) for o in objects
        if o["kind"] == "ConfigMap" and "config.yaml" in o.get("data", {})
        and "extenders" not in o["data"]["config.yaml"]
    )  # fmt: skip
    delay = Settings(**config).server.shutdown_delay_seconds
    return Shutdown(
        prestop_sleep_seconds=float(container["lifecycle"]["preStop"]["sleep"]["seconds"]),
        grace_seconds=float(spec["terminationGracePeriodSeconds"]),
        shutdown_delay_seconds=delay,
    )
