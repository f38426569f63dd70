"""`helm install` into a real one-node cluster (tests/controlplane/node.py), as a user would:
the image `make image` built, the chart installed and uninstalled with the Helm SDK, and
Kubernetes doing the rest — kube-controller-manager creates the pods, kubelet runs them on
containerd with the rendered probes, mounts, service-account token and securityContext, the
chart's kube-scheduler places test pods through the extender (GPU and CPU, over nodes that are
API objects beside the real one), and the pods placed on the real node run.

Two installs: the default values (the extender beside kube-scheduler in its pod, called on
127.0.0.1) and topology=service with mutual TLS (the scheduler calls the extender's Service by
name; the test plays kube-proxy and cluster DNS for it, see ServiceProxy).

Needs root, Debian's containerd, runc, containernetworking-plugins, iptables, dnsmasq and
docker, kubelet and kube-controller-manager in KUBEBUILDER_ASSETS, and the image from
`make image`. Without them it skips with one line, except under CI=true, where it fails.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from kubernetes.client import CoordinationV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException

from app import __version__
from tests.controlplane.chart import CHART, RELEASE
from tests.controlplane.cluster import EXTENDER_NAMESPACE, ROOT, Assets
from tests.controlplane.node import (
    NODE_NAME,
    PAUSE_IMAGE,
    RealNodeCluster,
    build_node_images,
    image_problem,
    missing,
)
from tests.controlplane.objects import (
    JSON,
    KEYS,
    NAMESPACE,
    bound_node,
    create_nodes,
    create_pods,
    http_client,
    node,
    pod,
    watch_pods,
)

helm = pytest.importorskip("helm_python", reason="pip install -e '.[chart]'")

IMAGE = f"placement-extender:{__version__}"
SCHEDULER = "placement-scheduler"
GPU_NODES = {"gpu-a10g", "gpu-t4"}
# Nodes without a kubelet carry a taint, so that the chart's own pods (placed by the cluster's
# default scheduler) land on the real node; the test pods tolerate it.
NO_KUBELET = {"key": "e2e.example/no-kubelet", "value": "true", "effect": "NoSchedule"}
API_NODES = [
    {**n, "spec": {"taints": [NO_KUBELET]}}
    for n in (
        node("gpu-a10g", gpus=4, labels={KEYS.gpu_type: "A10G"}),
        node("gpu-t4", gpus=4, labels={KEYS.gpu_type: "T4"}),
        node("cpu-1"),
        node("cpu-2"),
    )
]
# What the test cluster lacks: the images (no registry) come from the node's containerd.
LOCAL_IMAGES: dict[str, Any] = {
    "image": {"repository": "placement-extender", "pullPolicy": "Never"},
    "scheduler": {"image": {"pullPolicy": "Never"}},
}
SERVER_SECRET = "pe-extender-tls"
INSTALLS: dict[str, dict[str, Any]] = {
    "default": {},
    "service-mtls": {"topology": "service", "tls": {"secretName": SERVER_SECRET}},
}


def kube_scheduler_version(assets: Assets) -> str:
    out = subprocess.run([assets.binary("kube-scheduler"), "--version"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    found = re.search(r"v\d+\.\d+\.\d+", out)
    assert found, out
    return found.group(0)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNodeCluster]:
    assets = Assets.from_env()
    lacks = [] if assets is None else missing(assets)
    if not lacks and (problem := image_problem(IMAGE, ROOT)):
        lacks.append(problem)
    if assets is None or lacks:
        what = "KUBEBUILDER_ASSETS" if assets is None else ", ".join(lacks)
        if os.environ.get("CI") == "true":
            pytest.fail(f"real node: missing {what}", pytrace=False)
        pytest.skip(f"real node: missing {what}")
    scheduler_image = f"registry.k8s.io/kube-scheduler:{kube_scheduler_version(assets)}"
    build_node_images(IMAGE, assets.directory / "kube-scheduler", scheduler_image)
    workdir = tmp_path_factory.mktemp("realnode")
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the cluster is taken down; a SIGKILL
    # leaves a record the next run undoes first (tests/controlplane/node.py).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    real = RealNodeCluster(assets, workdir, [IMAGE, scheduler_image, PAUSE_IMAGE])
    try:
        real.start()
        with real.plane.api_client() as client:
            core = CoreV1Api(client)
            create_nodes(core, API_NODES)
            # pods need their namespace's default ServiceAccount (kube-controller-manager's)
            assert real.proxy is not None
            real.proxy.wait(lambda: _has_default_account(core), 60, "default ServiceAccount")
        yield real
    finally:
        real.stop()
        signal.signal(signal.SIGTERM, previous)


def _has_default_account(core: CoreV1Api) -> bool:
    try:
        core.read_namespaced_service_account("default", NAMESPACE)
    except ApiException:
        return False
    return True


def server_secret(tmp_path: Path) -> JSON:
    """The extender's serving certificate for its Service's name (the user's tls.secretName)."""
    ca = trustme.CA()
    leaf = ca.issue_cert(f"pe-placement-extender.{EXTENDER_NAMESPACE}.svc")
    data = {
        "tls.crt": leaf.cert_chain_pems[0].bytes(),
        "tls.key": leaf.private_key_pem.bytes(),
        "ca.crt": ca.cert_pem.bytes(),
    }
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": SERVER_SECRET, "namespace": EXTENDER_NAMESPACE},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }  # fmt: skip


def a_pod(name: str, *, gpus: int = 0, on_real_node: bool = False, **annotations: str) -> JSON:
    obj = pod(name, scheduler=SCHEDULER, cpu="10m", memory="16Mi", gpus=gpus,
              annotations={getattr(KEYS, k): v for k, v in annotations.items()})  # fmt: skip
    (main,) = obj["spec"]["containers"]
    main["image"], main["imagePullPolicy"] = PAUSE_IMAGE, "Never"
    obj["spec"]["tolerations"] = [{**NO_KUBELET, "operator": "Equal"}]
    if on_real_node:
        obj["spec"]["nodeSelector"] = {"kubernetes.io/hostname": NODE_NAME}
    return obj


def release_objects(core: CoreV1Api) -> list[str]:
    """Everything labelled with the release, in every kind the chart makes."""
    found = []
    with http_client(core) as api:
        for path in ("/api/v1/pods", "/api/v1/services", "/api/v1/configmaps", "/api/v1/secrets",
                     "/api/v1/serviceaccounts", "/apis/apps/v1/deployments",
                     "/apis/apps/v1/replicasets", "/apis/policy/v1/poddisruptionbudgets",
                     "/apis/networking.k8s.io/v1/networkpolicies",
                     "/apis/rbac.authorization.k8s.io/v1/roles",
                     "/apis/rbac.authorization.k8s.io/v1/rolebindings",
                     "/apis/rbac.authorization.k8s.io/v1/clusterroles",
                     "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"):  # fmt: skip
            reply = api.get(path, params={"labelSelector": f"app.kubernetes.io/instance={RELEASE}"})
            reply.raise_for_status()
            kind = path.rsplit("/", 1)[1]
            found += [f"{kind}/{o['metadata']['name']}" for o in reply.json()["items"]]
    return found


def container_logs(core: CoreV1Api) -> str:
    """The last lines of every container of the release's pods (and of its previous run)."""
    out = []
    for p in core.list_namespaced_pod(EXTENDER_NAMESPACE).items:
        for c in p.spec.containers + (p.spec.init_containers or []):
            for previous in (False, True):
                with contextlib.suppress(ApiException):
                    text = core.read_namespaced_pod_log(p.metadata.name, EXTENDER_NAMESPACE,
                                                        container=c.name, previous=previous,
                                                        tail_lines=15)  # fmt: skip
                    out.append(f"--- {p.metadata.name}/{c.name} previous={previous}\n{text}")
    return "\n".join(out)


def ready(obj: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in obj.status.conditions or ())


@pytest.mark.parametrize("install", sorted(INSTALLS))
def test_helm_install_schedules_through_the_extender_and_uninstalls_clean(
    cluster: RealNodeCluster, install: str, tmp_path: Path
) -> None:
    values = {**INSTALLS[install]}
    for key, value in LOCAL_IMAGES.items():
        values[key] = {**values.get(key, {}), **value}
    kubeconfig = cluster.plane.admin_kubeconfig
    with (
        helm.Config(kubeconfig_path=kubeconfig, namespace=EXTENDER_NAMESPACE) as config,
        cluster.plane.api_client() as client,
    ):
        core = CoreV1Api(client)
        _ensure_namespace(core)
        if "tls" in values:
            core.create_namespaced_secret(EXTENDER_NAMESPACE, server_secret(tmp_path))
        try:
            _install_and_check(cluster, config, core, values)
        finally:
            core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0)
            config.uninstall(RELEASE, ignore_not_found=True, wait="watcher", timeout=120)
            # What the extender and kube-scheduler made at run time (not Helm's): the ledgers
            # and the leader-election Lease.
            leases = CoordinationV1Api(client)
            leases.delete_collection_namespaced_lease(
                EXTENDER_NAMESPACE, label_selector=KEYS.ledger_selector
            )
            with contextlib.suppress(ApiException):
                leases.delete_namespaced_lease(SCHEDULER, EXTENDER_NAMESPACE)
            if "tls" in values:
                core.delete_namespaced_secret(SERVER_SECRET, EXTENDER_NAMESPACE)
        # Helm deletes in the background: the garbage collector then removes the ReplicaSets
        # and their pods, and kubelet stops them.
        watch_pods(core, lambda pods: not pods, timeout=120, namespace=EXTENDER_NAMESPACE)
        assert release_objects(core) == [], "helm uninstall left objects behind"


