"""Child processes of the control-plane fixture: started with their output in a log file,
stopped (SIGTERM, then SIGKILL) by whoever started them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Proc:
    """One child process whose stdout and stderr go to ``log``."""

    def __init__(
        self, name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self._file = log.open("ab")
        self.popen = subprocess.Popen(
            self.argv, stdout=self._file, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.popen.kill()
        self.popen.wait()
        self._file.close()

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM, SIGKILL after ``grace`` seconds; returns the exit code."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        code = self.popen.wait()
        self._file.close()
        return code

    def cpu_seconds(self) -> float:
        """User + system CPU this process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class StartupFailed(RuntimeError):
    """A component did not become ready; the message carries the end of its log."""


def wait_until(
    proc: Proc, ready: Callable[[], bool], *, timeout: float, what: str, poll: float = 0.05
) -> None:
    """Poll ``ready()`` (an external process offers nothing to await) until it holds; fail
    with the process's log tail if it exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if not proc.alive():
            raise StartupFailed(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
        if time.monotonic() > deadline:
            raise StartupFailed(f"{proc.name}: no {what} after {timeout:g}s:\n{proc.tail()}")
        time.sleep(poll)


def http_ok(url: str, *, verify: bool = False, headers: dict[str, str] | None = None) -> bool:
    """Whether ``GET url`` answers 200 right now."""
    try:
        return httpx.get(url, verify=verify, headers=headers, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False
