"""End-to-end tests through a real kube-scheduler and kube-apiserver (tests/controlplane).

They need ``KUBEBUILDER_ASSETS`` (etcd, kube-apiserver, kube-scheduler). Without it they skip
with one line, except in CI (``CI=true``), where missing binaries fail the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import CoreV1Api, RbacAuthorizationV1Api

from tests.controlplane.chart import extender_rbac, scheduler_config
from tests.controlplane.cluster import ASSETS_ENV, Assets, ControlPlane, Extender
from tests.controlplane.objects import JSON, apply_rbac, delete_all
from tests.controlplane.processes import Proc

HERE = Path(__file__).parent
ASSETS = Assets.from_env()
SKIP_REASON = (
    f"e2e: {ASSETS_ENV} is not set — the real control-plane tests need etcd, kube-apiserver and "
    "kube-scheduler (README: Testing against a real control plane)"
)
_failed: list[str] = []


def pytest_report_header() -> str | None:
    return SKIP_REASON if ASSETS is None else f"e2e: control plane from {ASSETS.directory}"


def skip_without_assets(items: list[pytest.Item], folder: Path) -> None:
    """Without the binaries, the tests below ``folder`` skip with one line (under ``CI=true``
    they run, and fail)."""
    if ASSETS is not None or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if folder in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    skip_without_assets(items, HERE)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        _failed.append(item.nodeid)
    return report


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver for the whole session, with the chart's extender RBAC applied.
    Component logs are kept (and their folder printed) when a test failed."""
    if ASSETS is None:
        pytest.fail(f"CI=true but {ASSETS_ENV} is not set", pytrace=False)
    if missing := ASSETS.missing():
        pytest.fail(f"{ASSETS_ENV}={ASSETS.directory} lacks {', '.join(missing)}", pytrace=False)
    workdir = tmp_path_factory.mktemp("controlplane")
    plane = ControlPlane(ASSETS, workdir).start()
    try:
        with plane.api_client() as client:
            apply_rbac(CoreV1Api(client), RbacAuthorizationV1Api(client), extender_rbac())
        yield plane
    finally:
        plane.stop()
        if _failed:
            print(f"\ncontrol-plane component logs kept in {plane.logs}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


class Scenario:
    """One test's cluster: its nodes and pods, extender replicas and schedulers, all removed
    when the test ends."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.client = plane.api_client()
        self.core = CoreV1Api(self.client)
        self._procs: list[Proc] = []

    def extender(
        self, env: dict[str, str] | None = None, name: str = "extender", **options: Any
    ) -> Extender:
        """A replica (``options``: see ``ControlPlane.extender``), stopped with the test."""
        replica = self.plane.extender(name, env, **options)
        self._procs.append(replica.proc)
        return replica

    def scheduler(
        self,
        extender: Extender | str | None,
        *,
        name: str = "placement-scheduler",
        values: dict[str, Any] | None = None,
        edit: Callable[[JSON], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> Proc:
        """A kube-scheduler with the chart's profile calling ``extender`` (a replica, or a URL);
        with None, a plain
        kube-scheduler (no extender) serving the profile ``name``. ``edit`` may adjust the
        configuration before it starts (e.g. point mounted paths at local files); ``env`` is
        added to its environment."""
        kubeconfig = str(self.plane.admin_kubeconfig)
        if extender is None:
            config: JSON = {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "leaderElection": {"leaderElect": False},
                "clientConnection": {"kubeconfig": kubeconfig, "qps": 5000, "burst": 5000},
                "profiles": [{"schedulerName": name}],
            }
        else:
            url = extender if isinstance(extender, str) else extender.url
            config = scheduler_config(extender_url=url, kubeconfig=kubeconfig,
                                      scheduler_name=name, values=values)  # fmt: skip
        if edit is not None:
            edit(config)
        proc = self.plane.scheduler(config, name=name, env=env)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self._procs):
            self.plane.stop_child(proc)
        delete_all(self.core)
        self.client.close()


@pytest.fixture
def scenario(control_plane: ControlPlane) -> Iterator[Scenario]:
    s = Scenario(control_plane)
    try:
        yield s
    finally:
        s.close()