def _ensure_namespace(core: CoreV1Api) -> None:
    try:
        core.create_namespace({"metadata": {"name": EXTENDER_NAMESPACE}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def _install_and_check(
    cluster: RealNodeCluster, config: Any, core: CoreV1Api, values: dict[str, Any]
) -> None:
    try:
        release = config.install(CHART, RELEASE, values, namespace=EXTENDER_NAMESPACE,
                                 wait="watcher", timeout=240)  # fmt: skip
    except helm.HelmError as exc:
        raise AssertionError(f"{exc}\n{container_logs(core)}") from exc
    status = release.get("status") or release.get("info", {}).get("status")  # summary or full
    assert status == "deployed", {k: v for k, v in release.items() if k != "manifest"}

    # The chart's pods: Ready through their rendered probes, each with its token and hardening.
    pods = core.list_namespaced_pod(EXTENDER_NAMESPACE).items
    assert pods and all(ready(p) for p in pods), [p.metadata.name for p in pods]
    for p in pods:
        assert p.spec.node_name == NODE_NAME and p.status.phase == "Running"
        statuses = (p.status.container_statuses or []) + (p.status.init_container_statuses or [])
        assert all(s.ready for s in statuses), [(s.name, s.ready) for s in statuses]
        for c in p.spec.containers + (p.spec.init_containers or []):
            assert c.security_context.read_only_root_filesystem is True
            assert c.security_context.run_as_user == 65532
            mounts = {m.mount_path for m in c.volume_mounts}
            assert "/var/run/secrets/kubernetes.io/serviceaccount" in mounts
    names = {c.name for p in pods for c in p.spec.containers + (p.spec.init_containers or [])}
    assert names == {"extender", "kube-scheduler"}

    if values.get("topology") == "service":
        assert cluster.proxy is not None
        # The scheduler reaches the extender by its Service's name: wait until the stand-in
        # proxy routes the Service to a ready extender pod.
        extender_ips = [p.status.pod_ip for p in pods if p.spec.containers[0].name == "extender"]
        cluster.proxy.wait(lambda: any(cluster.proxy.routes(ip) for ip in extender_ips), 30,
                           "route to the extender")  # fmt: skip

    wanted = [
        a_pod("gpu-a10g-0", gpus=1, gpu_types="A10G,T4"),
        a_pod("gpu-t4-0", gpus=1, gpu_types="T4"),
        a_pod("cpu-0"),
        a_pod("cpu-1"),
        a_pod("runs-0", on_real_node=True),
    ]
    create_pods(core, wanted)
    names = [o["metadata"]["name"] for o in wanted]

    def bound_and_real_ones_running(found: dict[str, JSON]) -> bool:
        if not all(n in found and bound_node(found[n]) for n in names):
            return False
        on_real = [found[n] for n in names if bound_node(found[n]) == NODE_NAME]
        return all((p.get("status") or {}).get("phase") == "Running" for p in on_real)

    placed = watch_pods(core, bound_and_real_ones_running, timeout=180)
    where = {n: bound_node(placed[n]) for n in names}
    assert where["gpu-a10g-0"] == "gpu-a10g" and where["gpu-t4-0"] == "gpu-t4", where
    assert where["runs-0"] == NODE_NAME
    assert not GPU_NODES & {where["cpu-0"], where["cpu-1"]}, where
    # Bound by the extender: it committed each node's placements to the node's ledger Lease.
    leases = CoordinationV1Api(core.api_client)
    for node_name in set(where.values()):
        leases.read_namespaced_lease(node_name, EXTENDER_NAMESPACE)

    # `helm test`: the hook pod reads /readyz through the Service.
    result = config.test(RELEASE, timeout=120, logs=True)
    assert "/readyz 200" in str(result.get("logs", "")), result
