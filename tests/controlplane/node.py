"""A one-node Kubernetes cluster that runs real pods, for `helm install` tests
(tests/e2e/test_install.py): the control plane of :mod:`tests.controlplane.cluster` listening on
a bridge network this module makes, kube-controller-manager, a default kube-scheduler, and a real
node — kubelet on Debian's containerd, pods on a CNI bridge.

What a cluster would also have and this one plays itself (there is no kube-proxy and no cluster
DNS here): :class:`ServiceProxy` maps every Service's ClusterIP:port to one ready endpoint with
an iptables DNAT rule (the `kubernetes` Service included, so pods reach kube-apiserver with their
in-cluster configuration) and serves the Service names from a dnsmasq on the bridge's address,
which kubelet gives pods as their DNS server.

Needs root, containerd, runc, the CNI plugins, iptables, dnsmasq, and kubelet and
kube-controller-manager beside the other binaries (:func:`missing`). Everything it changes is
undone by :meth:`RealNodeCluster.stop`, also after a failure: processes, pods' network
namespaces, the bridge, its iptables chains (and the ones kubelet adds), the kernel flags kubelet
sets, cgroups kubelet made, and the state directories (all under the test's own directories).
A run that was killed before it could undo anything leaves a record (``STATE``) that the next run
uses to undo it first; a lock keeps two runs on one machine from meeting.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import CoreV1Api, DiscoveryV1Api

from tests.controlplane.cluster import Assets, ControlPlane
from tests.controlplane.processes import Proc, free_port, wait_until

BRIDGE = "pe-e2e0"
SUBNET = "10.244.0.0/24"
SERVICE_RANGE = "10.96.0.0/24"  # kube-apiserver's --service-cluster-ip-range
GATEWAY = "10.244.0.1"  # the host on the bridge: kube-apiserver and the DNS server listen here
NODE_NAME = "pe-node"
CLUSTER_DOMAIN = "cluster.local"
PAUSE_IMAGE = "docker.io/library/pe-pause:e2e"
NODE_BINARIES = ("kubelet", "kube-controller-manager")
COMMANDS = ("containerd", "ctr", "runc", "iptables", "ip", "dnsmasq", "docker")
CNI_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
# kubelet sets these on start (README of the shared binaries); restored when it stops.
KERNEL_FLAGS = ("kernel/panic", "kernel/panic_on_oops", "vm/overcommit_memory")
LOCK = Path("/run/pe-e2e.lock")
STATE = Path("/run/pe-e2e.json")  # what a killed run left: its processes and the kernel flags
NETNS_DIR = Path("/var/run/netns")
CONTAINER_LOGS = Path("/var/log/containers")
# iptables chains of this module (kubelet's own are found by name, see _KubeletChains)
CHAINS = {
    # table: [(chain, built-in chain that jumps to it)]
    "nat": [("PE-E2E-SERVICES", "PREROUTING"), ("PE-E2E-SERVICES", "OUTPUT"),
            ("PE-E2E-HAIRPIN", "POSTROUTING")],
    "filter": [("PE-E2E-FORWARD", "FORWARD")],
}  # fmt: skip


def missing(assets: Assets) -> list[str]:
    """What this machine lacks for a real node, in words (empty when nothing)."""
    lacks = []
    if os.geteuid() != 0:
        lacks.append("root")
    lacks += [f"{c} (command)" for c in COMMANDS if shutil.which(c) is None]
    lacks += [f"{CNI_DIR}/{p}" for p in CNI_PLUGINS if not (CNI_DIR / p).exists()]
    lacks += [f"{assets.directory}/{b}" for b in NODE_BINARIES if not os.access(
        assets.directory / b, os.X_OK)]  # fmt: skip
    return lacks


def run(*argv: str, check: bool = True, stdin: bytes | None = None) -> str:
    """Run a command to completion; its stdout."""
    done = subprocess.run(argv, input=stdin, capture_output=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.decode(errors='replace')[-2000:]}")
    return done.stdout.decode(errors="replace")


def image_problem(image: str, source: Path) -> str | None:
    """Why the docker image ``image`` cannot be used (missing, or built from other sources than
    ``source``, the repository: the label `make image` sets), or None."""
    found = subprocess.run(["docker", "image", "inspect", "-f", "{{json .Config.Labels}}", image],
                           capture_output=True, text=True)  # fmt: skip
    if found.returncode != 0:
        return f"container image {image} (run make image)"
    built_from = (json.loads(found.stdout) or {}).get("io.placement-extender.source-sha256")
    sources = sorted((source / "app").rglob("*.py"), key=lambda p: str(p.relative_to(source)))
    files = [source / "pyproject.toml", *sources]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()
    if built_from != digest:
        return f"container image {image} built from the current source (run make image)"
    return None


# ---- images ------------------------------------------------------------------------------------


def build_node_images(extender_image: str, kube_scheduler: Path, scheduler_image: str) -> None:
    """The pod sandbox image and a kube-scheduler image, made on the extender image's base
    (its label org.opencontainers.image.base.name) with docker, like the extender's."""
    labels = json.loads(run("docker", "image", "inspect", "-f", "{{json .Config.Labels}}",
                            extender_image))  # fmt: skip
    base = labels["org.opencontainers.image.base.name"]
    with tempfile.TemporaryDirectory() as context:
        Path(context, "Dockerfile").write_text(
            f'FROM {base}\nUSER 65532:65532\nENTRYPOINT ["sleep", "infinity"]\n'
        )
        run("docker", "build", "--network=none", "-q", "-t", PAUSE_IMAGE, context)
        shutil.copy(kube_scheduler, Path(context, "kube-scheduler"))
        Path(context, "Dockerfile").write_text(
            f"FROM {base}\nCOPY kube-scheduler /usr/local/bin/kube-scheduler\n"
            'USER 65532:65532\nENTRYPOINT ["/usr/local/bin/kube-scheduler"]\n'
        )
        run("docker", "build", "--network=none", "-q", "-t", scheduler_image, context)


