"""``make bench-cluster``: a real kube-scheduler's throughput with the extender, scheduler_perf
style, on a real kube-apiserver + etcd (``KUBEBUILDER_ASSETS``; tests/controlplane).

Per size (nodes / pods), the nodes are created once; then, per round, each set-up runs in
turn on fresh pending pods (the order rotates each round):

* ``floor-bind`` (the headline floor): ``floor`` plus a second Go extender that only binds
  (``bench/floorbind``: decode the ExtenderBindingArgs, POST the Binding): the cheapest extender
  with a bind verb, which an extender promising zero over-commit needs; built with
  ``go build`` on first use, so it needs Go;
* ``floor`` (a reference): kube-scheduler with the do-nothing Go extender ``go-extender-floor``
  (pass-through filter/prioritize, written like the Go peers); kube-scheduler POSTs the Binding;
* ``ours``: kube-scheduler with the chart's profile calling one extender replica
  (filter + prioritize + CAS bind).

Set-ups run only when named in ``--setups``: ``none`` (kube-scheduler without an extender),
``ours-nobind`` (the profile without ``bindVerb``: kube-scheduler binds), ``ours-tls`` (the
profile over the chart's mutual TLS: the extender's HTTP/2 server), ``ours-tls-h1`` (the same
server offering HTTP/1.1 only, ``server.http2: false``), ``ours-nginx`` (the mutual TLS and
HTTP/2 terminated by Debian's nginx in front of the plain-HTTP extender, keep-alive HTTP/1.1 on
loopback: the sidecar design, one nginx process) and ``ours-noahead`` (no reserving ahead: every
bind writes its reservation).

Pod mixes (``--mixes``), each on its own fresh pods: ``shared`` (pods of 100m / 128Mi share 50
container IDs, so a workload's next pod usually lands where its last one did), ``unique`` (every
pod its own container ID: nothing to reserve ahead for a named pod; the profile's binpack barely
tells 100m pods apart on 32-core nodes, so kube-scheduler's own scoring spreads them) and, run
only when named, ``packed`` (every pod its own container ID, 4 CPUs / 16Gi, eight to a node
at most: still spread, the profile's binpack moves a 4-CPU pod's score by half a point).

pods/s counts from the first bind to the last, seen by a watch. CPU per pod is each process's
user+system time over the run divided by the pods; connections per pod counts the TCP
connections the machine accepted over the run (kube-scheduler's to the extender, mostly); Lease
writes per pod counts the Lease creates and patches kube-apiserver served over the run. The
ratio that matters is ours ÷ floor-bind, in the same run.

``--profile DIR`` also takes CPU profiles over each run of the named set-ups: kube-apiserver's
and kube-scheduler's pprof, py-spy for the extender (``bench/profiles.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import trustme
from kubernetes.client import (
    CoordinationV1Api,
    CoreV1Api,
    RbacAuthorizationV1Api,
    V1Namespace,
    V1ObjectMeta,
)
from prometheus_client.parser import text_string_to_metric_families

from bench.bind_watch import BindWatch
from bench.common import machine, markdown_table
from bench.profiles import GoProfile, PySpy
from tests.controlplane.chart import (
    TLS_VALUES,
    chart_client_certificate,
    extender_rbac,
    scheduler_config,
    tls_files,
)
from tests.controlplane.cluster import (
    ADMIN_TOKEN,
    EXTENDER_NAMESPACE,
    EXTENDER_TOKEN,
    Assets,
    ControlPlane,
)
from tests.controlplane.objects import (
    KEYS,
    apply_rbac,
    create_nodes,
    create_pods,
    node,
    pod,
)
from tests.controlplane.processes import Proc, free_port, wait_until

FLOOR_BIND = "floor-bind"  # floor + a Go extender that only binds (POSTs the Binding)
HEADLINE_FLOOR = FLOOR_BIND
REFERENCE_FLOOR = "floor"
SETUPS = (REFERENCE_FLOOR, FLOOR_BIND, "ours")  # run by default
NOBIND = "ours-nobind"  # filter + prioritize only; kube-scheduler binds (not a product set-up)
TLS = "ours-tls"  # ours over the chart's mutual TLS (tls.enabled): HTTP/2 and HTTP/1.1
TLS_H1 = "ours-tls-h1"  # ours over the chart's mutual TLS, HTTP/1.1 only (server.http2: false)
NGINX = "ours-nginx"  # the chart's mutual TLS terminated by nginx in front of plain-HTTP ours
NOAHEAD = "ours-noahead"  # ours with bind.reserve_ahead = 0: every bind writes its reservation
DIAGNOSTICS = ("none", NOBIND, TLS, TLS_H1, NGINX, NOAHEAD)
ALL_SETUPS = (*SETUPS, *DIAGNOSTICS)


@dataclass(frozen=True)
class Mix:
    """A pod mix: how many container IDs the pods share (0: every pod its own), and each
    pod's requests."""

    container_ids: int
    cpu: str = "100m"
    memory: str = "128Mi"


