"""The fault suite's cluster on tests/controlplane: kube-scheduler profiles, each calling its own
extender replica (as a scheduler pod calls its own extender), and what the checks read — pods
bound per node against allocatable, each replica's metrics and memory, the ledgers, the
schedulers' logs — plus the figures each run records.

``CHAOS_PROFILE=full`` (``make chaos``) runs the sizes of record; anything else the short
variant that ``make test`` collects. ``CHAOS_FIGURES=DIR`` makes each run write its figures to
``DIR/<run>.json`` (``tests/chaos/figures.py`` draws them).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kubernetes.client import CoordinationV1Api

from app.state.ledger import Reservation, parse_ledger
from app.wire.quantity import quantity_to_int
from tests.chaos.proxy import Service
from tests.controlplane.chart import Shutdown
from tests.controlplane.cluster import EXTENDER_NAMESPACE, Extender
from tests.controlplane.objects import GPU, JSON, KEYS, bound_node, node, pod
from tests.e2e.conftest import Scenario

SCHEDULERS = 3


@dataclass(frozen=True)
class Profile:
    """Sizes of one variant of the suite."""

    name: str
    cpu_nodes: int
    cpus_per_node: int  # room for 10 pods of 100m per CPU
    gpu_nodes: int
    gpus_per_node: int
    ttl_seconds: float
    """bind.reservation_ttl_seconds of the replicas."""
    stall_seconds: float
    soak_seconds: float
    soak_nodes: int
    soak_pods_per_second: float
    tidy_interval_seconds: float

    @property
    def cpu_room(self) -> int:
        return self.cpu_nodes * self.cpus_per_node * 10

    @property
    def gpu_room(self) -> int:
        return self.gpu_nodes * self.gpus_per_node

    def env(self) -> dict[str, str]:
        return {
            "PLACEMENT_EXTENDER_BIND__RESERVATION_TTL_SECONDS": str(self.ttl_seconds),
            "PLACEMENT_EXTENDER_BIND__TIDY_INTERVAL_SECONDS": str(self.tidy_interval_seconds),
        }


SHORT = Profile("short", cpu_nodes=4, cpus_per_node=1, gpu_nodes=2, gpus_per_node=4,
                ttl_seconds=20, stall_seconds=6, soak_seconds=40, soak_nodes=50,
                soak_pods_per_second=10, tidy_interval_seconds=5)  # fmt: skip
FULL = Profile("full", cpu_nodes=10, cpus_per_node=2, gpu_nodes=5, gpus_per_node=8,
               ttl_seconds=60, stall_seconds=15, soak_seconds=20 * 60, soak_nodes=500,
               soak_pods_per_second=10, tidy_interval_seconds=15)  # fmt: skip
PROFILE = FULL if os.environ.get("CHAOS_PROFILE") == "full" else SHORT


def record(run: str, figures: dict[str, Any]) -> None:
    """Write the run's figures where ``CHAOS_FIGURES`` says (nowhere if unset)."""
    directory = os.environ.get("CHAOS_FIGURES")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
        figures = {"run": run, "profile": PROFILE.name, "at": time.time(), "commit": commit,
                   "cpus": os.cpu_count(), **figures}  # fmt: skip
        (Path(directory) / f"{run}.json").write_text(json.dumps(figures, indent=1))


def mixed_nodes(profile: Profile) -> list[JSON]:
    """CPU nodes (no GPU: CPU pods go there only) and T4 GPU nodes."""
    cpu = [node(f"cpu-{i}", cpu=str(profile.cpus_per_node)) for i in range(profile.cpu_nodes)]
    gpu = [node(f"gpu-{i}", cpu="64", gpus=profile.gpus_per_node, labels={KEYS.gpu_type: "T4"})
           for i in range(profile.gpu_nodes)]  # fmt: skip
    return cpu + gpu


def mixed_pods(prefix: str, cpu_pods: int, gpu_pods: int) -> list[JSON]:
    """100m CPU pods and 1-GPU pods, spread over the schedulers' profiles."""
    pods = [pod(f"{prefix}-c{i}", scheduler=f"sched-{i % SCHEDULERS}", cpu="100m", memory="16Mi")
            for i in range(cpu_pods)]  # fmt: skip
    pods += [pod(f"{prefix}-g{i}", scheduler=f"sched-{i % SCHEDULERS}", cpu="10m",
                 memory="16Mi", gpus=1) for i in range(gpu_pods)]  # fmt: skip
    return pods


def bound_count(pods: dict[str, JSON]) -> int:
    return sum(1 for p in pods.values() if bound_node(p))


