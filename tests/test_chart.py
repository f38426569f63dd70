"""Offline checks of the Helm chart in deploy/helm/placement-extender (no cluster, no helm binary).

The chart is rendered and linted by the real Helm v4 Go SDK (``helm-python-sdk``), every rendered
Kubernetes object is validated against the Kubernetes OpenAPI schemas (``kubernetes-validate``),
and the parts that must agree with the app are checked against the app itself:
``app.permissions.REQUIRED`` (RBAC), ``app.config.Settings`` (config file, port, bind budget).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import trustme
import yaml

helm = pytest.importorskip("helm_python", reason="pip install -e '.[chart]'")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[chart]'")

from app.api.server import VERBS as APP_VERBS  # noqa: E402
from app.api.server import Runtime  # noqa: E402
from app.api.serving import graceful_timeout  # noqa: E402
from app.config import Settings  # noqa: E402
from app.permissions import REQUIRED  # noqa: E402
from app.state.readiness import Readiness  # noqa: E402
from tests.serving import free_port, serve_demo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "placement-extender"
FILTER_BODY = (ROOT / "examples" / "filter-gpu-pod.json").read_bytes()
FIXTURE_SCHEDULER_CONFIG = ROOT / "tests" / "fixtures" / "kube-scheduler" / "config-nodecache.yaml"

RELEASE = "pe"
NAMESPACE = "placement-system"
FULLNAME = "pe-placement-extender"
SCHEDULER_FULLNAME = "pe-placement-extender-scheduler"
SCHEDULER_NAME = "placement-scheduler"
TLS_SECRET = "pe-extender-tls"
CLIENT_SECRET = f"{FULLNAME}-scheduler-client"  # the chart-issued scheduler client certificate

# Newest Kubernetes schema version kubernetes-validate ships.
K8S_VERSION = kubernetes_validate.utils.latest_version()

# Custom resources: no OpenAPI schema in kubernetes-validate; their shape is checked below.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),  # shape: tests/test_observability.py
    ("cert-manager.io/v1", "Certificate"),
}

# The extender's routes that kube-scheduler calls (POST /<verb>), from the app's one definition.
VERBS = {
    "filterVerb": APP_VERBS.filter,
    "prioritizeVerb": APP_VERBS.prioritize,
    "bindVerb": APP_VERBS.bind,
    "preemptVerb": APP_VERBS.preempt,
}

# Fields of kubescheduler.config.k8s.io/v1 that the chart may use. kube-scheduler decodes its
# config strictly, so an unknown key would stop it from starting.
KSC_TOP_KEYS = {
    "apiVersion", "kind", "parallelism", "leaderElection", "clientConnection",
    "healthzBindAddress", "metricsBindAddress", "enableProfiling", "enableContentionProfiling",
    "percentageOfNodesToScore", "podInitialBackoffSeconds", "podMaxBackoffSeconds", "profiles",
    "extenders", "delayCacheUntilActive",
}  # fmt: skip
LEADER_ELECTION_KEYS = {
    "leaderElect", "leaseDuration", "renewDeadline", "retryPeriod", "resourceLock",
    "resourceName", "resourceNamespace",
}  # fmt: skip
EXTENDER_KEYS = {
    "urlPrefix", "filterVerb", "preemptVerb", "prioritizeVerb", "weight", "bindVerb",
    "enableHTTPS", "tlsConfig", "httpTimeout", "nodeCacheCapable", "managedResources", "ignorable",
}  # fmt: skip
EXTENDER_TLS_KEYS = {
    "insecure", "serverName", "certFile", "keyFile", "caFile", "certData", "keyData", "caData",
}  # fmt: skip

# topology=service with mutual TLS (its default) and an existing server Secret.
SERVICE_MTLS: dict[str, Any] = {"topology": "service", "tls": {"secretName": TLS_SECRET}}

SCENARIOS: dict[str, dict[str, Any]] = {
    "default": {},  # topology=scheduler-pod
    "tls-secret": SERVICE_MTLS,
    "service-plain-http": {"topology": "service", "tls": {"enabled": False}},
    "tls-cert-manager": {
        "topology": "service",
        "tls": {
            "enabled": True,
            "certManager": {
                "enabled": True,
                "issuerRef": {"name": "cluster-ca", "kind": "ClusterIssuer"},
            },
        },
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    },
    "tls-without-client-auth": {
        "topology": "service",
        "tls": {"secretName": TLS_SECRET, "clientAuth": {"enabled": False}},
    },
    "tls-own-client-secret": {
        "topology": "service",
        "tls": {"secretName": TLS_SECRET, "clientAuth": {"existingSecret": "mine"}},
    },
    "scheduler-off": {
        **SERVICE_MTLS,
        "scheduler": {"enabled": False},
        "networkPolicy": {"extenderFrom": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]},
    },
    "network-policy-off": {"networkPolicy": {"enabled": False}},
    "single-replica": {"replicaCount": 1, "scheduler": {"replicaCount": 1}},
    "custom-weights": {
        "scheduler": {"weight": 10, "httpTimeoutSeconds": 12},
        "config": {
            "bind": {"budget_seconds": 9.5},
            "scoring": {"gpu_pods": {"fit": "spread", "weights": {"fit": 3, "pool_priority": 0.5}}},
        },
    },
    "service-monitor-http": {"metrics": {"serviceMonitor": {"enabled": True}}},
    "dashboards-and-alerts": {
        "metrics": {"serviceMonitor": {"enabled": True}},
        "dashboards": {"enabled": True},
        "prometheusRule": {"enabled": True},
    },
}


# --------------------------------------------------------------------------------------------
# rendering helpers


@pytest.fixture(scope="module")
def chart() -> Any:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


class Rendered:
    """One `helm template`: the objects and NOTES.txt."""

    def __init__(self, files: dict[str, str]) -> None:
        self.notes = ""
        self.objects: list[dict[str, Any]] = []
        for path, text in sorted(files.items()):
            if path.endswith("NOTES.txt"):
                self.notes = text
                continue
            self.objects.extend(doc for doc in yaml.safe_load_all(text) if doc)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        hits = [o for o in self.all(kind) if o["metadata"]["name"] == name]
        assert len(hits) <= 1, f"two {kind}/{name}"
        return hits[0] if hits else None

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj = self.find(kind, name)
        assert obj is not None, f"{kind}/{name} not rendered; have {self.names()}"
        return obj

    def names(self) -> list[str]:
        return [f"{o['kind']}/{o['metadata']['name']}" for o in self.objects]

    def app_config_text(self) -> str:
        return str(self.get("ConfigMap", FULLNAME)["data"]["config.yaml"])

    def scheduler_config(self) -> dict[str, Any]:
        text = self.get("ConfigMap", SCHEDULER_FULLNAME)["data"]["config.yaml"]
        config: dict[str, Any] = yaml.safe_load(text)
        return config

    def in_scheduler_pod(self) -> bool:
        return self.find("Deployment", FULLNAME) is None

    def extender_pod(self) -> dict[str, Any]:
        """The Deployment whose pods run the extender: its own (topology=service) or the
        scheduler's (topology=scheduler-pod)."""
        return self.get("Deployment", SCHEDULER_FULLNAME if self.in_scheduler_pod() else FULLNAME)

    def extender(self) -> dict[str, Any]:
        """The extender container."""
        return container(self.extender_pod(), "extender")

    def extender_entry(self) -> dict[str, Any]:
        extenders = self.scheduler_config()["extenders"]
        assert len(extenders) == 1
        entry: dict[str, Any] = extenders[0]
        return entry


