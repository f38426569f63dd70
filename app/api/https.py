"""The extender port over TLS: HTTP/2, with ALPN fallback to HTTP/1.1, served in this process.

kube-scheduler's extender client negotiates HTTP/2 whenever the server offers it and then sends
every call over one connection; over HTTP/1.1 it dials (a full TLS handshake) for about every
second pod. granian's embedded server (Rust: hyper, h2, rustls) speaks HTTP/2 at the cost of
plain HTTP here (docs/serving.md), and runs as a task in this event loop, serving the same
application (through granian's native interface, :mod:`app.api.rsgi`), so the process keeps one
snapshot.

Certificate renewal: granian's worker loads its files when it starts. A renewed version (checked
and copied by :class:`app.api.tls.Renewals`) is served by a new worker, which listens on its own
socket on the same port (SO_REUSEPORT) beside the old one for a second; then the old one stops
accepting and finishes its connections' calls (HTTP/2 clients get a GOAWAY and reconnect). Both
serve this process's application. A connection the kernel queued on the old socket in the
instant it closes is reset (Linux migrates such connections only with ``net.ipv4.tcp_migrate_req``).

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

from app.api.hotpath import HotPath
from app.api.rsgi import RSGIFront
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

    def __init__(self, app: HotPath, server: Server, renewals: Renewals) -> None:
        self.server = server
        self.renewals = renewals
        self._granian = _Granian(
            RSGIFront(app),  # the lifespan (the snapshot's source) runs once, outside
            address=server.host,
            port=server.port,
            interface=Interfaces.RSGI,
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
        # Each worker listens on its own socket (SO_REUSEPORT): a new one listens beside the
        # old one this long before the old one stops accepting and finishes its calls.
        self._granian.respawn_interval = 1.0
        self._serving = renewals.loaded

    async def serve(self) -> None:
        """Serve until :meth:`stop`, then until every call in flight has been answered."""
        serving = asyncio.create_task(self._granian.serve())
        if await _accepting(self.server.host, self.server.port, serving):
            http = "HTTP/2 and HTTP/1.1" if self.server.http2 else "HTTP/1.1"
            scheme = "mutual TLS" if self.renewals.files.client_ca else "TLS"
            log.info(f"serving {http} over {scheme} on {self.server.host}:{self.server.port}")
        await serving

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
            previous, self._serving = self._serving, loaded
            await self._respawn(loaded)
            previous.close()  # the worker that loaded it has stopped
            log.info("TLS files changed: new connections use the new certificate")

    async def _respawn(self, loaded: LoadedFiles) -> None:
        """Start a worker on ``loaded``; return once the old one has stopped accepting and
        finished its calls."""
        old = list(self._granian.wrks)
        self._granian.set_files(loaded)
        self._granian.reload()
        for worker in old:
            await worker.join()


async def _accepting(host: str, port: int, serving: asyncio.Task[None]) -> bool:
    """Wait until ``port`` accepts connections (granian's worker binds it after startup);
    False if ``serving`` ended first."""
    address = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    while not serving.done():
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError:
            await asyncio.sleep(0.01)
            continue
        writer.close()
        return True
    return False
