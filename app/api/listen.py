"""The extender's listeners, in one event loop.

* ``server.port``: every route. Plain HTTP under uvicorn; or, when ``server.tls_cert_file`` is
  set, HTTP/2 and HTTP/1.1 over TLS (:mod:`app.api.https`), with ``server.tls_client_ca_file``
  only for clients presenting a certificate signed by that CA (kube-scheduler's ``tlsConfig``).
  The certificate and CA are reloaded when their files change.
* ``server.probe_port`` (optional; on ``server.probe_host``, else ``server.host``): plain HTTP
  under uvicorn with only ``/healthz``, ``/readyz`` and ``/metrics``, for kubelet probes and
  Prometheus, which have no client certificate — the same split as controller-runtime's
  health-probe and metrics addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Generator
from typing import Any

import uvicorn
from uvicorn.lifespan.on import LifespanOn

from app.api.hotpath import ASGIApp, HotPath, Receive, Scope, Send
from app.api.https import HTTPSListener
from app.api.server import Runtime
from app.api.serving import GracefulServer, StopSignals, graceful_timeout
from app.api.tls import Renewals, TLSFiles
from app.config import Server

log = logging.getLogger(__name__)

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
        self.tls = Renewals(files) if files is not None else None

    def _config(self, app: ASGIApp, port: int, host: str, **options: Any) -> uvicorn.Config:
        return uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_config=None,
            **options,
        )

    def run(self, app: HotPath, runtime: Runtime) -> None:
        """Serve ``app`` until SIGINT/SIGTERM, shutting down in the extender's order
        (:mod:`app.api.serving`); the probe port, if any, serves until the main one is done."""
        grace = math.ceil(graceful_timeout(runtime))
        probes = None
        if self.server.probe_port is not None:
            only = OnlyPaths(app, PROBE_PATHS)
            probe_host = self.server.probe_host or self.server.host
            probes = _ProbeServer(
                self._config(only, self.server.probe_port, probe_host, lifespan="off")
            )
        if self.tls is not None:
            lifespan = LifespanOn(
                self._config(app, self.server.port, self.server.host, lifespan="on")
            )
            https = HTTPSListener(app, self.server, self.tls)
            with asyncio.Runner(loop_factory=lifespan.config.get_loop_factory()) as runner:
                runner.run(_serve_https(https, lifespan, probes, runtime, grace))
            return
        config = self._config(
            app, self.server.port, self.server.host, timeout_graceful_shutdown=grace
        )
        main = GracefulServer(config, runtime)
        if probes is None:
            main.run()
            return
        with asyncio.Runner(loop_factory=main.config.get_loop_factory()) as runner:
            runner.run(_serve_both(main, probes))


async def _serve_both(main: uvicorn.Server, probes: uvicorn.Server) -> None:
    probing = asyncio.create_task(probes.serve())
    try:
        await main.serve()
    finally:
        probes.should_exit = True
        await probing


async def _serve_https(
    https: HTTPSListener,
    lifespan: LifespanOn,
    probes: uvicorn.Server | None,
    runtime: Runtime,
    grace: float,
) -> None:
    """The application's lifespan (its source: the snapshot) once around both listeners."""
    await lifespan.startup()
    if lifespan.should_exit:
        raise SystemExit(3)
    signals = StopSignals(runtime)
    serving = asyncio.create_task(https.serve())
    probing = asyncio.create_task(probes.serve()) if probes is not None else None
    renewing = asyncio.create_task(https.watch_renewals())
    stopping = asyncio.create_task(signals.stop.wait())
    try:
        await asyncio.wait([serving, stopping], return_when=asyncio.FIRST_COMPLETED)
        unasked = serving.done() and not signals.stop.is_set()
        https.stop()
        try:
            await asyncio.wait_for(asyncio.shield(serving), grace)
        except TimeoutError:
            log.warning("calls still in flight after %ss: stopping without them", grace)
    finally:
        for task in (renewing, stopping):
            task.cancel()
        if probes is not None and probing is not None:
            probes.should_exit = True
            await probing
        await lifespan.shutdown()
    if unasked:  # granian's worker ended by itself: let the kubelet restart the container
        log.error("the TLS server stopped without being asked to")
        raise SystemExit(1)