_cache: dict[str, Rendered] = {}


def render(chart: Any, values: dict[str, Any] | None = None) -> Rendered:
    files = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return Rendered(files)


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, chart: Any) -> tuple[str, Rendered]:
    name: str = request.param
    return name, rendered(chart, name)


def rendered(chart: Any, name: str) -> Rendered:
    if name not in _cache:
        _cache[name] = render(chart, SCENARIOS[name])
    return _cache[name]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings reads PLACEMENT_EXTENDER_* overrides from the environment; use the file only."""
    for key in list(os.environ):
        if key.startswith("PLACEMENT_EXTENDER_"):
            monkeypatch.delenv(key)


def go_duration_seconds(text: str) -> float:
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a Go duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The pod's container ``name`` (sidecars in initContainers included), or its only one."""
    spec = pod_spec(deployment)
    if name is None:
        (only,) = spec["containers"]
        return dict(only)
    (found,) = [c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name]
    return dict(found)


def volume_for_mount(
    deployment: dict[str, Any], mount_path: str, name: str | None = None
) -> tuple[dict[str, Any], dict]:
    mounts = [
        m for m in container(deployment, name)["volumeMounts"] if m["mountPath"] == mount_path
    ]
    assert len(mounts) == 1, f"nothing mounted at {mount_path}"
    volumes = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mounts[0]["name"]]
    assert len(volumes) == 1
    return mounts[0], volumes[0]