MIXES = {"shared": Mix(50), "unique": Mix(0), "packed": Mix(0, cpu="4", memory="16Gi")}
DEFAULT_MIXES = ("shared", "unique")
FLOOR_BIND_SOURCE = Path(__file__).resolve().parent / "floorbind"
NAMESPACE = "bench"
LEASE_WRITES = ("PATCH", "POST", "CREATE")
"""Verbs of a ledger write (kube-apiserver's own identity Lease is renewed with PUT)."""
RESULTS = Path(__file__).resolve().parents[1] / "loadtest" / "results" / "cluster.json"


@dataclass
class Run:
    """One set-up in one round."""

    setup: str
    pods_per_s: float
    cpu_ms_per_pod: dict[str, float]
    connections_per_pod: float
    """TCP connections accepted on the machine during the run, per pod (kube-scheduler's to
    the extender, and every other)."""
    lease_writes_per_pod: float = 0.0
    """Lease creates and patches kube-apiserver served during the run, per pod (the extender's
    reservation writes)."""
    requests_per_pod: dict[str, float] = field(default_factory=dict)
    """Every request kube-apiserver served during the run, per pod, by "VERB resource"."""


@dataclass
class Size:
    nodes: int
    pods: int
    mix: str = "shared"
    runs: list[Run] = field(default_factory=list)

    def rates(self, setup: str) -> list[float]:
        return [r.pods_per_s for r in self.runs if r.setup == setup]

    def median(self, setup: str) -> float:
        return statistics.median(self.rates(setup))


def plain_config(kubeconfig: str, name: str, extender: str | None) -> dict[str, Any]:
    """A KubeSchedulerConfiguration for ``none`` (no extender) and ``floor`` (the Go floor)."""
    config: dict[str, Any] = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "leaderElection": {"leaderElect": False},
        "clientConnection": {"kubeconfig": kubeconfig, "qps": 5000, "burst": 5000},
        "profiles": [{"schedulerName": name}],
    }
    if extender:
        config["extenders"] = [{"urlPrefix": extender, "filterVerb": "filter",
                                "prioritizeVerb": "prioritize", "weight": 1,
                                "nodeCacheCapable": True, "httpTimeout": "5s"}]  # fmt: skip
    return config


