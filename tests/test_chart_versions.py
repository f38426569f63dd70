"""The chart on every Kubernetes version it claims: `kubeVersion` in Chart.yaml names the oldest
minor; each minor from there to the newest one tested here renders (with that version in
`.Capabilities.KubeVersion`) into objects that validate against that minor's OpenAPI schemas
(kubernetes-validate), for the value sets that switch templates on and off.

Version-dependent fields: the floor is 1.30 rather than gating, because `lifecycle.preStop.sleep`
(the extender's preStop hook) is on by default from 1.30 and native sidecars (the extender in the
scheduler's pod) from 1.29; 1.29 is out of upstream support. The kube-scheduler image follows the
cluster's version unless `scheduler.image.tag` is set.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="pip install -e '.[chart]'")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[chart]'")

from helm_python import _native  # noqa: E402

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "placement-extender"
NEWEST = (1, 36)  # the Kubernetes the e2e tests run (tests/controlplane)
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "Certificate"}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "service-mtls-cert-manager": {
        "topology": "service",
        "tls": {"certManager": {"enabled": True, "issuerRef": {"name": "ca"}}},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "prometheusRule": {"enabled": True},
        "dashboards": {"enabled": True},
    },
    "service-plain-external-scheduler": {
        "topology": "service",
        "tls": {"enabled": False},
        "scheduler": {"enabled": False},
        "networkPolicy": {"extenderFrom": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]},
    },
}


def floor() -> tuple[int, int]:
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    found = re.fullmatch(r">=\s*(\d+)\.(\d+)\.0-0", constraint)
    assert found, f"kubeVersion {constraint!r}: expected '>=MAJOR.MINOR.0-0'"
    return int(found.group(1)), int(found.group(2))


CLAIMED = [(1, minor) for minor in range(floor()[1], NEWEST[1] + 1)]


def render(values: dict[str, Any], kube_version: str) -> list[dict[str, Any]]:
    """helm template with .Capabilities.KubeVersion set: the Helm SDK's `kube_version` option,
    which helm-python's Chart.render does not expose (its C ABI does)."""
    with helm.Chart.load(CHART) as chart:
        options = {"name": "pe", "namespace": "placement-system", "kube_version": kube_version}
        files = json.loads(
            _native.call_string(
                "helm_render", chart._raw(), json.dumps(values), json.dumps(options)
            )
        )
    return [doc for path, text in sorted(files.items()) if path.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]  # fmt: skip


def test_the_claimed_versions_have_schemas() -> None:
    assert CLAIMED[0] == floor() and CLAIMED[-1] == NEWEST
    for major, minor in CLAIMED:
        assert f"{major}.{minor}.0" in kubernetes_validate.utils.all_versions()


@pytest.mark.parametrize("version", [f"{a}.{b}" for a, b in CLAIMED])
@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_object_validates_on_every_claimed_minor(version: str, value_set: str) -> None:
    objects = render(VALUE_SETS[value_set], f"v{version}.0")
    assert objects
    for obj in objects:
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, f"{version}.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(
                f"{version}: {obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}"
            )


@pytest.mark.parametrize(
    ("cluster", "tag"),
    [
        ("v1.30.0", "v1.30.0"),
        ("v1.31.4-eks-1a2b3c4", "v1.31.4"),  # distributions' suffixes are not image tags
        ("v1.33.1+k3s1", "v1.33.1"),
        ("v1.36.2", "v1.36.2"),
    ],
)
def test_the_scheduler_image_follows_the_cluster(cluster: str, tag: str) -> None:
    (deployment,) = [o for o in render({}, cluster) if o["kind"] == "Deployment"]
    images = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert images["kube-scheduler"] == f"registry.k8s.io/kube-scheduler:{tag}"
    pinned = render({"scheduler": {"image": {"tag": "v1.35.0"}}}, cluster)
    (deployment,) = [o for o in pinned if o["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.35.0")
