"""Shared pieces of the live benchmarks: the stand-in process, percentiles, RSS, tables."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes.client

from tests.standin import make_api_client


@dataclass
class StandInProcess:
    """A stand-in served by ``python -m bench.standin_proc``: just enough of
    :class:`tests.standin.ApiServerStandIn` for ``tests.live`` (``base_url``, ``api_client``)."""

    base_url: str
    nodes: int
    pods: int
    process: subprocess.Popen[bytes] = field(repr=False)

    def api_client(self, **config: Any) -> kubernetes.client.ApiClient:
        """A kubernetes ApiClient for the stand-in; ``config`` sets Configuration attributes."""
        return make_api_client(self.base_url, **config)


@contextlib.contextmanager
def standin_process(*args: str) -> Iterator[StandInProcess]:
    """Start ``python -m bench.standin_proc ARGS`` and yield once it serves; stop it after.
    Its stderr (socketserver's reports of clients that hung up, mostly) is shown only if it
    fails to start."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.standin_proc", *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=stderr, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # the child prints one line once it serves
            if not line:
                stderr.seek(0)
                tail = stderr.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"the stand-in exited with {process.wait()}:\n{tail}")
            ready = json.loads(line)
            yield StandInProcess(ready["url"], ready["nodes"], ready["pods"], process)
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None:
        process.stdin.close()  # the child's cue to stop
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100), nearest-rank on the sorted values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median (nan for no values)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def proc_status_mb(field_name: str) -> float:
    """A memory line of /proc/self/status (``VmRSS``, ``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return math.nan


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A compact Markdown table (numbers right-aligned)."""
    align = ["---:" if rows and all(_numeric(r[i]) for r in rows) else "---"
             for i in range(len(header))]  # fmt: skip
    lines = [header, align, *[[str(cell) for cell in row] for row in rows]]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def _numeric(cell: object) -> bool:
    text = str(cell).rstrip("×%msMB ").replace(",", "")
    if text == "–":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def machine() -> str:
    """One line naming the machine and interpreter."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, python {platform.python_version()}, {os.cpu_count()} cores"
