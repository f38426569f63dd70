"""A real control plane on loopback: etcd + kube-apiserver, and kube-scheduler and extender
processes on demand. Binaries come from ``KUBEBUILDER_ASSETS`` (envtest's layout: one directory
holding etcd, kube-apiserver, kube-scheduler)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import urllib3
import yaml

from tests.controlplane.processes import Proc, free_port, http_ok, wait_until

# Test helpers that skip verification (readiness polls) should not warn on every request.
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

ASSETS_ENV = "KUBEBUILDER_ASSETS"
BINARIES = ("etcd", "kube-apiserver", "kube-scheduler")
ROOT = Path(__file__).resolve().parents[2]

ADMIN_TOKEN = "admin-token"
EXTENDER_TOKEN = "extender-token"
EXTENDER_NAMESPACE = "placement-system"
# The account the extender runs as in the chart's default topology: its pod's, the scheduler's.
# Only the chart's extender roles are bound to it here (tests.controlplane.chart.extender_rbac).
EXTENDER_SERVICE_ACCOUNT = "pe-placement-extender-scheduler"


@dataclass(frozen=True)
class Assets:
    """Where the control-plane binaries are."""

    directory: Path

    def binary(self, name: str) -> str:
        return str(self.directory / name)

    @classmethod
    def from_env(cls) -> Assets | None:
        """The assets named by ``KUBEBUILDER_ASSETS``, or None when it is unset."""
        value = os.environ.get(ASSETS_ENV)
        return cls(Path(value)) if value else None

    def missing(self) -> list[str]:
        return [b for b in BINARIES if not os.access(self.directory / b, os.X_OK)]


def write_kubeconfig(path: Path, server: str, token: str, ca_file: Path) -> Path:
    """A kubeconfig that reaches ``server`` with a bearer token, verifying its certificate
    against ``ca_file`` as a real cluster's kubeconfig does."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca_file)}}
        ],
        "users": [{"name": "e2e", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
        "current-context": "e2e",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Extender:
    """One extender replica serving on 127.0.0.1."""

    proc: Proc
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"


class ControlPlane:
    """etcd + kube-apiserver on free loopback ports; kube-scheduler and extender processes
    started on demand. ``stop()`` ends everything it started; logs stay in ``workdir/logs``.

    ``address``: where kube-apiserver listens and advertises itself (a real node's pods reach
    it there, tests/controlplane/node.py). ``controllers``: a kube-controller-manager will run,
    so the ServiceAccount admission plugin stays on (pods get service-account tokens)."""

    def __init__(
        self,
        assets: Assets,
        workdir: Path,
        *,
        etcd_on_tmpfs: bool = True,
        address: str = "127.0.0.1",
        controllers: bool = False,
    ) -> None:
        self.assets = assets
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        shm = Path("/dev/shm")
        self._etcd_dir = Path(
            tempfile.mkdtemp(prefix="etcd-", dir=shm if etcd_on_tmpfs and shm.is_dir() else None)
        )
        self.etcd_port, self.etcd_peer_port, self.port = free_port(), free_port(), free_port()
        self.address = address
        self.controllers = controllers
        self.url = f"https://{address}:{self.port}"
        self.admin_kubeconfig = workdir / "admin.kubeconfig"
        self.extender_kubeconfig = workdir / "extender.kubeconfig"
        self.etcd: Proc | None = None
        self.apiserver: Proc | None = None
        self.children: list[Proc] = []
        self._serial = 0

    # ---- etcd and kube-apiserver -------------------------------------------------------------

    def start(self) -> ControlPlane:
        self._write_credentials()
        self.etcd = self._spawn("etcd", [
            self.assets.binary("etcd"), "--data-dir", str(self._etcd_dir), "--name", "default",
            "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--listen-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-cluster", f"default=http://127.0.0.1:{self.etcd_peer_port}",
        ])  # fmt: skip
        self.start_apiserver()
        # kube-apiserver writes its self-signed certificate and CA (for 127.0.0.1) on first
        # start and reuses them on restart: clients verify it, as against a real cluster.
        ca = self.workdir / "apiserver-certs" / "apiserver.crt"
        write_kubeconfig(self.admin_kubeconfig, self.url, ADMIN_TOKEN, ca)
        write_kubeconfig(self.extender_kubeconfig, self.url, EXTENDER_TOKEN, ca)
        return self

    def start_apiserver(self) -> None:
        """Start (or restart) kube-apiserver on the same port, etcd and credentials."""
        d = self.workdir
        # No node lifecycle controller runs to lift the not-ready taint TaintNodesByCondition
        # puts on every new node; without a controller-manager, nobody would create service
        # accounts either.
        disabled = "TaintNodesByCondition"
        if not self.controllers:
            disabled += ",ServiceAccount"
        self.apiserver = self._spawn("kube-apiserver", [
            self.assets.binary("kube-apiserver"),
            "--etcd-servers", f"http://127.0.0.1:{self.etcd_port}",
            "--bind-address", self.address, "--advertise-address", self.address,
            "--secure-port", str(self.port),
            "--cert-dir", str(d / "apiserver-certs"),
            "--token-auth-file", str(d / "tokens.csv"),
            "--service-account-key-file", str(d / "sa.pub"),
            "--service-account-signing-key-file", str(d / "sa.key"),
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--service-cluster-ip-range", "10.96.0.0/24",
            "--authorization-mode", "RBAC",
            "--disable-admission-plugins", disabled,
            # a real node's name does not resolve here: reach kubelet (logs, exec) by its IP
            "--kubelet-preferred-address-types", "InternalIP",
        ])  # fmt: skip
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        wait_until(
            self.apiserver,
            lambda: http_ok(f"{self.url}/readyz", headers=auth),
            timeout=60,
            what="/readyz",
        )

    def kill_apiserver(self) -> None:
        """SIGKILL kube-apiserver, as a crash would."""
        assert self.apiserver is not None
        self.apiserver.kill()
        self.children.remove(self.apiserver)

    def _write_credentials(self) -> None:
        d = self.workdir
        subprocess.run(["openssl", "genrsa", "-out", str(d / "sa.key"), "2048"],
                       check=True, capture_output=True)  # fmt: skip
        subprocess.run(["openssl", "rsa", "-in", str(d / "sa.key"), "-pubout", "-out",
                        str(d / "sa.pub")], check=True, capture_output=True)  # fmt: skip
        extender_user = f"system:serviceaccount:{EXTENDER_NAMESPACE}:{EXTENDER_SERVICE_ACCOUNT}"
        (d / "tokens.csv").write_text(
            f"{ADMIN_TOKEN},admin,admin,system:masters\n"
            f'{EXTENDER_TOKEN},{extender_user},extender,"system:serviceaccounts"\n'
        )

    # ---- clients --------------------------------------------------------------------------

    def api_client(self, **configuration: Any) -> kubernetes.client.ApiClient:
        """An admin client of the official kubernetes library."""
        config = kubernetes.client.Configuration()
        config.connection_pool_maxsize = 32
        kubernetes.config.load_kube_config(
            config_file=str(self.admin_kubeconfig), client_configuration=config
        )
        for key, value in configuration.items():
            setattr(config, key, value)
        return kubernetes.client.ApiClient(config)

    # ---- schedulers and extenders ---------------------------------------------------------------

    def scheduler(
        self,
        config: dict[str, Any],
        name: str = "kube-scheduler",
        *,
        env: dict[str, str] | None = None,
        secure_port: int = 0,
        extra_args: Sequence[str] = (),
    ) -> Proc:
        """A kube-scheduler process running ``config`` (a KubeSchedulerConfiguration), with
        ``env`` added to its environment."""
        self._serial += 1
        path = self.workdir / f"{name}-{self._serial}.yaml"
        path.write_text(yaml.safe_dump(config))
        return self._spawn(name, [
            self.assets.binary("kube-scheduler"), "--config", str(path),
            "--secure-port", str(secure_port), "--v", "2", *extra_args,
        ], env={**os.environ, **(env or {})})  # fmt: skip

    def extender(
        self,
        name: str = "extender",
        env: dict[str, str] | None = None,
        *,
        timeout: float = 60,
        port: int | None = None,
        kubeconfig: Path | None = None,
    ) -> Extender:
        """An extender replica in live mode (RBAC of the chart's roles, see
        ``objects.apply_rbac``), returned once its /readyz answers 200. With TLS in ``env`` it
        is polled on a plain probe port, as in the chart (the extender port may require a client
        certificate). ``port``: a given one (a replica started again where its scheduler calls
        it); ``kubeconfig``: another way to the API server (e.g. through a proxy)."""
        port = port or free_port()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PLACEMENT_EXTENDER_")}
        # as the chart configures it: ledger Leases in the release's namespace
        environ["PLACEMENT_EXTENDER_KUBE__LEDGER_NAMESPACE"] = EXTENDER_NAMESPACE
        environ.update(env or {})
        tls = "PLACEMENT_EXTENDER_SERVER__TLS_CERT_FILE" in environ
        ready_port = port
        if tls:
            ready_port = free_port()
            environ["PLACEMENT_EXTENDER_SERVER__PROBE_PORT"] = str(ready_port)
        proc = self._spawn(name, [
            sys.executable, "-m", "app", "serve",
            "--kubeconfig", str(kubeconfig or self.extender_kubeconfig),
            "--host", "127.0.0.1", "--port", str(port),
        ], env=environ)  # fmt: skip
        wait_until(proc, lambda: http_ok(f"http://127.0.0.1:{ready_port}/readyz"),
                   timeout=timeout, what="/readyz")  # fmt: skip
        return Extender(proc, port, "https" if tls else "http")

    def process(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        """Start another component (its log beside the others'); ``stop()`` ends it."""
        return self._spawn(name, argv, env)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        self._serial += 1
        log = self.logs / f"{self._serial:03d}-{name}.log"
        proc = Proc(name, argv, log, env=env if env is not None else dict(os.environ))
        self.children.append(proc)
        return proc

    def stop_child(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.children:
            self.children.remove(proc)

    def stop(self) -> None:
        """Stop everything, newest first; etcd's data directory goes too."""
        for proc in reversed(self.children):
            proc.stop(grace=5)
        self.children.clear()
        shutil.rmtree(self._etcd_dir, ignore_errors=True)