class Bench:
    """One control plane for one size; runs set-ups on it."""

    def __init__(
        self, assets: Assets, workdir: Path, nodes: int, profile: Path | None = None
    ) -> None:
        self.assets = assets
        self.profile = profile
        self.plane = ControlPlane(assets, workdir, etcd_on_tmpfs=False).start()
        self.client = self.plane.api_client(connection_pool_maxsize=64)
        self.core = CoreV1Api(self.client)
        apply_rbac(self.core, RbacAuthorizationV1Api(self.client), extender_rbac())
        self.core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=NAMESPACE)))
        create_nodes(self.core, [
            node(f"node-{i:05d}", cpu="32", memory="128Gi", pods=110) for i in range(nodes)
        ], threads=32)  # fmt: skip
        self._tls = TlsFiles.issue(workdir / "tls")
        self._scheduler_ports: dict[int, int] = {}

    def run(self, setup: str, pods: int, round_no: int, mix: str = "shared") -> Run:
        name = f"{setup}-{mix}-{round_no}"
        self._create_pods(name, pods, MIXES[mix])
        watch = BindWatch(self.plane.url, ADMIN_TOKEN, NAMESPACE)
        procs = self._start(setup, name)
        measured = [p for p in procs.values()]
        cpu_before = {k: p.cpu_seconds() for k, p in self._measured(procs).items()}
        accepted_before = tcp_connections_accepted()
        requests_before = self.requests_served()
        profiles = self._start_profiles(name, procs)
        try:
            if not watch.wait_for(pods, timeout=max(600, pods / 5)):
                raise RuntimeError(f"{setup}: {len(watch.bound_at)}/{pods} bound in time")
            cpu = {k: p.cpu_seconds() - cpu_before[k] for k, p in self._measured(procs).items()}
            connections = tcp_connections_accepted() - accepted_before
            served = self.requests_served()
            requests = {k: (v - requests_before.get(k, 0)) / pods for k, v in served.items()}
            # what each pod costs, not the processes' start-up lists and watches
            requests = {k: round(v, 3) for k, v in sorted(requests.items()) if v >= 0.005}
        finally:
            for stop in profiles:
                stop()
            watch.close()
            for proc in measured:
                self.plane.stop_child(proc)
        times = sorted(watch.bound_at.values())
        rate = (len(times) - 1) / (times[-1] - times[0])
        self._reset(pods)
        cpu_ms = {k: 1000 * v / pods for k, v in cpu.items()}
        writes = sum(requests.get(f"{verb} leases", 0.0) for verb in LEASE_WRITES)
        return Run(setup, rate, cpu_ms, connections / pods, writes, requests)

    def requests_served(self) -> dict[str, float]:
        """Requests kube-apiserver served so far, by "VERB resource[/subresource]" (its
        apiserver_request_total; its own identity Lease is renewed with PUT)."""
        ca = self.plane.workdir / "apiserver-certs" / "apiserver.crt"
        reply = httpx.get(
            f"{self.plane.url}/metrics", verify=str(ca), timeout=30,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )  # fmt: skip
        reply.raise_for_status()
        served: dict[str, float] = {}
        for family in text_string_to_metric_families(reply.text):
            if family.name != "apiserver_request":
                continue
            for sample in family.samples:
                if sample.name != "apiserver_request_total":
                    continue
                labels = sample.labels
                resource = labels.get("resource", "")
                if labels.get("subresource"):
                    resource += "/" + labels["subresource"]
                key = f"{labels.get('verb', '')} {resource}"
                served[key] = served.get(key, 0.0) + sample.value
        return served

    def _start_profiles(self, name: str, procs: dict[str, Proc]) -> list[Callable[[], object]]:
        """CPU profiles of this run (``--profile``): pprof slices of kube-apiserver and
        kube-scheduler, py-spy of a Python extender; returns what stops them."""
        if self.profile is None:
            return []
        out = self.profile / name
        out.mkdir(parents=True, exist_ok=True)
        ca = str(self.plane.workdir / "apiserver-certs" / "apiserver.crt")
        go = [GoProfile(self.plane.url, ADMIN_TOKEN, ca, out / "kube-apiserver").start()]
        port = self._scheduler_ports.get(procs["kube-scheduler"].pid)
        if port:
            go.append(GoProfile(f"https://127.0.0.1:{port}", ADMIN_TOKEN, None,
                                out / "kube-scheduler").start())  # fmt: skip
        stops: list[Callable[[], object]] = [g.stop for g in go]
        extender = procs.get("extender")
        if extender is not None and extender.argv[0] == sys.executable:
            stops.append(PySpy(extender.pid, out / "extender.txt").stop)
        return stops

    def _measured(self, procs: dict[str, Proc]) -> dict[str, Proc]:
        assert self.plane.apiserver is not None and self.plane.etcd is not None
        return {**procs, "kube-apiserver": self.plane.apiserver, "etcd": self.plane.etcd}

    def _start(self, setup: str, name: str) -> dict[str, Proc]:
        kubeconfig = str(self.plane.admin_kubeconfig)
        procs: dict[str, Proc] = {}
        if setup == "none":
            config = plain_config(kubeconfig, name, None)
        elif setup in ("floor", FLOOR_BIND):
            port = free_port()
            floor = procs["extender"] = self.plane._spawn(
                "go-extender-floor", [self.assets.binary("go-extender-floor"), str(port)]
            )
            wait_until(floor, lambda: _listening(port), timeout=10, what="its port")
            config = plain_config(kubeconfig, name, f"http://127.0.0.1:{port}")
            if setup == FLOOR_BIND:
                procs["binder"], binder_url = self._floor_binder()
                config["extenders"].append({"urlPrefix": binder_url, "bindVerb": "bind",
                                            "httpTimeout": "5s"})  # fmt: skip
        else:
            tls = setup in (TLS, TLS_H1, NGINX)
            env = dict(self._tls.extender_env) if setup in (TLS, TLS_H1) else {}
            if setup == TLS_H1:
                env["PLACEMENT_EXTENDER_SERVER__HTTP2"] = "false"
            if setup == NOAHEAD:
                env["PLACEMENT_EXTENDER_BIND__RESERVE_AHEAD"] = "0"
            replica = self.plane.extender("extender", env, timeout=300)
            procs["extender"] = replica.proc
            url = replica.url
            if setup == NGINX:
                procs["nginx"], url = self._nginx(replica.url)
            config = scheduler_config(
                extender_url=url, kubeconfig=kubeconfig, scheduler_name=name,
                values=TLS_VALUES if tls else None,
            )  # fmt: skip
            if tls:
                tls_files(self._tls.server_ca, self._tls.client)(config)
            if setup == NOBIND:
                del config["extenders"][0]["bindVerb"]
        if self.profile is None:
            procs["kube-scheduler"] = self.plane.scheduler(config, name=name)
            return procs
        # pprof on a known secure port, the admin token checked with kube-apiserver
        port = free_port()
        kubeconfig_args = ["--authentication-kubeconfig", kubeconfig,
                           "--authorization-kubeconfig", kubeconfig]  # fmt: skip
        scheduler = self.plane.scheduler(
            config, name=name, secure_port=port, extra_args=kubeconfig_args
        )
        wait_until(scheduler, lambda: _listening(port), timeout=30, what="its secure port")
        self._scheduler_ports[scheduler.pid] = port
        procs["kube-scheduler"] = scheduler
        return procs

    def _floor_binder(self) -> tuple[Proc, str]:
        """The bind-only Go extender (built on first use), with the extender's credentials."""
        workdir = self.plane.workdir
        binary = workdir / "floorbind"
        if not binary.exists():
            go = shutil.which("go")
            if go is None:
                raise RuntimeError(f"{FLOOR_BIND} needs Go to build bench/floorbind: "
                                   "apt-get install golang-go")  # fmt: skip
            env = {**os.environ, "GO111MODULE": "off", "GOCACHE": str(workdir / "gocache")}
            subprocess.run([go, "build", "-o", str(binary), "."], cwd=FLOOR_BIND_SOURCE,
                           env=env, check=True)  # fmt: skip
        token = workdir / "floorbind.token"
        token.write_text(EXTENDER_TOKEN)
        ca = workdir / "apiserver-certs" / "apiserver.crt"
        port = free_port()
        proc = self.plane._spawn(
            "floorbind", [str(binary), str(port), self.plane.url, str(token), str(ca)]
        )
        wait_until(proc, lambda: _listening(port), timeout=10, what="its port")
        return proc, f"http://127.0.0.1:{port}"

    def _nginx(self, upstream: str) -> tuple[Proc, str]:
        """nginx terminating the chart's mutual TLS (HTTP/2 and HTTP/1.1) for ``upstream``:
        one process (``master_process off``), so its CPU is measured like the others'."""
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        directory = self.plane.workdir / "nginx"
        directory.mkdir(exist_ok=True)
        port = free_port()
        files = self._tls.files
        (directory / "nginx.conf").write_text(NGINX_CONF.format(
            dir=directory, port=port, upstream=upstream.removeprefix("http://"), **files,
        ))  # fmt: skip
        proc = self.plane._spawn("nginx", [nginx, "-p", str(directory), "-c", "nginx.conf"])
        wait_until(proc, lambda: _listening(port), timeout=10, what="its port")
        return proc, f"https://127.0.0.1:{port}"

    def _create_pods(self, scheduler: str, count: int, mix: Mix) -> None:
        """``count`` pending pods of the mix."""
        ids = mix.container_ids
        create_pods(self.core, [
            pod(f"{scheduler}-{i:05d}", scheduler=scheduler, namespace=NAMESPACE,
                cpu=mix.cpu, memory=mix.memory,
                annotations={KEYS.container_id: f"fn-{i % ids if ids else i}"})
            for i in range(count)
        ], threads=32)  # fmt: skip

    def _reset(self, pods: int) -> None:
        """Delete the round's pods and the ledger Leases, for the next set-up."""
        self.core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0)
        CoordinationV1Api(self.client).delete_collection_namespaced_lease(
            EXTENDER_NAMESPACE, label_selector=KEYS.ledger_selector
        )
        deadline = time.monotonic() + 120
        while self.core.list_namespaced_pod(NAMESPACE, limit=1).items:
            if time.monotonic() > deadline:
                raise RuntimeError("pods were not deleted")
            time.sleep(0.5)

    def close(self) -> None:
        self.client.close()
        self.plane.stop()