# ---- the real node -----------------------------------------------------------------------------


class RealNodeCluster:
    """Start with :meth:`start`, end with :meth:`stop` (which undoes every step that ran)."""

    def __init__(self, assets: Assets, workdir: Path, images: list[str]) -> None:
        self.assets = assets
        self.workdir = workdir
        self.images = images
        # Unix sockets need a short path; /run is the host's runtime directory.
        self.rundir = Path(tempfile.mkdtemp(prefix="pe-e2e-", dir="/run"))
        self.plane = ControlPlane(assets, workdir, address=GATEWAY, controllers=True)
        self.socket = self.rundir / "containerd.sock"
        self._undo = contextlib.ExitStack()
        self.proxy: ServiceProxy | None = None

    def start(self) -> RealNodeCluster:
        lock = LOCK.open("w")
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run on this machine finishes first
        self._undo.callback(lock.close)
        try:
            _recover()
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._undo.close()

    def _start(self) -> None:
        undo = self._undo
        undo.callback(STATE.unlink, missing_ok=True)
        undo.callback(shutil.rmtree, self.rundir, ignore_errors=True)
        flags = {flag: Path("/proc/sys", flag).read_text() for flag in KERNEL_FLAGS}
        undo.callback(_restore, flags)
        self._flags = flags
        self._record()
        netns_before = set(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else set()
        undo.callback(_remove_new_netns, netns_before)
        logs_before = set(os.listdir(CONTAINER_LOGS)) if CONTAINER_LOGS.is_dir() else set()
        undo.callback(_remove_new_entries, CONTAINER_LOGS, logs_before)
        cgroups_before = _kubepods_cgroups()
        undo.callback(_remove_new_cgroups, cgroups_before)
        kubelet_chains = _KubeletChains()
        undo.callback(kubelet_chains.remove_new)

        self._network()
        undo.callback(self.plane.stop)
        for step in (self.plane.start, self._containerd, self._dnsmasq, self._service_proxy,
                     self._controller_manager, self._default_scheduler, self._kubelet):  # fmt: skip
            try:
                step()
            finally:
                self._record()

    def _record(self) -> None:
        """Write down what a killed run would leave (see :func:`_recover`)."""
        processes = [[p.pid, p.argv] for p in self.plane.children if p.alive()]
        etcd = str(self.plane._etcd_dir)
        STATE.write_text(json.dumps({"flags": self._flags, "processes": processes,
                                     "etcd": etcd, "rundir": str(self.rundir)}))  # fmt: skip

    # ---- network ---------------------------------------------------------------------------

    def _network(self) -> None:
        """The bridge (before any pod: kube-apiserver and dnsmasq listen on its address) and
        this module's iptables chains: pod-to-pod forwarding on the bridge (this machine's
        FORWARD policy may be DROP, and bridged packets pass through it), Service DNAT, and
        masquerading of a pod's call to a Service served by a pod on the same bridge."""
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        self._undo.callback(run, "ip", "link", "delete", BRIDGE, check=False)
        run("ip", "addr", "add", f"{GATEWAY}/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        for table, links in CHAINS.items():
            for chain in dict.fromkeys(c for c, _ in links):
                run("iptables", "-t", table, "-N", chain)
                self._undo.callback(_delete_chain, table, chain)
            for chain, builtin in links:
                run("iptables", "-t", table, "-I", builtin, "-j", chain)
                self._undo.callback(run, "iptables", "-t", table, "-D", builtin, "-j", chain,
                                    check=False)  # fmt: skip
        run("iptables", "-t", "filter", "-A", "PE-E2E-FORWARD", "-i", BRIDGE, "-o", BRIDGE,
            "-j", "ACCEPT")  # fmt: skip
        run("iptables", "-t", "nat", "-A", "PE-E2E-HAIRPIN", "-s", SUBNET, "-d", SUBNET,
            "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE")  # fmt: skip
        cni = self.workdir / "cni"
        cni.mkdir()
        (cni / "10-pe-e2e.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0",
            "name": "pe-e2e",
            "plugins": [{
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": SUBNET, "gateway": GATEWAY}]],
                         # Service IPs only, through the host (DNAT): pods reach nothing else
                         "routes": [{"dst": SERVICE_RANGE}],
                         "dataDir": str(self.workdir / "cni-ipam")},
            }],
        }))  # fmt: skip

    # ---- containerd ------------------------------------------------------------------------

    def _containerd(self) -> None:
        root = self.workdir / "containerd"
        config = self.rundir / "containerd.toml"
        config.write_text(f"""version = 2
root = "{root}/root"
state = "{self.rundir}/state"
[grpc]
  address = "{self.socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # these machines refuse a negative oom_score_adj (runc: "can't get final child's PID")
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_DIR}"
    conf_dir = "{self.workdir / "cni"}"
""")
        proc = self.plane.process("containerd", ["containerd", "--config", str(config)])
        self._undo.callback(self._stop_containerd, proc)
        wait_until(proc, self.socket.exists, timeout=30, what="its socket")
        ctr = ("ctr", "--address", str(self.socket), "--namespace", "k8s.io")
        wait_until(proc, lambda: subprocess.run([*ctr, "version"], capture_output=True)
                   .returncode == 0, timeout=30, what="ctr version")  # fmt: skip
        for image in self.images:  # docker's archive straight into containerd
            saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            assert saved.stdout is not None
            imported = subprocess.run([*ctr, "images", "import", "-"], stdin=saved.stdout,
                                      capture_output=True, check=False)  # fmt: skip
            if saved.wait() != 0 or imported.returncode != 0:
                raise RuntimeError(f"loading {image}: {imported.stderr.decode()[-1000:]}")

    def _stop_containerd(self, proc: Proc) -> None:
        """Kill what is still running (after a failure kubelet may not have stopped its pods),
        then containerd itself."""
        ctr = ("ctr", "--address", str(self.socket), "--namespace", "k8s.io")
        if self.socket.exists():
            for task in run(*ctr, "tasks", "list", "-q", check=False).split():
                run(*ctr, "tasks", "kill", "-s", "SIGKILL", task, check=False)
                run(*ctr, "tasks", "delete", "-f", task, check=False)
        self.plane.stop_child(proc)

    # ---- DNS, controllers, scheduler, kubelet ----------------------------------------------------

    def _service_proxy(self) -> None:
        self.proxy = ServiceProxy(self.plane, self.workdir / "hosts", self._dns)
        self.proxy.start()
        self._undo.callback(self.proxy.stop)

    def _dnsmasq(self) -> None:
        hosts = self.workdir / "hosts"
        hosts.write_text("")
        proc = self.plane.process("dnsmasq", [
            "dnsmasq", "--keep-in-foreground", "--log-facility=-", "--conf-file=/dev/null",
            "--user=root", "--pid-file=", "--no-resolv", "--no-hosts", "--bind-interfaces",
            f"--listen-address={GATEWAY}", f"--addn-hosts={hosts}",
            f"--local=/{CLUSTER_DOMAIN}/",
        ])  # fmt: skip
        self._undo.callback(self.plane.stop_child, proc)
        self._dns = proc

    def _controller_manager(self) -> None:
        kubeconfig = str(self.plane.admin_kubeconfig)
        proc = self.plane.process("kube-controller-manager", [
            self.assets.binary("kube-controller-manager"), "--kubeconfig", kubeconfig,
            "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
            "--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port",
            str(free_port()), "--service-account-private-key-file", str(self.workdir / "sa.key"),
            "--root-ca-file", str(self.workdir / "apiserver-certs" / "apiserver.crt"),
            "--controllers=*,-nodeipam,-nodelifecycle,-route,-cloud-node-lifecycle,"
            "-service-lb-controller",
        ])  # fmt: skip
        self._undo.callback(self.plane.stop_child, proc)

    def _default_scheduler(self) -> None:
        """The cluster's own kube-scheduler (profile default-scheduler): it places the chart's
        pods, as in any cluster."""
        proc = self.plane.scheduler({
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "leaderElection": {"leaderElect": False},
            "clientConnection": {"kubeconfig": str(self.plane.admin_kubeconfig)},
        }, name="default-scheduler")  # fmt: skip
        self._undo.callback(self.plane.stop_child, proc)

    def _kubelet(self) -> None:
        root = self.workdir / "kubelet"
        root.mkdir()
        resolv = self.workdir / "resolv.conf"
        resolv.write_text("")  # pods get the cluster DNS only
        config = self.workdir / "kubelet.yaml"
        config.write_text(yaml.safe_dump({
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": GATEWAY, "port": free_port(), "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": free_port(),
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,  # these machines run cgroup v1
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "enforceNodeAllocatable": [],
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "clusterDNS": [GATEWAY], "clusterDomain": CLUSTER_DOMAIN, "resolvConf": str(resolv),
            "podLogsDir": str(self.workdir / "pod-logs"),
            # never evict or garbage-collect the images loaded above
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%"},
        }))  # fmt: skip
        proc = self.plane.process("kubelet", [
            self.assets.binary("kubelet"), "--config", str(config),
            "--kubeconfig", str(self.plane.admin_kubeconfig), "--hostname-override", NODE_NAME,
            "--node-ip", GATEWAY, "--root-dir", str(root),
        ])  # fmt: skip
        self._undo.callback(self._stop_kubelet, proc)
        with self.plane.api_client() as client:
            core = CoreV1Api(client)
            wait_until(proc, lambda: _node_ready(core), timeout=120, what=f"node {NODE_NAME} Ready")

    def _stop_kubelet(self, proc: Proc) -> None:
        """Let kubelet stop every pod it runs (so their sandboxes and network namespaces are
        torn down properly), then stop it; a failure on the way leaves the rest to
        :meth:`_stop_containerd` and the clean-ups registered in :meth:`_start`."""
        with contextlib.suppress(Exception), self.plane.api_client() as client:
            core = CoreV1Api(client)
            on_node = f"spec.nodeName={NODE_NAME}"
            for pod in core.list_pod_for_all_namespaces(field_selector=on_node).items:
                core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace,
                                           grace_period_seconds=0)  # fmt: skip
            deadline = time.monotonic() + 60
            ctr = ("ctr", "--address", str(self.socket), "--namespace", "k8s.io")
            while run(*ctr, "tasks", "list", "-q", check=False).split():
                if time.monotonic() > deadline or not proc.alive():
                    break
                time.sleep(0.5)
        self.plane.stop_child(proc)


