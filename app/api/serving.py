"""Serving under uvicorn with the extender's shutdown order.

On SIGTERM (or SIGINT): /readyz answers 503 at once; the verbs are still served for
``server.shutdown_delay_seconds``; then uvicorn stops accepting, closes idle connections, lets
every in-flight call finish — a bind within its budget, so it ends bound or released — and exits.
A second signal skips the delay.
"""

from __future__ import annotations

import threading
from types import FrameType

import uvicorn

from app.api.server import Runtime


def graceful_timeout(runtime: Runtime) -> float:
    """How long in-flight calls may take after the listener closes: a body still arriving,
    then a bind's whole budget. uvicorn cancels what is left after that."""
    settings = runtime.settings
    return settings.server.read_timeout_seconds + settings.bind.budget_seconds + 1.0


class GracefulServer(uvicorn.Server):
    """``uvicorn.Server`` that drops readiness before it stops accepting."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        delay = self.runtime.settings.server.shutdown_delay_seconds
        if self.runtime.shutting_down or delay <= 0:
            self.runtime.shutting_down = True
            super().handle_exit(sig, frame)
            return
        self.runtime.shutting_down = True
        later = threading.Timer(delay, super().handle_exit, (sig, frame))
        later.daemon = True
        later.start()