@dataclass(frozen=True)
class TlsFiles:
    """The chart's mutual TLS on loopback: the extender's serving certificate (ECDSA P-256, as
    the chart asks cert-manager for) and the scheduler's client certificate as a render of
    the chart issues it."""

    server_ca: str
    extender_env: dict[str, str]
    client: dict[str, str]
    files: dict[str, str]
    """The extender's certificate, key and client CA: ``cert``, ``key``, ``client_ca``."""

    @classmethod
    def issue(cls, directory: Path) -> TlsFiles:
        directory.mkdir(parents=True)
        ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
        leaf = ca.issue_cert("127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(str(directory / "tls.crt"))
        leaf.private_key_pem.write_to_path(str(directory / "tls.key"))
        ca.cert_pem.write_to_path(str(directory / "ca.crt"))
        client = chart_client_certificate(directory / "client")
        env = {
            "PLACEMENT_EXTENDER_SERVER__TLS_CERT_FILE": str(directory / "tls.crt"),
            "PLACEMENT_EXTENDER_SERVER__TLS_KEY_FILE": str(directory / "tls.key"),
            "PLACEMENT_EXTENDER_SERVER__TLS_CLIENT_CA_FILE": client["ca.crt"],
        }
        files = {"cert": str(directory / "tls.crt"), "key": str(directory / "tls.key"),
                 "client_ca": client["ca.crt"]}  # fmt: skip
        return cls(str(directory / "ca.crt"), env, client, files)


# The sidecar design's nginx: HTTP/2 and HTTP/1.1 over mutual TLS, keep-alive HTTP/1.1 upstream.
NGINX_CONF = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream extender {{ server {upstream}; keepalive 16; }}
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_client_certificate {client_ca};
    ssl_verify_client on;
    http2_max_concurrent_streams 100;
    client_max_body_size 64m;
    location / {{
      proxy_pass http://extender;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""


def tcp_connections_accepted() -> int:
    """TCP connections accepted on this machine (network namespace) so far: the kernel's
    ``PassiveOpens`` counter. Counting sockets in TIME-WAIT instead misses connections ended
    with a reset: the TLS set-up's left none behind."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    header, values = [fields for fields in lines if fields[0] == "Tcp:"]
    return int(values[header.index("PassiveOpens")])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def report(sizes: list[Size]) -> str:
    lines = []
    for size in sizes:
        floors = {f: size.median(f) if size.rates(f) else None
                  for f in (HEADLINE_FLOOR, REFERENCE_FLOOR)}  # fmt: skip
        rows = []
        for setup in ALL_SETUPS:
            rates = size.rates(setup)
            if not rates:
                continue
            cpu: dict[str, list[float]] = {}
            runs = [r for r in size.runs if r.setup == setup]
            for run in runs:
                for proc, ms in run.cpu_ms_per_pod.items():
                    cpu.setdefault(proc, []).append(ms)
            connections = statistics.median(r.connections_per_pod for r in runs)
            writes = statistics.median(r.lease_writes_per_pod for r in runs)
            cpu_text = ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in sorted(cpu.items()))
            median = statistics.median(rates)
            ratios = [f"{median / f:.2f}×" if f else "–" for f in floors.values()]
            rows.append([setup, " / ".join(f"{r:.0f}" for r in rates), f"{median:.0f}",
                         *ratios, cpu_text, f"{connections:.2f}", f"{writes:.2f}"])  # fmt: skip
        lines.append(f"### {size.nodes:,} nodes / {size.pods:,} pods, {size.mix} mix\n")
        lines.append(markdown_table(
            ["set-up", "pods/s per round", "median", f"÷ {HEADLINE_FLOOR}", f"÷ {REFERENCE_FLOOR}",
             "CPU ms per pod (median)", "TCP connections per pod", "Lease writes per pod"], rows
        ))  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def write_results(sizes: list[Size], path: Path) -> None:
    data = {
        "machine": machine(),
        "sizes": [
            {
                "nodes": s.nodes,
                "pods": s.pods,
                "mix": s.mix,
                "headline_floor": HEADLINE_FLOOR,
                "rounds": max((len(s.rates(setup)) for setup in ALL_SETUPS), default=0),
                "setups": {
                    setup: {
                        "pods_per_s": s.rates(setup),
                        "cpu_ms_per_pod": [r.cpu_ms_per_pod for r in s.runs if r.setup == setup],
                        "connections_per_pod": [
                            r.connections_per_pod for r in s.runs if r.setup == setup
                        ],
                        "lease_writes_per_pod": [
                            r.lease_writes_per_pod for r in s.runs if r.setup == setup
                        ],
                        "requests_per_pod": [
                            r.requests_per_pod for r in s.runs if r.setup == setup
                        ],
                    }
                    for setup in ALL_SETUPS
                    if s.rates(setup)
                },
            }
            for s in sizes
        ],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000x2000,5000x10000", help="NODESxPODS,...")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--setups", default=",".join(SETUPS),
                        help=f"of {', '.join(ALL_SETUPS)}")  # fmt: skip
    parser.add_argument("--mixes", default=",".join(DEFAULT_MIXES),
                        help=f"of {', '.join(MIXES)}")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--profile", type=Path, default=None,
                        help="take CPU profiles of every run into this directory")  # fmt: skip
    args = parser.parse_args()
    assets = Assets.from_env()
    if assets is None or assets.missing():
        print("bench-cluster needs KUBEBUILDER_ASSETS (etcd, kube-apiserver, kube-scheduler, "
              "go-extender-floor)")  # fmt: skip
        return 2
    setups = args.setups.split(",")
    mixes = args.mixes.split(",")
    unknown = [s for s in setups if s not in ALL_SETUPS] + [m for m in mixes if m not in MIXES]
    if unknown:
        parser.error(f"unknown set-up or mix: {', '.join(unknown)}")
    print(f"machine: {machine()}")
    sizes: list[Size] = []
    for spec in args.sizes.split(","):
        nodes, pods = (int(x) for x in spec.split("x"))
        by_mix = {mix: Size(nodes, pods, mix) for mix in mixes}
        sizes += by_mix.values()
        workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
        bench = Bench(assets, workdir, nodes, args.profile)
        try:
            for round_no in range(args.rounds):
                order = setups[round_no % len(setups) :] + setups[: round_no % len(setups)]
                for mix in mixes:
                    for setup in order:
                        run = bench.run(setup, pods, round_no, mix)
                        by_mix[mix].runs.append(run)
                        print(f"{nodes}/{pods} {mix} round {round_no + 1} {setup}: "
                              f"{run.pods_per_s:.1f} pods/s", flush=True)  # fmt: skip
                        write_results(sizes, args.out)  # an interrupted run keeps its figures
        finally:
            bench.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(report(sizes))
    write_results(sizes, args.out)
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