def file_source(
    deployment: dict[str, Any], path: str, name: str | None = None
) -> tuple[str, str, str]:
    """Which (volume kind, object name, key) provides the file at ``path`` in the container."""
    for mount in container(deployment, name)["volumeMounts"]:
        mount_path = mount["mountPath"]
        if "subPath" in mount:
            if path != mount_path:
                continue
            rel = mount["subPath"]
        elif path.startswith(mount_path.rstrip("/") + "/"):
            rel = path[len(mount_path.rstrip("/")) + 1 :]
        else:
            continue
        (volume,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"]]
        for kind, name_key in (("secret", "secretName"), ("configMap", "name")):
            if kind in volume:
                source = volume[kind]
                items = source.get("items")
                if items is None:
                    return kind, source[name_key], rel
                for item in items:
                    if item["path"] == rel:
                        return kind, source[name_key], item["key"]
                raise AssertionError(f"{path}: {rel} is not an item of volume {volume['name']}")
    raise AssertionError(f"{path} is not provided by any volume mount")


# --------------------------------------------------------------------------------------------
# lint and schema validation of every object


def test_lint_is_clean(scenario: tuple[str, Rendered]) -> None:
    name, _ = scenario
    report = helm.lint(CHART, SCENARIOS[name], strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


def test_every_object_validates_against_kubernetes_schemas(scenario: tuple[str, Rendered]) -> None:
    _, out = scenario
    assert out.objects
    for obj in out.objects:
        if (obj["apiVersion"], obj["kind"]) in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")


def test_objects_are_namespaced_and_labelled(scenario: tuple[str, Rendered]) -> None:
    _, out = scenario
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for obj in out.objects:
        meta = obj["metadata"]
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in meta
        elif obj["kind"] == "RoleBinding" and meta["namespace"] == "kube-system":
            assert meta["name"].endswith("-auth-reader")
        else:
            assert meta["namespace"] == NAMESPACE, out.names()
        labels = meta["labels"]
        assert labels["app.kubernetes.io/name"] == "placement-extender"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/component"] in {"extender", "scheduler", "test"}
    names = out.names()
    assert len(names) == len(set(names))


def test_custom_resources_have_the_right_shape(chart: Any) -> None:
    out = rendered(chart, "tls-cert-manager")
    service = out.get("Service", FULLNAME)

    monitor = out.get("ServiceMonitor", FULLNAME)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prom"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    # Scraped on the plain probe port: the extender port wants a client certificate.
    assert endpoint["port"] == "probes" in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["scheme"] == "http" and "tlsConfig" not in endpoint
    go_duration_seconds(endpoint["interval"])
    go_duration_seconds(endpoint["scrapeTimeout"])

    cert = out.get("Certificate", FULLNAME)
    assert cert["apiVersion"] == "cert-manager.io/v1"
    spec = cert["spec"]
    assert spec["secretName"] == f"{FULLNAME}-tls"
    assert spec["issuerRef"] == {
        "name": "cluster-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    host = urlsplit(out.extender_entry()["urlPrefix"]).hostname
    assert host in spec["dnsNames"]
    assert f"{FULLNAME}.{NAMESPACE}.svc.cluster.local" in spec["dnsNames"]
    assert "server auth" in spec["usages"]
    renew, lifetime = (go_duration_seconds(spec[key]) for key in ("renewBefore", "duration"))
    assert renew < lifetime  # the certificate is renewed before it expires

    client = out.get("Certificate", CLIENT_SECRET)["spec"]
    assert client["secretName"] == CLIENT_SECRET
    assert client["usages"] == ["client auth", "digital signature", "key encipherment"]
    assert client["issuerRef"] == spec["issuerRef"]
    assert client["commonName"] == SCHEDULER_FULLNAME
    assert out.find("Secret", CLIENT_SECRET) is None  # cert-manager writes it

    plain = rendered(chart, "service-monitor-http").get("ServiceMonitor", FULLNAME)
    (endpoint,) = plain["spec"]["endpoints"]
    assert endpoint["port"] == "probes" and endpoint["scheme"] == "http"

    default = rendered(chart, "default")
    assert not default.all("ServiceMonitor") and not default.all("Certificate")
    assert not rendered(chart, "tls-secret").all("Certificate")


# --------------------------------------------------------------------------------------------
# agreement with the app


def _granted(role: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    granted: dict[tuple[str, str], list[str]] = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no names, no URLs
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert (group, resource) not in granted, f"{group}/{resource} granted twice"
                granted[(group, resource)] = sorted(rule["verbs"])
    return granted


def test_roles_are_exactly_app_permissions(scenario: tuple[str, Rendered]) -> None:
    _, out = scenario
    # topology=scheduler-pod: the extender runs as its pod's (the scheduler's) ServiceAccount.
    account = SCHEDULER_FULLNAME if out.in_scheduler_pod() else FULLNAME
    extender_sa = {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
    bindings = []
    for role_kind, namespaced in (("ClusterRole", False), ("Role", True)):
        role = out.get(role_kind, FULLNAME)
        required = {
            (p.api_group, p.resource): sorted(p.verbs)
            for p in REQUIRED
            if p.namespaced == namespaced
        }
        assert _granted(role) == required, role_kind
        binding = out.get(f"{role_kind}Binding", FULLNAME)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": FULLNAME,
        }
        assert binding["subjects"] == [extender_sa]
        if namespaced:  # the Leases live where the app looks for them
            assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
            config = yaml.safe_load(out.app_config_text())
            assert config["kube"]["ledger_namespace"] == NAMESPACE
        bindings.append(binding)
    assert pod_spec(out.extender_pod())["serviceAccountName"] == account
    out.get("ServiceAccount", account)
    assert (out.find("ServiceAccount", FULLNAME) is None) == out.in_scheduler_pod()
    # ...and the extender's account is bound to nothing else (but kube-scheduler's own roles
    # when the two share the pod).
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for other in out.all(kind):
            if not any(other is b for b in bindings) and extender_sa in other["subjects"]:
                assert out.in_scheduler_pod(), other["metadata"]["name"]
                assert other["metadata"]["labels"]["app.kubernetes.io/component"] == "scheduler"


@pytest.mark.usefixtures("clean_env")
def test_app_config_validates_with_settings(scenario: tuple[str, Rendered]) -> None:
    name, out = scenario
    data = yaml.safe_load(out.app_config_text())
    settings = Settings(**data)
    ports = out.extender()["ports"]
    service_ports = out.get("Service", FULLNAME)["spec"]["ports"]
    if out.in_scheduler_pod():
        # The verbs on loopback only; the probes and /metrics on the pod's IP.
        assert (settings.server.host, settings.server.probe_host) == ("127.0.0.1", "0.0.0.0")
        assert [p["name"] for p in ports] == [p["name"] for p in service_ports] == ["probes"]
        (probes,), (service_probes,) = ports, service_ports
    else:
        assert settings.server.host == "0.0.0.0" and settings.server.probe_host is None
        (port, probes), (service_port, service_probes) = ports, service_ports
        assert port["containerPort"] == service_port["port"] == settings.server.port
        assert service_port["targetPort"] == port["name"]
    assert probes["name"] == "probes" and probes["containerPort"] == settings.server.probe_port
    assert service_probes["port"] == settings.server.probe_port
    assert service_probes["targetPort"] == "probes"
    tls = SCENARIOS[name].get("tls", {})
    # TLS: topology=service unless opted out; mutual unless switched off.
    tls_on = not out.in_scheduler_pod() and tls.get("enabled", True)
    client_auth = tls_on and tls.get("clientAuth", {}).get("enabled", True)
    if tls_on:
        assert settings.server.tls_cert_file and settings.server.tls_key_file
    else:
        assert settings.server.tls_cert_file is None and settings.server.tls_key_file is None
    # /explain only for callers with a client certificate, or inside the pod.
    assert (settings.server.tls_client_ca_file is not None) == client_auth
    assert settings.server.explain == (client_auth or out.in_scheduler_pod())
    overrides = SCENARIOS[name].get("config", {})
    if "bind" in overrides:
        assert settings.bind.budget_seconds == overrides["bind"]["budget_seconds"]
    if "scoring" in overrides:
        assert settings.scoring.gpu_pods.fit == "spread"
        assert settings.scoring.gpu_pods.weights.fit == 3
        assert settings.scoring.gpu_pods.weights.pool_priority == 0.5


@pytest.mark.usefixtures("clean_env")
def test_scheduler_config_agrees_with_the_app(chart: Any) -> None:
    out = rendered(chart, "default")
    config = out.scheduler_config()
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["kind"] == "KubeSchedulerConfiguration"
    assert set(config) <= KSC_TOP_KEYS
    assert "clientConnection" not in config  # in-cluster service account
    (profile,) = config["profiles"]
    assert profile["schedulerName"] == SCHEDULER_NAME

    election = config["leaderElection"]
    assert set(election) <= LEADER_ELECTION_KEYS
    assert election["leaderElect"] is True
    assert election["resourceNamespace"] == NAMESPACE
    assert election["resourceName"] == SCHEDULER_NAME
    assert election["resourceLock"] == "leases"

    entry = out.extender_entry()
    assert set(entry) <= EXTENDER_KEYS
    for key, verb in VERBS.items():
        assert entry[key] == verb
    assert entry["nodeCacheCapable"] is True
    assert entry["weight"] == 5
    assert entry["ignorable"] is False
    assert "enableHTTPS" not in entry and "tlsConfig" not in entry

    # topology=scheduler-pod: the extender in the scheduler's own pod, on loopback.
    defaults = Settings()
    url = urlsplit(entry["urlPrefix"])
    settings = Settings(**yaml.safe_load(out.app_config_text()))
    assert url.scheme == "http"
    assert url.hostname == settings.server.host == "127.0.0.1"
    assert url.port == settings.server.port == defaults.server.port
    assert url.path == ""

    assert entry["httpTimeout"] == "5s"
    rendered_budget = Settings(**yaml.safe_load(out.app_config_text())).bind.budget_seconds
    assert rendered_budget == defaults.bind.budget_seconds
    assert go_duration_seconds(entry["httpTimeout"]) > rendered_budget

    # Same verbs and cache mode as the config a real kube-scheduler 1.36 ran with (fixtures).
    fixture = yaml.safe_load(FIXTURE_SCHEDULER_CONFIG.read_text())
    (recorded,) = fixture["extenders"]
    assert set(entry) >= set(recorded) - {"weight"}
    for key in (*VERBS, "nodeCacheCapable"):
        assert entry[key] == recorded[key]


@pytest.mark.parametrize(
    ("scenario_name", "scheme"), [("service-plain-http", "http"), ("tls-secret", "https")]
)
def test_service_topology_calls_the_service(chart: Any, scenario_name: str, scheme: str) -> None:
    out = rendered(chart, scenario_name)
    url = urlsplit(out.extender_entry()["urlPrefix"])
    assert (url.scheme, url.hostname, url.port) == (scheme, f"{FULLNAME}.{NAMESPACE}.svc", 8888)
    service = out.get("Service", FULLNAME)
    assert service["spec"]["selector"] == out.extender_pod()["spec"]["selector"]["matchLabels"]
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == url.port]
    assert port["name"] == port["targetPort"] == scheme
    assert [p["name"] for p in out.extender()["ports"]] == [scheme, "probes"]
    # kube-scheduler's own container stays alone in its pod.
    scheduler = pod_spec(out.get("Deployment", SCHEDULER_FULLNAME))
    assert [c["name"] for c in scheduler["containers"]] == ["kube-scheduler"]
    assert "initContainers" not in scheduler


@pytest.mark.usefixtures("clean_env")
def test_custom_weight_and_timeout(chart: Any) -> None:
    out = rendered(chart, "custom-weights")
    entry = out.extender_entry()
    assert entry["weight"] == 10
    assert entry["httpTimeout"] == "12s"
    budget = Settings(**yaml.safe_load(out.app_config_text())).bind.budget_seconds
    assert budget == 9.5
    assert go_duration_seconds(entry["httpTimeout"]) > budget


@pytest.mark.parametrize(
    ("timeout", "budget"),
    [
        (3, None),  # app default budget 3.0
        (2, None),
        (4, 4.0),
        (5, 5.5),
    ],
)
def test_render_fails_when_http_timeout_does_not_exceed_bind_budget(
    chart: Any, timeout: int, budget: float | None
) -> None:
    values: dict[str, Any] = {"scheduler": {"httpTimeoutSeconds": timeout}}
    if budget is not None:
        values["config"] = {"bind": {"budget_seconds": budget}}
    with pytest.raises(helm.HelmRenderError, match=r"httpTimeoutSeconds .* must be greater"):
        render(chart, values)
    # ...also with the scheduler off: the timeout is the one NOTES.txt tells users to configure.
    values.update(SERVICE_MTLS)
    values["scheduler"]["enabled"] = False
    with pytest.raises(helm.HelmRenderError, match="httpTimeoutSeconds"):
        render(chart, values)


def test_bind_budget_default_is_the_apps(chart: Any) -> None:
    """With config.bind unset the chart assumes the app's default budget."""
    default_budget = Settings.model_fields["bind"].default.budget_seconds  # 3.0
    # null deletes the chart's default config.bind, as `--set config.bind=null` would.
    values: dict[str, Any] = {
        "config": {"bind": None},
        "scheduler": {"httpTimeoutSeconds": int(default_budget) + 1},
    }
    assert "bind" not in chart.merge_values(values)["config"]
    out = render(chart, values)
    assert "budget_seconds" not in out.app_config_text()
    values["scheduler"]["httpTimeoutSeconds"] = math.ceil(default_budget)
    with pytest.raises(helm.HelmRenderError, match="httpTimeoutSeconds"):
        render(chart, values)


# --------------------------------------------------------------------------------------------
# TLS


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    ("scenario_name", "secret", "client_secret"),
    [
        ("tls-secret", TLS_SECRET, CLIENT_SECRET),
        ("tls-cert-manager", f"{FULLNAME}-tls", CLIENT_SECRET),
        ("tls-own-client-secret", TLS_SECRET, "mine"),
    ],
)
def test_mutual_tls_wiring(chart: Any, scenario_name: str, secret: str, client_secret: str) -> None:
    """The paths each side is configured with are the files mounted there, from the right keys."""
    out = rendered(chart, scenario_name)
    settings = Settings(**yaml.safe_load(out.app_config_text()))
    extender = out.get("Deployment", FULLNAME)
    assert settings.server.tls_cert_file and settings.server.tls_key_file
    assert settings.server.tls_client_ca_file
    assert file_source(extender, settings.server.tls_cert_file) == ("secret", secret, "tls.crt")
    assert file_source(extender, settings.server.tls_key_file) == ("secret", secret, "tls.key")
    # The extender trusts the CA that signed the scheduler's client certificate.
    assert file_source(extender, settings.server.tls_client_ca_file) == (
        "secret",
        client_secret,
        "ca.crt",
    )

    c = container(extender)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["scheme"] == "HTTP"  # kubelet has no client certificate
        assert c[probe]["httpGet"]["port"] == "probes"
    assert c["ports"][0]["name"] == "https"

    entry = out.extender_entry()
    assert set(entry) <= EXTENDER_KEYS
    assert urlsplit(entry["urlPrefix"]).scheme == "https"
    assert urlsplit(entry["urlPrefix"]).port == settings.server.port
    assert entry["enableHTTPS"] is True
    tls_config = entry["tlsConfig"]
    assert set(tls_config) == {"caFile", "certFile", "keyFile"} <= EXTENDER_TLS_KEYS
    scheduler = out.get("Deployment", SCHEDULER_FULLNAME)
    assert file_source(scheduler, tls_config["caFile"]) == ("secret", secret, "ca.crt")
    assert file_source(scheduler, tls_config["certFile"]) == ("secret", client_secret, "tls.crt")
    assert file_source(scheduler, tls_config["keyFile"]) == ("secret", client_secret, "tls.key")
    # Each side gets only what it needs: never the other side's private key.
    for volume in pod_spec(scheduler)["volumes"]:
        if volume.get("secret", {}).get("secretName") == secret:
            assert [i["key"] for i in volume["secret"]["items"]] == ["ca.crt"]
    for volume in pod_spec(extender)["volumes"]:
        if volume.get("secret", {}).get("secretName") == client_secret:
            assert [i["key"] for i in volume["secret"]["items"]] == ["ca.crt"]
    # The chart issues the client certificate unless the user brings one.
    issued = out.find("Secret", client_secret) or out.find("Certificate", client_secret)
    assert (issued is None) == (client_secret == "mine")


@pytest.mark.usefixtures("clean_env")
def test_tls_without_client_auth_serves_tls_only(chart: Any) -> None:
    out = rendered(chart, "tls-without-client-auth")
    settings = Settings(**yaml.safe_load(out.app_config_text()))
    assert settings.server.tls_cert_file and settings.server.tls_client_ca_file is None
    assert settings.server.explain is False
    assert set(out.extender_entry()["tlsConfig"]) == {"caFile"}
    assert out.find("Secret", CLIENT_SECRET) is None


def client_secret_files(out: Rendered, directory: Path) -> dict[str, Path]:
    """The chart-generated client Secret's keys, written as files."""
    data = out.get("Secret", CLIENT_SECRET)["data"]
    assert out.get("Secret", CLIENT_SECRET)["type"] == "kubernetes.io/tls"
    directory.mkdir(exist_ok=True)
    files = {}
    for key in ("ca.crt", "tls.crt", "tls.key"):
        files[key] = directory / key
        files[key].write_bytes(base64.b64decode(data[key]))
    return files


def test_chart_issued_client_certificate_is_served_and_another_release_s_is_refused(
    chart: Any, tmp_path: Path
) -> None:
    """The extender as the chart configures it (its server Secret, the chart's client CA, probe
    port) against the scheduler's client certificate as the chart issues it, over real TLS."""
    out = rendered(chart, "tls-secret")
    issued = client_secret_files(out, tmp_path)
    other = client_secret_files(render(chart, SCENARIOS["tls-secret"]), tmp_path / "other")
    assert other["ca.crt"].read_bytes() != issued["ca.crt"].read_bytes()  # a fresh CA per install

    server_ca = trustme.CA()  # stands in for the user's tls.secretName Secret
    leaf = server_ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    settings = Settings(**yaml.safe_load(out.app_config_text()))
    env = {
        "PLACEMENT_EXTENDER_SERVER__TLS_CERT_FILE": str(cert),
        "PLACEMENT_EXTENDER_SERVER__TLS_KEY_FILE": str(key),
        "PLACEMENT_EXTENDER_SERVER__TLS_CLIENT_CA_FILE": str(issued["ca.crt"]),
        "PLACEMENT_EXTENDER_SERVER__PROBE_PORT": str(free_port()),
    }

    def status(client_files: dict[str, Path]) -> int | None:
        context = ssl.create_default_context()
        server_ca.configure_trust(context)
        context.load_cert_chain(client_files["tls.crt"], client_files["tls.key"])
        with httpx.Client(verify=context, timeout=10) as c:
            try:
                return c.post(f"https://127.0.0.1:{port}/explain", content=FILTER_BODY).status_code
            except httpx.TransportError:
                return None

    port = free_port()
    assert settings.server.explain and settings.server.probe_port
    with serve_demo(port, env, listeners=2):
        assert status(issued) == 200
        assert status(other) is None


def test_service_topology_without_a_certificate_source_fails(chart: Any) -> None:
    """Mutual TLS is topology=service's default: without a Secret the install stops and says
    how to provide one, or how to opt out."""
    with pytest.raises(helm.HelmRenderError, match=r"tls\.secretName .* tls\.enabled=false"):
        render(chart, {"topology": "service"})
    with pytest.raises(helm.HelmRenderError, match=r"issuerRef\.name"):
        render(chart, {"topology": "service", "tls": {"certManager": {"enabled": True}}})
    with pytest.raises(helm.HelmRenderError, match=r"tls\.enabled"):
        render(chart, {"config": {"server": {"tls_cert_file": "/x.crt"}}})


def test_render_fails_without_a_probe_port_or_an_admitted_scheduler(chart: Any) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"probe_port is required"):
        render(chart, {"config": {"server": {"probe_port": None}}})
    with pytest.raises(helm.HelmRenderError, match=r"networkPolicy\.extenderFrom"):
        render(chart, {**SERVICE_MTLS, "scheduler": {"enabled": False}})
    with pytest.raises(helm.HelmRenderError, match=r"tls\.enabled"):
        render(chart, {"config": {"server": {"tls_client_ca_file": "/ca.crt"}}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"scheduler": {"enabled": False}}, r"needs scheduler\.enabled=true.* topology=service"),
        ({"tls": {"secretName": TLS_SECRET}}, r"tls\.\* applies to topology=service"),
        ({"tls": {"certManager": {"enabled": True}}}, r"tls\.\* applies to topology=service"),
        ({"config": {"server": {"host": "0.0.0.0"}}}, r"config\.server\.host is set by the chart"),
    ],
)
def test_scheduler_pod_topology_refuses_what_cannot_apply(
    chart: Any, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(chart, values)


# --------------------------------------------------------------------------------------------
# NetworkPolicy


def ingress_by_port(policy: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """``{port name: peers admitted}`` of a NetworkPolicy (one port per rule here)."""
    rules: dict[str, list[dict[str, Any]]] = {}
    for rule in policy["spec"]["ingress"]:
        (port,) = rule["ports"]
        assert port["protocol"] == "TCP"
        rules[port["port"]] = rule["from"]  # no rule without "from": that would admit everyone
    return rules


def test_helm_test_pod_checks_readyz_through_the_service(scenario: tuple[str, Rendered]) -> None:
    _, out = scenario
    (hook,) = [o for o in out.all("Pod") if o["metadata"]["annotations"]["helm.sh/hook"] == "test"]
    (c,) = hook["spec"]["containers"]
    assert c["image"] == out.extender()["image"]
    service = out.get("Service", FULLNAME)
    (probes,) = [p for p in service["spec"]["ports"] if p["name"] == "probes"]
    script = c["command"][-1]
    assert f'"http://{FULLNAME}.{NAMESPACE}.svc:{probes["port"]}/readyz"' in script
    assert hook["spec"]["restartPolicy"] == "Never"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # The NetworkPolicy admits it to the probe port.
    if policy := out.find("NetworkPolicy", FULLNAME):
        admitted = [p["podSelector"]["matchLabels"] for p in ingress_by_port(policy)["probes"]
                    if p.get("podSelector", {}).get("matchLabels")]  # fmt: skip
        assert any(m.items() <= hook["metadata"]["labels"].items() for m in admitted)


def test_network_policy_in_the_scheduler_pod_topology(chart: Any) -> None:
    """The verbs listen on 127.0.0.1; the probe port and kube-scheduler's secure port admit the
    scraper and the `helm test` pod."""
    out = rendered(chart, "default")
    policy = out.get("NetworkPolicy", FULLNAME)
    scheduler = out.get("Deployment", SCHEDULER_FULLNAME)
    assert policy["spec"]["podSelector"] == scheduler["spec"]["selector"]
    rules = ingress_by_port(policy)
    assert set(rules) == {"probes", "https"}
    assert {"probes"} == {p["name"] for p in out.extender()["ports"]}
    assert {"https"} == {p["name"] for p in container(scheduler, "kube-scheduler")["ports"]}
    for peers in rules.values():
        assert peers[1:] == chart.values["networkPolicy"]["metricsFrom"]
        assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"


@pytest.mark.parametrize("scenario_name", ["service-plain-http", "tls-secret"])
def test_network_policy_admits_only_the_scheduler_and_the_scraper(
    chart: Any, scenario_name: str
) -> None:
    out = rendered(chart, scenario_name)
    policy = out.get("NetworkPolicy", FULLNAME)
    extender = out.get("Deployment", FULLNAME)
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"] == extender["spec"]["selector"]
    rules = ingress_by_port(policy)
    verbs_port, probe_port = (p["name"] for p in container(extender)["ports"])
    assert set(rules) == {verbs_port, probe_port}
    scheduler_pods = out.get("Deployment", SCHEDULER_FULLNAME)["spec"]["template"]["metadata"]
    (peer,) = rules[verbs_port]
    assert set(peer) == {"podSelector"}  # this namespace's pods...
    assert peer["podSelector"]["matchLabels"].items() <= scheduler_pods["labels"].items()
    assert (
        not peer["podSelector"]["matchLabels"].items()
        <= extender["spec"]["template"]["metadata"]["labels"].items()
    )  # ...that are the scheduler's, not the extender's
    test_pod, *scrapers = rules[probe_port]
    assert test_pod["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    assert scrapers == chart.values["networkPolicy"]["metricsFrom"]


def test_network_policy_follows_the_values(chart: Any) -> None:
    external = rendered(chart, "scheduler-off").get("NetworkPolicy", FULLNAME)
    assert ingress_by_port(external)["https"] == [{"ipBlock": {"cidr": "10.0.0.0/24"}}]
    assert rendered(chart, "network-policy-off").all("NetworkPolicy") == []


def test_generated_client_certificate_is_a_client_certificate_of_its_ca(
    chart: Any, tmp_path: Path
) -> None:
    x509 = pytest.importorskip("cryptography.x509")
    files = client_secret_files(rendered(chart, "tls-secret"), tmp_path)
    ca = x509.load_pem_x509_certificate(files["ca.crt"].read_bytes())
    leaf = x509.load_pem_x509_certificate(files["tls.crt"].read_bytes())
    leaf.verify_directly_issued_by(ca)
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in usages
    (cn,) = leaf.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    assert cn.value == SCHEDULER_FULLNAME
    days = chart.values["tls"]["clientAuth"]["validityDays"]
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert abs(lifetime.days - days) <= 1


# --------------------------------------------------------------------------------------------
# workload hardening and shape


def assert_hardened(deployment: dict[str, Any]) -> None:
    spec = pod_spec(deployment)
    pod_ctx = spec["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True and pod_ctx["runAsUser"] == 65532
    assert pod_ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container(deployment)["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 65532
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "privileged" not in ctx
    assert spec["enableServiceLinks"] is False
    _, tmp = volume_for_mount(deployment, "/tmp")
    assert "emptyDir" in tmp
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    resources = container(deployment)["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def assert_extender_container(c: dict[str, Any]) -> None:
    assert c["image"] == "ghcr.io/placement-extender/placement-extender:0.1.0"
    assert c["args"] == ["serve", "--config", "/etc/placement-extender/config.yaml"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] == "probes"
        assert c[probe]["httpGet"]["scheme"] == "HTTP"
    ctx = c["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["runAsUser"] == 65532
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["allowPrivilegeEscalation"] is False


def test_extender_deployment_in_the_service_topology(chart: Any) -> None:
    out = rendered(chart, "service-plain-http")
    deployment = out.get("Deployment", FULLNAME)
    assert deployment["spec"]["replicas"] == 2
    assert_hardened(deployment)
    c = container(deployment)
    assert_extender_container(c)
    assert file_source(deployment, "/etc/placement-extender/config.yaml") == (
        "configMap",
        FULLNAME,
        "config.yaml",
    )
    assert c["ports"][0]["name"] == "http"
    # The extender itself is placed by the default scheduler (no chicken-and-egg).
    assert "schedulerName" not in pod_spec(deployment)
    service = out.get("Service", FULLNAME)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_extender_is_a_sidecar_of_kube_scheduler_by_default(chart: Any) -> None:
    """topology=scheduler-pod: a native sidecar (restartPolicy Always in initContainers), so it
    starts before kube-scheduler and stops after it; one per scheduler replica."""
    out = rendered(chart, "default")
    assert out.find("Deployment", FULLNAME) is None
    deployment = out.get("Deployment", SCHEDULER_FULLNAME)
    spec = pod_spec(deployment)
    (sidecar,) = spec["initContainers"]
    assert sidecar["name"] == "extender" and sidecar["restartPolicy"] == "Always"
    assert_extender_container(sidecar)
    assert [c["name"] for c in spec["containers"]] == ["kube-scheduler"]
    assert file_source(deployment, "/etc/placement-extender/config.yaml", "extender") == (
        "configMap",
        FULLNAME,
        "config.yaml",
    )
    _, tmp = volume_for_mount(deployment, "/tmp", "extender")
    assert "emptyDir" in tmp
    assert volume_for_mount(deployment, "/tmp", "kube-scheduler")[1] is not tmp
    # The pod's grace period is the extender's (it covers the extender's shutdown).
    assert spec["terminationGracePeriodSeconds"] == chart.values["terminationGracePeriodSeconds"]
    # The Service keeps the probe port for the scraper and `helm test`, on these pods.
    service = out.get("Service", FULLNAME)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_scheduler_deployment(chart: Any) -> None:
    out = rendered(chart, "default")
    deployment = out.get("Deployment", SCHEDULER_FULLNAME)
    assert_hardened(deployment)
    c = container(deployment)
    assert c["name"] == "kube-scheduler"
    # Unset scheduler.image.tag: the cluster's version (here the Helm SDK's default, see
    # tests/test_chart_versions.py for others).
    assert re.fullmatch(r"registry\.k8s\.io/kube-scheduler:v1\.\d+\.\d+", c["image"])
    config_args = [a for a in c["args"] if a.startswith("--config=")]
    assert len(config_args) == 1
    assert file_source(deployment, config_args[0].removeprefix("--config=")) == (
        "configMap",
        SCHEDULER_FULLNAME,
        "config.yaml",
    )
    assert c["ports"] == [{"name": "https", "containerPort": 10259, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        get = c[probe]["httpGet"]
        assert get["scheme"] == "HTTPS"
        assert get["port"] in ("https", 10259)
        assert get["path"] in ("/livez", "/healthz", "/readyz")
    assert pod_spec(deployment)["serviceAccountName"] == SCHEDULER_FULLNAME
    # Selectors of the two Deployments must not overlap (topology=service).
    extender = rendered(chart, "service-plain-http").get("Deployment", FULLNAME)
    assert (
        deployment["spec"]["selector"]["matchLabels"] != extender["spec"]["selector"]["matchLabels"]
    )
    pinned = render(chart, {"scheduler": {"image": {"tag": "v1.35.4"}}})
    assert container(pinned.get("Deployment", SCHEDULER_FULLNAME))["image"].endswith(":v1.35.4")


@pytest.mark.parametrize(
    ("scenario_name", "extender_roles"),
    [("service-plain-http", set()), ("default", {FULLNAME})],  # default: the pod is shared
)
def test_scheduler_rbac(chart: Any, scenario_name: str, extender_roles: set[str]) -> None:
    out = rendered(chart, scenario_name)
    sa = {"kind": "ServiceAccount", "name": SCHEDULER_FULLNAME, "namespace": NAMESPACE}
    out.get("ServiceAccount", SCHEDULER_FULLNAME)
    cluster_roles = {
        b["roleRef"]["name"] for b in out.all("ClusterRoleBinding") if sa in b["subjects"]
    }
    assert cluster_roles == {"system:kube-scheduler", "system:volume-scheduler"} | extender_roles

    lease = out.scheduler_config()["leaderElection"]
    role_bindings = [b for b in out.all("RoleBinding") if sa in b["subjects"]]
    leases: dict[str, set[str]] = {}
    for binding in role_bindings:
        if binding["roleRef"]["kind"] != "Role":
            continue
        role = out.find("Role", binding["roleRef"]["name"])
        if role is None:  # built-in, e.g. kube-system/extension-apiserver-authentication-reader
            assert binding["metadata"]["namespace"] == "kube-system"
            assert binding["roleRef"]["name"] == "extension-apiserver-authentication-reader"
            continue
        assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == NAMESPACE
        for rule in role["rules"]:
            if rule["resources"] != ["leases"]:  # the extender's own Role (shared pod): wake-up
                continue
            assert rule["apiGroups"] == ["coordination.k8s.io"]
            names = rule.get("resourceNames")
            for verb in rule["verbs"]:
                if names is None:
                    leases.setdefault(verb, set()).add("*")
                else:
                    leases.setdefault(verb, set()).update(names)
    assert lease["resourceNamespace"] == NAMESPACE
    for verb in ("create", "get", "update"):
        assert leases.get(verb, set()) & {"*", lease["resourceName"]}, (verb, leases)


@pytest.mark.parametrize(
    ("scenario_name", "names"),
    [("service-plain-http", (FULLNAME, SCHEDULER_FULLNAME)), ("default", (SCHEDULER_FULLNAME,))],
)
def test_pod_disruption_budgets(chart: Any, scenario_name: str, names: tuple[str, ...]) -> None:
    """One per Deployment with more than one replica: in topology=scheduler-pod the scheduler's
    covers the extender too."""
    out = rendered(chart, scenario_name)
    assert {o["metadata"]["name"] for o in out.all("PodDisruptionBudget")} == set(names)
    for name in names:
        pdb = out.get("PodDisruptionBudget", name)
        assert pdb["spec"]["minAvailable"] == 1
        deployment = out.get("Deployment", name)
        assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    single = rendered(chart, "single-replica")
    assert single.all("PodDisruptionBudget") == []
    assert single.get("Deployment", SCHEDULER_FULLNAME)["spec"]["replicas"] == 1


def test_config_change_rolls_pods(chart: Any) -> None:
    def checksums(values: dict[str, Any]) -> tuple[str, ...]:
        out = render(chart, values)
        templates = [
            out.get("Deployment", n)["spec"]["template"] for n in (FULLNAME, SCHEDULER_FULLNAME)
        ]
        return tuple(t["metadata"]["annotations"]["checksum/config"] for t in templates)

    service: dict[str, Any] = {"topology": "service", "tls": {"enabled": False}}
    base = checksums(service)
    assert checksums(service) == base
    changed = checksums({**service, "config": {"server": {"log_level": "debug"}}})
    assert changed[0] != base[0] and changed[1] == base[1]
    changed = checksums({**service, "scheduler": {"weight": 7}})
    assert changed[0] == base[0] and changed[1] != base[1]

    # topology=scheduler-pod: either config rolls the one pod.
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        deployment = render(chart, values).get("Deployment", SCHEDULER_FULLNAME)
        found: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
        return found

    base_pod = annotations({})
    assert annotations({"config": {"server": {"log_level": "debug"}}}) != base_pod
    assert annotations({"scheduler": {"weight": 7}}) != base_pod


def test_scheduler_disabled(chart: Any) -> None:
    out = rendered(chart, "scheduler-off")
    assert out.find("Deployment", SCHEDULER_FULLNAME) is None
    assert out.find("ConfigMap", SCHEDULER_FULLNAME) is None
    scheduler_parts = [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in out.objects
        if o["metadata"]["labels"]["app.kubernetes.io/component"] == "scheduler"
    ]
    # Only the client certificate for the user's kube-scheduler (mutual TLS).
    assert scheduler_parts == [f"Secret/{CLIENT_SECRET}"]
    out.get("Deployment", FULLNAME)
    # NOTES.txt hands over the same extenders block for an existing kube-scheduler.
    block = out.notes.split("\nextenders:\n", 1)[1].split("\n\n", 1)[0]
    (entry,) = yaml.safe_load("extenders:\n" + block)["extenders"]
    assert entry == rendered(chart, "tls-secret").extender_entry()


def test_notes_explain_a_first_pod(chart: Any) -> None:
    notes = rendered(chart, "default").notes
    assert f"schedulerName: {SCHEDULER_NAME}" in notes
    assert 'placement-extender.io/gpu-types: "A10G,T4"' in notes


# --------------------------------------------------------------------------------------------
# values.schema.json


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": "two"},
        {"replicaCount": 0},
        {"replicaCount": 1.5},
        {"scheduler": {"enabled": "yes"}},
        {"scheduler": {"weight": 2.5}},
        {"scheduler": {"weight": "5"}},
        {"scheduler": {"weight": 0}},
        {"scheduler": {"httpTimeoutSeconds": "5s"}},
        {"scheduler": {"name": "Placement_Scheduler"}},
        {"tls": {"enabled": "true"}},
        {"tls": {"clientAuth": {"enabled": "yes"}}},
        {"tls": {"clientAuth": {"validityDays": 0}}},
        {"networkPolicy": {"extenderFrom": [{"podSelector": "scheduler"}]}},
        {"networkPolicy": {"metricsFrom": [{}]}},
        {"networkPolicy": {"enable": True}},
        {"config": {"server": {"port": "8888"}}},
        {"config": {"server": {"port": 70000}}},
        {"config": {"bind": {"budget_seconds": "3"}}},
        {"config": {"bind": {"budget_seconds": 0}}},
        {"config": {"scoring": {"cpu_pods": {"weights": {"fit": -1}}}}},
        {"config": {"servr": {"port": 8888}}},
        {"replicas": 2},
        {"topology": "sidecar"},
        {"config": {"server": {"probe_host": 0}}},
    ],
    ids=lambda v: repr(v),
)
def test_schema_rejects_wrong_values(chart: Any, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match="schema"):
        render(chart, values)
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    assert report["errors"], report


def test_schema_accepts_defaults_and_scenarios(chart: Any) -> None:
    chart.validate_schema(chart.values)
    for values in SCENARIOS.values():
        chart.validate_schema(chart.merge_values(values))


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = schema[section][name]
    if "anyOf" in node:  # Optional[Model] in pydantic
        objects = [n for n in node["anyOf"] if "$ref" in n or n.get("type") == "object"]
        if len(objects) == 1:
            return _resolve(schema, objects[0])
    return node


def _object_keys(schema: dict[str, Any], node: dict[str, Any], path: str) -> dict[str, set[str]]:
    """``{path: property names}`` for every nested object with declared properties."""
    node = _resolve(schema, node)
    props = node.get("properties")
    if not props:
        return {}
    found = {path: set(props)}
    for key, sub in props.items():
        found.update(_object_keys(schema, sub, f"{path}.{key}"))
    return found


def test_schema_config_mirrors_app_settings() -> None:
    """values.schema.json's `config` knows exactly the keys of app.config.Settings.

    When this fails after a change to app/config.py, update `properties.config` in
    deploy/helm/placement-extender/values.schema.json to match.
    """
    chart_schema = json.loads((CHART / "values.schema.json").read_text())
    app_schema = Settings.model_json_schema()
    chart_keys = _object_keys(chart_schema, chart_schema["properties"]["config"], "config")
    app_keys = _object_keys(app_schema, app_schema, "config")
    assert chart_keys == app_keys


# --------------------------------------------------------------------------------------------
# shutdown


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("scenario_name", ["default", "service-plain-http"])
def test_grace_period_covers_the_prestop_sleep_and_the_apps_shutdown(
    chart: Any, scenario_name: str
) -> None:
    out = rendered(chart, scenario_name)
    spec = pod_spec(out.extender_pod())
    prestop = out.extender()["lifecycle"]["preStop"]
    assert prestop == {"sleep": {"seconds": 5}}
    settings = Settings(**yaml.safe_load(out.app_config_text()))
    runtime = Runtime(settings=settings, readiness=Readiness())
    # after the preStop sleep: SIGTERM, the app's delay, then in-flight calls (its own bound)
    stopping = 5 + settings.server.shutdown_delay_seconds + graceful_timeout(runtime)
    assert spec["terminationGracePeriodSeconds"] >= stopping
    values = {**SCENARIOS[scenario_name], "preStopSleepSeconds": 0}
    assert "lifecycle" not in render(chart, values).extender()


@pytest.mark.parametrize(
    ("values", "minimum"),
    [
        ({"terminationGracePeriodSeconds": 13}, 14),  # 5 + 0 + 5 (read) + 3 (budget) + 1
        ({"terminationGracePeriodSeconds": 20, "preStopSleepSeconds": 12}, 21),
        ({"config": {"server": {"shutdown_delay_seconds": 20}}}, 34),
        (
            {
                "config": {"bind": {"budget_seconds": 9}},
                "scheduler": {"httpTimeoutSeconds": 10},
                "terminationGracePeriodSeconds": 19,
            },
            20,
        ),
    ],
)
def test_render_fails_when_the_grace_period_cannot_cover_shutdown(
    chart: Any, values: dict[str, Any], minimum: int
) -> None:
    with pytest.raises(
        helm.HelmRenderError, match=rf"terminationGracePeriodSeconds .* at least {minimum}"
    ):
        render(chart, values)
    render(chart, {**values, "terminationGracePeriodSeconds": minimum})  # enough
