"""The extender's listeners, run by uvicorn in one event loop.

* ``server.port``: every route; HTTPS when ``server.tls_cert_file`` is set, and with
  ``server.tls_client_ca_file`` only for clients presenting a certificate signed by that CA
  (kube-scheduler's ``tlsConfig``). The certificate and CA are reloaded when their files change.
* ``server.probe_port`` (optional): plain HTTP with only ``/healthz``, ``/readyz`` and
  ``/metrics``, for kubelet probes and Prometheus, which have no client certificate — the same
  split as controller-runtime's health-probe and metrics addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from app.api.hotpath import ASGIApp, Receive, Scope, Send
from app.api.server import Runtime
from app.api.serving import GracefulServer, graceful_timeout
from app.api.tls import ReloadingContext, TLSFiles
from app.config import Server

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class OnlyPaths:
    """Serve the given paths from ``app``; 404 for every other path (lifespan is not passed on)."""

    def __init__(self, app: ASGIApp, paths: frozenset[str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] in self.paths:
            await self.app(scope, receive, send)
            return
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"9")]
        await send({"type": "http.response.start", "status": 404, "headers": headers})
        await send({"type": "http.response.body", "body": b"not found"})


def tls_files(server: Server) -> TLSFiles | None:
    """The extender port's TLS files, or None to serve plain HTTP."""
    if server.tls_cert_file is None or server.tls_key_file is None:
        return None
    return TLSFiles(server.tls_cert_file, server.tls_key_file, server.tls_client_ca_file)


class _ProbeServer(uvicorn.Server):
    """Leaves the process signals to the main server, which stops this one when it is done."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class Listeners:
    """The configured listeners; :meth:`run` serves an application on them until interrupted."""

    def __init__(self, server: Server) -> None:
        """Loads the TLS files now, so that a bad one is reported before serving
        (:class:`app.api.tls.TLSFilesError`)."""
        self.server = server
        files = tls_files(server)
        self.tls = ReloadingContext(files) if files is not None else None

    def _config(self, app: ASGIApp, port: int, **options: Any) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            host=self.server.host,
            port=port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_config=None,
            **options,
        )

    def main_config(self, app: ASGIApp, **options: Any) -> uvicorn.Config:
        """uvicorn's config for the extender port."""
        if self.tls is None:
            return self._config(app, self.server.port, **options)
        context = self.tls.context

        def factory(_: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
            return context

        return self._config(app, self.server.port, ssl_context_factory=factory, **options)

    def run(self, app: ASGIApp, runtime: Runtime) -> None:
        """Serve ``app`` until SIGINT/SIGTERM, shutting down in the extender's order
        (:mod:`app.api.serving`); the probe port, if any, serves until the main one is done."""
        grace = math.ceil(graceful_timeout(runtime))
        main = GracefulServer(self.main_config(app, timeout_graceful_shutdown=grace), runtime)
        if self.server.probe_port is None:
            main.run()
            return
        probes = _ProbeServer(
            self._config(OnlyPaths(app, PROBE_PATHS), self.server.probe_port, lifespan="off")
        )
        with asyncio.Runner(loop_factory=main.config.get_loop_factory()) as runner:
            runner.run(_serve_both(main, probes))


async def _serve_both(main: uvicorn.Server, probes: uvicorn.Server) -> None:
    probing = asyncio.create_task(probes.serve())
    try:
        await main.serve()
    finally:
        probes.should_exit = True
        await probing