def _node_ready(core: CoreV1Api) -> bool:
    with contextlib.suppress(Exception):
        node = core.read_node(NODE_NAME)
        return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or ())
    return False


# ---- what kube-proxy and cluster DNS would do ------------------------------------------------


class ServiceProxy:
    """Every half second: each Service's ClusterIP:port → one ready endpoint (iptables DNAT in
    chain PE-E2E-SERVICES, rewritten atomically when it changes), and each Service's name
    ``<name>.<namespace>.svc.cluster.local`` → its ClusterIP (dnsmasq's hosts file, re-read on
    SIGHUP)."""

    def __init__(self, plane: ControlPlane, hosts: Path, dns: Proc) -> None:
        self.plane = plane
        self.hosts = hosts
        self.dns = dns
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="service-proxy", daemon=True)
        self._rules: list[str] = []
        self._names: list[str] = []
        self.synced = threading.Condition()
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def routes(self, address: str) -> bool:
        """Whether the DNAT rules send something to ``address`` (a pod's IP) right now."""
        return any(f"--to-destination {address}:" in rule for rule in self._rules)

    def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        with self.synced:
            if not self.synced.wait_for(lambda: condition() or self.error is not None, timeout):
                raise TimeoutError(f"service proxy: no {what} after {timeout:g}s")
        if self.error is not None:
            raise RuntimeError("service proxy failed") from self.error

    def _loop(self) -> None:
        with self.plane.api_client() as client:
            core, discovery = CoreV1Api(client), DiscoveryV1Api(client)
            while not self._stop.is_set():
                try:
                    self._sync(core, discovery)
                except Exception as exc:  # reported to whoever waits; the next round retries
                    self.error = exc
                self._stop.wait(0.5)

    def _sync(self, core: CoreV1Api, discovery: DiscoveryV1Api) -> None:
        endpoints: dict[tuple[str, str], list[Any]] = {}
        for piece in discovery.list_endpoint_slice_for_all_namespaces().items:
            service = (piece.metadata.labels or {}).get("kubernetes.io/service-name")
            if service:
                endpoints.setdefault((piece.metadata.namespace, service), []).append(piece)
        rules, names = [], []
        for svc in core.list_service_for_all_namespaces().items:
            ip, ns, name = svc.spec.cluster_ip, svc.metadata.namespace, svc.metadata.name
            if not ip or ip == "None":
                continue
            names.append(f"{ip} {name}.{ns}.svc.{CLUSTER_DOMAIN}")
            for port in svc.spec.ports or ():
                target = _ready_endpoint(endpoints.get((ns, name), []), port.name)
                if target is not None:
                    rules.append(f"-A PE-E2E-SERVICES -d {ip}/32 -p tcp --dport {port.port} "
                                 f"-j DNAT --to-destination {target[0]}:{target[1]}")  # fmt: skip
        if rules != self._rules:
            table = "*nat\n:PE-E2E-SERVICES - [0:0]\n" + "".join(r + "\n" for r in rules)
            run("iptables-restore", "--noflush", stdin=(table + "COMMIT\n").encode())
        if names != self._names:
            self.hosts.write_text("".join(n + "\n" for n in names))
            os.kill(self.dns.pid, signal.SIGHUP)
        with self.synced:
            self._rules, self._names, self.error = rules, names, None
            self.synced.notify_all()


