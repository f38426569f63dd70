"""CPU profiles of the processes of a ``make bench-cluster`` run (``--profile DIR``).

kube-apiserver and kube-scheduler serve Go's pprof on their secure ports (``/debug/pprof/
profile``, authenticated with the admin token); the extender is sampled by py-spy (``pip
install py-spy``; it needs ptrace, as root here). Profiles are taken back to back in slices of
a few seconds while the run lasts, and saved per process; read them with
``go tool pprof -top FILE...`` (several slices at once are merged) and ``py-spy``'s
speedscope/raw output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx

SLICE_SECONDS = 5
"""Length of one pprof slice: a run ends at most this long before its last slice does."""


class GoProfile:
    """Back-to-back CPU profile slices of one Go process, on a thread, until stopped."""

    def __init__(self, url: str, token: str, ca: str | None, out: Path) -> None:
        self.url, self.token, self.ca, self.out = url, token, ca, out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.slices: list[Path] = []
        self.error = ""

    def start(self) -> GoProfile:
        self._thread.start()
        return self

    def _loop(self) -> None:
        with httpx.Client(verify=self.ca or False, timeout=SLICE_SECONDS + 30) as client:
            while not self._stop.is_set():
                try:
                    reply = client.get(
                        f"{self.url}/debug/pprof/profile",
                        params={"seconds": SLICE_SECONDS},
                        headers={"Authorization": f"Bearer {self.token}"},
                    )
                except httpx.HTTPError as exc:  # the process ended
                    self.error = str(exc)
                    return
                if reply.status_code != 200:
                    self.error = f"{reply.status_code}: {reply.text[:200]}"
                    return
                path = self.out.with_name(f"{self.out.name}.{len(self.slices):03d}.pb.gz")
                path.write_bytes(reply.content)
                self.slices.append(path)

    def stop(self) -> list[Path]:
        self._stop.set()
        self._thread.join()
        return self.slices


class PySpy:
    """py-spy sampling one Python process until stopped (raw, folded stacks)."""

    def __init__(self, pid: int, out: Path, *, native: bool = False) -> None:
        spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        if spy is None:
            raise RuntimeError("--profile needs py-spy for the extender: pip install py-spy")
        argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                "--output", str(out), "--nonblocking"]  # fmt: skip
        if native:
            argv.append("--native")
        self.out = out
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> Path:
        self._proc.send_signal(2)  # SIGINT: py-spy writes what it sampled, then exits
        self._proc.wait(30)
        return self.out
