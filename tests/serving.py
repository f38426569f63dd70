"""Run ``placement-extender serve`` on loopback as a user would, for tests over real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.controlplane.processes import free_port

__all__ = ["ROOT", "Served", "free_port", "serve_demo", "serve_refused"]

ROOT = Path(__file__).parent.parent
# What each listener logs once it serves: uvicorn (plain HTTP), the TLS server (app.api.https).
LISTENING = ("Uvicorn running on", "TLS on ")


class Served:
    """A running demo-cluster server; ``log`` collects its stderr lines."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.log: list[str] = []
        self._changed = threading.Condition()

    def wait_for_log(
        self, text: str | tuple[str, ...], *, count: int = 1, timeout: float = 60
    ) -> None:
        """Block until ``text`` (or any of several) has appeared in ``count`` log lines."""
        texts = (text,) if isinstance(text, str) else text
        with self._changed:
            found = self._changed.wait_for(
                lambda: (
                    sum(any(t in line for t in texts) for line in self.log) >= count
                    or self.process.poll() is not None
                ),
                timeout,
            )
        assert found and self.process.poll() is None, "".join(self.log[-20:])

    def _drain(self) -> None:
        # Keep reading: a full stderr pipe would block the server.
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.log.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()


@contextmanager
def serve_demo(
    port: int, env: dict[str, str] | None = None, *, listeners: int = 1
) -> Iterator[Served]:
    """``make run``'s command on ``port``, from when all ``listeners`` say they serve until the
    block ends."""
    command = [sys.executable, "-m", "app", "serve", "--snapshot", "examples/demo-cluster.yaml",
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    served = Served(process)
    threading.Thread(target=served._drain, daemon=True).start()
    try:
        served.wait_for_log(LISTENING, count=listeners)
        yield served
    finally:
        process.terminate()
        process.wait(timeout=30)


def serve_refused(env: dict[str, str]) -> str:
    """``make run``'s command with ``env``, which must exit with status 2 before serving: its
    stderr."""
    command = [sys.executable, "-m", "app", "serve", "--snapshot", "examples/demo-cluster.yaml",
               "--host", "127.0.0.1", "--port", str(free_port())]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})  # fmt: skip
    assert done.returncode == 2, done.stderr
    return done.stderr
