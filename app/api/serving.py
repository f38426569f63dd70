"""The extender's shutdown order, under uvicorn (plain HTTP) and in the TLS server's loop.

On SIGTERM (or SIGINT): /readyz answers 503 at once; the verbs are still served for
``server.shutdown_delay_seconds``; then the listener stops accepting, idle connections are
closed, every in-flight call finishes — a bind within its budget, so it ends bound or released —
and the process exits. A second signal skips the delay.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from types import FrameType

import uvicorn

from app.api.server import Runtime


def graceful_timeout(runtime: Runtime) -> float:
    """How long in-flight calls may take after the listener closes: a body still arriving,
    then a bind's whole budget. What is left after that is cancelled."""
    settings = runtime.settings
    return settings.server.read_timeout_seconds + settings.bind.budget_seconds + 1.0


def stop_after(runtime: Runtime) -> float:
    """On a stop signal: readiness drops now; the listener is to close after this many seconds
    (0 on a second signal, or with no delay configured)."""
    delay = runtime.settings.server.shutdown_delay_seconds
    again = runtime.shutting_down
    runtime.shutting_down = True
    return 0.0 if again else delay


class GracefulServer(uvicorn.Server):
    """``uvicorn.Server`` that drops readiness before it stops accepting."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        delay = stop_after(self.runtime)
        if delay <= 0:
            super().handle_exit(sig, frame)
            return
        later = threading.Timer(delay, super().handle_exit, (sig, frame))
        later.daemon = True
        later.start()


class StopSignals:
    """SIGTERM and SIGINT in a running loop: :attr:`stop` is set when the listener is to close."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._received)

    def _received(self) -> None:
        delay = stop_after(self.runtime)
        if delay <= 0:
            self.stop.set()
        else:
            self._loop.call_later(delay, self.stop.set)
