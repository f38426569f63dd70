"""A slow API server for the fault suite: an HTTPS reverse proxy on loopback between the
extender replicas and kube-apiserver that holds write requests (POST, PATCH, PUT, DELETE) for a
settable time before forwarding them.

Only writes, because the fault under test is a slow write path (etcd under load, an overloaded
control plane): kube-apiserver serves reads and watches from its cache, which stay fast in such
incidents, and a slow watch is another fault (a stale snapshot; tests/test_bind.py covers it).
Telling writes from reads takes seeing the method, so the proxy terminates TLS with a
certificate of its own (the replicas' kubeconfig trusts it) and opens its own TLS connection
upstream. A held write is forwarded after the delay, not dropped, as a slow server would: the
client may have given up on it by then (its outcome is unknown to it), and it lands anyway.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Self

import aiohttp
from aiohttp import web

WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                        "host", "upgrade", "proxy-connection", "te", "trailer"})  # fmt: skip


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key."""
    cert, key = directory / "proxy.crt", directory / "proxy.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=slow-api-proxy",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class _LoopThread:
    """A server on its own event loop in a daemon thread: ``start`` returns once it listens on
    ``port``, ``stop`` ends ``_serve`` (which sets ``_ready`` and awaits ``_stopping``)."""

    scheme = "http"

    def __init__(self, name: str) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError(f"{self._thread.name} did not start")
        return self

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        raise NotImplementedError


class SlowApiProxy(_LoopThread):
    """Runs in a thread of its own; ``write_delay`` (seconds) may be changed at any time."""

    scheme = "https"

    def __init__(self, upstream: str, upstream_ca: Path, directory: Path) -> None:
        super().__init__("slow-api-proxy")
        self.upstream = upstream.rstrip("/")
        self.cert, self.key = self_signed(directory)
        self._upstream_ssl = ssl.create_default_context(cafile=str(upstream_ca))
        self.write_delay = 0.0
        self.writes_held = 0

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        session = aiohttp.ClientSession(
            auto_decompress=False, connector=aiohttp.TCPConnector(limit=0, ssl=self._upstream_ssl)
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)

        async def forward(request: web.Request) -> web.StreamResponse:
            return await self._forward(request, session)

        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        served.load_cert_chain(self.cert, self.key)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=served)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            await session.close()

    async def _forward(
        self, request: web.Request, session: aiohttp.ClientSession
    ) -> web.StreamResponse:
        body = await request.read()
        if request.method in WRITES and self.write_delay > 0:
            self.writes_held += 1
            await asyncio.sleep(self.write_delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            upstream = await session.request(
                request.method, self.upstream + request.path_qs, headers=headers, data=body,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )  # fmt: skip
        except aiohttp.ClientError:
            return web.Response(status=502)
        async with upstream:
            kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            response = web.StreamResponse(status=upstream.status, headers=kept)
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():  # watches stream
                    await response.write(chunk)
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientError):
                pass  # the client or the upstream went away mid-stream
            return response


class Service(_LoopThread):
    """A Kubernetes Service in front of the replicas, as the chart puts one: a TCP forwarder on
    loopback that sends each new connection to the next of its endpoints (round robin). Only
    ready replicas are endpoints: the test adds a replica once its /readyz answers and removes
    it as the kubelet starts terminating it (before its preStop sleep); connections already
    open stay with their replica, as kube-proxy's do."""

    def __init__(self) -> None:
        super().__init__("service")
        self.endpoints: list[int] = []
        self._next = 0

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stopping.wait()
        piping = asyncio.all_tasks() - {asyncio.current_task()}  # connections still open
        for task in piping:
            task.cancel()
        await asyncio.gather(*piping, return_exceptions=True)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        endpoints = list(self.endpoints)
        if not endpoints:  # no ready endpoint: refused, as kube-proxy rejects it
            writer.close()
            return
        self._next += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", endpoints[self._next % len(endpoints)]
            )
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