def over_committed(pods: dict[str, JSON], allocatable: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Nodes whose bound pods request more than they have, per resource."""
    used: dict[str, Counter[str]] = {}
    for p in pods.values():
        where = bound_node(p)
        if where:
            for c in p["spec"]["containers"]:
                for resource, amount in ((c.get("resources") or {}).get("requests") or {}).items():
                    used.setdefault(where, Counter())[resource] += quantity_to_int(resource, amount)
    return {
        f"{n}/{r}": (amount, allocatable[n].get(r, 0))
        for n, per in used.items() for r, amount in per.items()
        if r in allocatable[n] and amount > allocatable[n][r]
    }  # fmt: skip


def allocatable_of(nodes: list[JSON]) -> dict[str, dict[str, int]]:
    tracked = ("cpu", "memory", "pods", GPU)
    return {
        n["metadata"]["name"]: {
            r: quantity_to_int(r, v) for r, v in n["status"]["allocatable"].items() if r in tracked
        }
        for n in nodes
    }


class Fleet:
    """``SCHEDULERS`` kube-scheduler profiles ``sched-<i>``, each calling replica ``i`` — or,
    with a ``service``, all calling the replicas through it (the chart's layout)."""

    def __init__(
        self,
        scenario: Scenario,
        env: dict[str, str] | None = None,
        kubeconfig: Path | None = None,
        service: Service | None = None,
    ) -> None:
        self.scenario = scenario
        self.env = {**PROFILE.env(), **(env or {})}
        self.kubeconfig = kubeconfig
        self.service = service
        self.replicas: list[Extender] = []
        self.retired: dict[str, float] = {}  # counters of replicas that were stopped, summed
        for i in range(SCHEDULERS):
            self.replicas.append(self._start(i))
            if service is not None:
                service.endpoints.append(self.replicas[i].port)
        for i in range(SCHEDULERS):
            scenario.scheduler(self.replicas[i] if service is None else service.url,
                               name=f"sched-{i}")  # fmt: skip

    def _start(self, i: int, port: int | None = None) -> Extender:
        return self.scenario.extender(self.env, name=f"replica-{i}", port=port,
                                      kubeconfig=self.kubeconfig)  # fmt: skip

    def kill(self, i: int) -> None:
        """SIGKILL replica ``i``, as an OOM kill or a lost node would."""
        self._retire(self.replicas[i])
        self.replicas[i].proc.kill()

    def restart(self, i: int) -> None:
        """Start replica ``i`` again where its scheduler calls it."""
        self.replicas[i] = self._start(i, port=self.replicas[i].port)

    def roll(
        self, i: int, shutdown: Shutdown, before_sigterm: Callable[[], None] = lambda: None
    ) -> tuple[int, float, bool]:
        """Replace replica ``i`` as the chart's rolling update does (maxSurge 1, maxUnavailable
        0): a new replica starts and, once ready, joins the service; the old one leaves it and
        is stopped as the kubelet stops it — it serves on through the preStop sleep, gets
        SIGTERM, and must exit before the grace period ends. Returns the old one's exit code,
        the seconds from SIGTERM to exit, and whether it shut down gracefully (uvicorn's last
        words in its log)."""
        assert self.service is not None, "a rolling update replaces endpoints of a service"
        old, new = self.replicas[i], self._start(i)
        self.service.endpoints.append(new.port)
        self.service.endpoints.remove(old.port)
        self.replicas[i] = new
        time.sleep(shutdown.prestop_sleep_seconds)  # the preStop hook: a sleep, by definition
        before_sigterm()
        self._retire(old)
        old.proc.popen.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        try:
            code = old.proc.popen.wait(shutdown.grace_seconds - shutdown.prestop_sleep_seconds)
        except subprocess.TimeoutExpired:
            old.proc.kill()
            raise AssertionError(f"replica-{i} outlived the grace period: SIGKILLed") from None
        took = time.monotonic() - sent
        return code, took, "Application shutdown complete." in old.proc.tail(5)

    def _retire(self, replica: Extender) -> None:
        """Keep what a replica's counters say before it goes."""
        for key, value in self._metrics_of(replica).items():
            if key.startswith(("placement_extender_binds_total", "placement_extender_wakeups",
                               "placement_extender_requests_total")):  # fmt: skip
                self.retired[key] = self.retired.get(key, 0.0) + value

    def metrics(self, i: int) -> dict[str, float]:
        """Replica ``i``'s /metrics as {'name{labels}': value} ({} if it does not answer)."""
        return self._metrics_of(self.replicas[i])

    @staticmethod
    def _metrics_of(replica: Extender) -> dict[str, float]:
        try:
            text = httpx.get(f"{replica.url}/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        found = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                found[key] = float(value)
        return found

    def total(self, prefix: str) -> float:
        """A counter summed over the running replicas and those stopped before."""
        live = sum(v for i in range(SCHEDULERS) for k, v in self.metrics(i).items()
                   if k.startswith(prefix))  # fmt: skip
        return live + sum(v for k, v in self.retired.items() if k.startswith(prefix))

    def rss_bytes(self) -> list[int]:
        rss = []
        for replica in self.replicas:
            status = Path(f"/proc/{replica.proc.pid}/status").read_text()
            (kib,) = re.findall(r"VmRSS:\s+(\d+) kB", status)
            rss.append(int(kib) * 1024)
        return rss

    def scheduler_log(self) -> str:
        logs = sorted(self.scenario.plane.logs.glob("*-sched-*.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)


def ledger_entries(scenario: Scenario) -> list[Reservation]:
    """Every entry of every ledger Lease, as the API server has them now."""
    leases = CoordinationV1Api(scenario.client).list_namespaced_lease(
        EXTENDER_NAMESPACE, label_selector=KEYS.ledger_selector
    )
    return [
        entry for lease in leases.items
        for entry in parse_ledger((lease.metadata.annotations or {}).get(KEYS.reservations))
    ]  # fmt: skip


def orphans(entries: list[Reservation], pods: dict[str, JSON], now: float) -> list[Reservation]:
    """Live entries of pods not bound: room held for a bind that did not (yet) happen."""
    bound = {p["metadata"]["uid"] for p in pods.values() if bound_node(p)}
    return [e for e in entries if e.live(now) and e.pod_uid not in bound]