def _ready_endpoint(slices: list[Any], port_name: str | None) -> tuple[str, int] | None:
    for piece in slices:
        numbers = [p.port for p in piece.ports or () if p.name == port_name]
        for endpoint in piece.endpoints or ():
            if numbers and (endpoint.conditions is None or endpoint.conditions.ready):
                return endpoint.addresses[0], numbers[0]
    return None


# ---- undoing ----------------------------------------------------------------------------------


def _recover() -> None:
    """Undo what a killed run left behind (its record, ``STATE``): its processes (those still
    running the same command line), the bridge and chains, kubelet's, the kernel flags."""
    if not STATE.exists():
        return
    state = json.loads(STATE.read_text())
    for pid, argv in reversed(state["processes"]):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1] == [
                a.encode() for a in argv
            ]:
                os.kill(pid, signal.SIGKILL)
    for table, links in CHAINS.items():
        for chain, builtin in links:
            run("iptables", "-t", table, "-D", builtin, "-j", chain, check=False)
            _delete_chain(table, chain)
    run("ip", "link", "delete", BRIDGE, check=False)
    _KubeletChains.remove_all()
    _remove_new_cgroups(set())
    _restore(state["flags"])
    for leftover in (state["etcd"], state["rundir"]):
        shutil.rmtree(leftover, ignore_errors=True)
    STATE.unlink()


