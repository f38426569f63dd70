"""The extender port over TLS: HTTP/2, with ALPN fallback to HTTP/1.1, served in this process.

kube-scheduler's extender client negotiates HTTP/2 whenever the server offers it and then sends
every call over one connection; over HTTP/1.1 it dials (a full TLS handshake) for about every
second pod. granian's embedded server (Rust: hyper, h2, rustls) speaks HTTP/2 at the cost of
plain HTTP here (docs/serving.md), and runs as a task in this event loop, calling the same ASGI
application, so the process keeps one snapshot.

Certificate renewal: granian's worker loads its files when it starts. A renewed version (checked
and copied by :class:`app.api.tls.Renewals`) is served by a new worker, started on the same
listening socket before the old one stops; the old one finishes its connections' calls (HTTP/2
clients get a GOAWAY and reconnect). Both serve this process's application.

HTTP/2 limits: the SETTINGS this server sends bound concurrent streams and the header list;
hyper/h2 answer a flood of streams the client resets (CVE-2023-44487, "rapid reset") with a
GOAWAY once 20 are pending, and a flood of frames the server must reset likewise.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from granian._types import SSLCtx
from granian.constants import HTTPModes, Interfaces, SSLProtocols
from granian.http import HTTP1Settings, HTTP2Settings
from granian.server.embed import Server as EmbeddedServer

from app.api.hotpath import ASGIApp
from app.api.tls import LoadedFiles, Renewals
from app.config import Server

log = logging.getLogger(__name__)

# granian's own log lines (worker spawned, stopping) go to the root logger: JSON like ours.
_LOGGING: dict[str, Any] = {"loggers": {"_granian": {"handlers": [], "propagate": True}}}


class _Granian(EmbeddedServer):
    # granian's TLS settings as its workers take them: enabled, certificate, key, key password,
    # minimum protocol, client CA, CRLs, client certificate required (granian infers a narrower
    # type from its own plain-HTTP default).
    ssl_ctx: SSLCtx  # type: ignore[assignment]

    def build_ssl_context(self, cert: Path | None, key: Path | None, *args: Any) -> None:
        # granian would resolve symlinks and never reload: the files are ours (set_files).
        self.ssl_ctx = (False, None, None, None, str(SSLProtocols.tls12), None, [], False)

    def set_files(self, loaded: LoadedFiles) -> None:
        """Serve ``loaded`` from the next worker started on."""
        files = loaded.files
        verify = files.client_ca is not None
        proto = str(SSLProtocols.tls12)
        self.ssl_ctx = (True, files.cert, files.key, None, proto, files.client_ca, [], verify)


class HTTPSListener:
    """The extender port over TLS; :meth:`serve` until :meth:`stop`."""

    def __init__(self, app: ASGIApp, server: Server, renewals: Renewals) -> None:
        self.server = server
        self.renewals = renewals
        self._granian = _Granian(
            app,
            address=server.host,
            port=server.port,
            interface=Interfaces.ASGINL,  # the lifespan (the snapshot's source) runs once, outside
            http=HTTPModes.auto if server.http2 else HTTPModes.http1,
            backlog=2048,
            http1_settings=HTTP1Settings(
                header_read_timeout=int(server.read_timeout_seconds * 1000)
            ),
            http2_settings=HTTP2Settings(
                max_concurrent_streams=server.http2_max_concurrent_streams,
                max_headers_size=server.http2_max_header_list_bytes,
            ),
            log_level=server.log_level,  # type: ignore[arg-type]
            log_dictconfig=_LOGGING,
        )
        self._granian.set_files(renewals.loaded)
        # A new worker takes over the listening socket at once (connections wait in its
        # backlog meanwhile); the old one finishes its calls.
        self._granian.respawn_interval = 0.0
        self._granian.on_startup(self._started)
        self._serving = renewals.loaded
        self._previous: LoadedFiles | None = None

    def _started(self) -> None:
        http = "HTTP/2 and HTTP/1.1" if self.server.http2 else "HTTP/1.1"
        scheme = "mutual TLS" if self.renewals.files.client_ca else "TLS"
        log.info(f"serving {http} over {scheme} on {self.server.host}:{self.server.port}")

    async def serve(self) -> None:
        """Serve until :meth:`stop`, then until every call in flight has been answered."""
        await self._granian.serve()

    def stop(self) -> None:
        """Stop accepting; calls in flight are finished."""
        self._granian.stop()

    async def watch_renewals(self) -> None:
        """Serve each new version of the TLS files from a new worker."""
        while True:
            await asyncio.sleep(self.server.tls_reload_check_seconds)
            loaded = self.renewals.renewed()
            if loaded is None:
                continue
            # The version before the one being replaced may still be read by a worker starting
            # when the last check ran; two checks later nothing loads it.
            if self._previous is not None:
                self._previous.close()
            self._previous, self._serving = self._serving, loaded
            await self._respawn(loaded)
            log.info("TLS files changed: new connections use the new certificate")

    async def _respawn(self, loaded: LoadedFiles) -> None:
        """Start a worker on ``loaded``; return once it has replaced the old one."""
        old = list(self._granian.wrks)
        self._granian.set_files(loaded)
        self._granian.reload()
        while any(worker is before for worker in self._granian.wrks for before in old):
            await asyncio.sleep(0.02)
