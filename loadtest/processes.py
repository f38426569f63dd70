"""The processes a run starts (servers, API server, k6), their commands, and their CPU time.

Every process is started in its own process group and stopped by that group's id, so nothing
it forks outlives the run, and nothing this run did not start is touched.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loadtest.loopback import LOOPBACK, RunError, http_get, is_listening
from loadtest.scenarios import State

REPO = Path(__file__).resolve().parent.parent

FLOOR_CMD = (
    "{python} -m uvicorn loadtest.floor:app --host {host} --port {port}"
    " --http httptools --loop uvloop --no-access-log --log-level warning"
)
# The extender serves a fixed cluster from the snapshot file (names mode needs no API server).
TARGET_CMD = (
    "{python} -m app serve --snapshot {snapshot} --host {host} --port {port} --log-level warning"
)
# With an API server (burst, bind-contention) it lists and watches the one in {kubeconfig},
# which the runner writes for the stand-in it starts.
TARGET_CMD_APISERVER = (
    "{python} -m app serve --kubeconfig {kubeconfig} --host {host} --port {port}"
    " --log-level warning"
)
# The API server for burst and bind-contention: the in-process stand-in (tests/standin) as a
# process, preloaded with the cluster (Nodes, Running pods) and the pending pods.
APISERVER_CMD = (
    "{python} -m tests.standin --host {host} --port {port} --load {cluster} --load {pending}"
)
TARGET_ENV = {
    "PLACEMENT_EXTENDER_SERVER__HOST": LOOPBACK,
    "PLACEMENT_EXTENDER_SERVER__LOG_LEVEL": "warning",
}
# The Go peer floor listens on 127.0.0.1 only and takes nothing but its port.
GO_FLOOR = "go-extender-floor"
GO_FLOOR_DEFAULT_DIR = Path.home() / ".cache" / "k8s-1.36.2"  # a usual KUBEBUILDER_ASSETS


@dataclass(frozen=True)
class Server:
    """One side of the comparison: how to start it and how to tell it is ready."""

    side: str  # "floor", "go-floor" or "target"
    cmd: str  # a template: {python} {port} {host} {snapshot} {kubeconfig} {payloads} ...
    ready_path: str | None  # GET answers 200 once ready; None: ready once the port listens
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO


def argv(template: str, *, port: int, state: State, kubeconfig: str = "") -> list[str]:
    """A command template filled in for one process."""
    return shlex.split(
        template.format(
            python=shlex.quote(sys.executable),
            kubeconfig=shlex.quote(kubeconfig),
            host=LOOPBACK,
            port=port,
            snapshot=shlex.quote(str(state.cluster)),
            cluster=shlex.quote(str(state.cluster)),
            pending=shlex.quote(str(state.payloads / "pending.json")),
            payloads=shlex.quote(str(state.payloads)),
        )
    )


def _executable(path: str | Path | None) -> str | None:
    if path and Path(path).is_file() and os.access(path, os.X_OK):
        return str(path)
    return None


def find_go_floor(explicit: str | None = None) -> str | None:
    """The go-extender-floor binary: ``explicit`` (--go-floor) alone when given, else
    $GO_EXTENDER_FLOOR, $KUBEBUILDER_ASSETS, PATH, or ~/.cache/k8s-1.36.2; None when it is
    not there."""
    if explicit:
        return _executable(explicit)
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    for c in (
        os.environ.get("GO_EXTENDER_FLOOR"),
        Path(assets) / GO_FLOOR if assets else None,
        shutil.which(GO_FLOOR),
        GO_FLOOR_DEFAULT_DIR / GO_FLOOR,
    ):
        if found := _executable(c):
            return found
    return None


# --- processes ---------------------------------------------------------------------------------


class Proc:
    """A process we started, in its own process group, stopped by that group's id."""

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path = REPO
    ) -> None:
        self.name = name
        self.log = log
        self._logf = log.open("wb")
        self.p = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def tail(self, n: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGTERM)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGKILL)
                self.p.wait(5)
        else:  # the leader is gone; make sure nothing it left in its group lingers
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, signal.SIGKILL)
        self._logf.close()


class Procs:
    """Every process this run started; all stopped on exit, error or Ctrl-C."""

    def __init__(self) -> None:
        self.items: list[Proc] = []

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path = REPO
    ) -> Proc:
        proc = Proc(name, argv, env, log, cwd)
        self.items.append(proc)
        return proc

    def stop(self, procs: Sequence[Proc] | None = None) -> None:
        for proc in list(procs if procs is not None else self.items)[::-1]:
            proc.stop()
            self.items.remove(proc)


def wait_ready(proc: Proc, url: str, timeout: float, *, port: int | None = None) -> float:
    """Seconds until GET url answers 200 (or, with ``port``, until the port listens)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not proc.alive():
            raise RunError(
                f"{proc.name} exited with {proc.p.returncode} before it was ready:\n{proc.tail()}"
            )
        if port is not None:
            if is_listening(port):
                return time.monotonic() - t0
        else:
            with contextlib.suppress(OSError):
                if http_get(url, timeout=1.0) == 200:
                    return time.monotonic() - t0
        time.sleep(0.1)
    raise RunError(f"{proc.name} not ready at {url} after {timeout:.0f}s:\n{proc.tail()}")


# --- CPU accounting ----------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_jiffies() -> int:
    """CPU time (all cores, every process) spent not idle since boot, in clock ticks."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v[:8]) - idle


def group_jiffies(pgids: Sequence[int]) -> int:
    """utime+stime of every live process in the given process groups."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) in pgids:  # field 5 (pgrp), counted after the comm
            total += int(fields[11]) + int(fields[12])
    return total