def _restore(flags: dict[str, str]) -> None:
    for flag, value in flags.items():
        with contextlib.suppress(OSError):
            Path("/proc/sys", flag).write_text(value)


def _delete_chain(table: str, chain: str) -> None:
    run("iptables", "-t", table, "-F", chain, check=False)
    run("iptables", "-t", table, "-X", chain, check=False)


class _KubeletChains:
    """kubelet adds KUBE-* chains (e.g. KUBE-KUBELET-CANARY) to iptables and ip6tables;
    :meth:`remove_new` removes those that were not there before, with the rules jumping to
    them."""

    TABLES = ("filter", "nat", "mangle")

    def __init__(self) -> None:
        self.before = {(tool, table): self._chains(tool, table)
                       for tool in ("iptables", "ip6tables") for table in self.TABLES}  # fmt: skip

    @staticmethod
    def _chains(tool: str, table: str) -> set[str]:
        if shutil.which(tool) is None:
            return set()
        listing = run(tool, "-t", table, "-S", check=False).splitlines()
        return {line.split()[1] for line in listing if line.startswith("-N ")}

    @classmethod
    def remove_all(cls) -> None:
        chains = cls.__new__(cls)
        chains.before = {(tool, table): set() for tool in ("iptables", "ip6tables")
                         for table in cls.TABLES}  # fmt: skip
        chains.remove_new()

    def remove_new(self) -> None:
        for (tool, table), before in self.before.items():
            new = {c for c in self._chains(tool, table) - before if c.startswith("KUBE-")}
            for line in run(tool, "-t", table, "-S", check=False).splitlines():
                parts = line.split()
                if parts[:1] == ["-A"] and "-j" in parts and parts[parts.index("-j") + 1] in new:
                    run(tool, "-t", table, "-D", *parts[1:], check=False)
            for chain in new:
                run(tool, "-t", table, "-F", chain, check=False)
            for chain in new:
                run(tool, "-t", table, "-X", chain, check=False)


def _kubepods_cgroups() -> set[Path]:
    return set(Path("/sys/fs/cgroup").glob("*/kubepods*"))


def _remove_new_cgroups(before: set[Path]) -> None:
    """Empty cgroup directories kubelet made (cgroupfs driver), deepest first."""
    for top in _kubepods_cgroups() - before:
        for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                path.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def _remove_new_netns(before: set[str]) -> None:
    if NETNS_DIR.is_dir():
        for name in set(os.listdir(NETNS_DIR)) - before:
            run("ip", "netns", "delete", name, check=False)


def _remove_new_entries(directory: Path, before: set[str]) -> None:
    if directory.is_dir():
        for name in set(os.listdir(directory)) - before:
            with contextlib.suppress(OSError):
                (directory / name).unlink()
