"""TLS for the extender port: its certificate, the client CA it may require, and their reload.

The listener is given one :class:`ssl.SSLContext` for its whole life (asyncio cannot swap it), so
that context's server-name callback, which OpenSSL calls on every handshake whether or not the
client sends SNI, hands each new connection the context built from the files as they are now.
Connections already open keep the certificate they started with.
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass

log = logging.getLogger(__name__)

# What identifies one version of a mounted file. Kubernetes updates Secret volumes by swapping a
# symlinked directory, so each renewal is a new inode; the rest catches files rewritten in place.
Signature = tuple[tuple[int, int, int], ...]


class TLSFilesError(ValueError):
    """The certificate, key or client CA could not be loaded."""


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """The PEM files the extender port serves with."""

    cert: str
    key: str
    client_ca: str | None = None
    """When set, a client certificate signed by this CA is required (mutual TLS)."""

    def paths(self) -> tuple[str, ...]:
        return (self.cert, self.key) + ((self.client_ca,) if self.client_ca else ())


def build_context(files: TLSFiles) -> ssl.SSLContext:
    """A server context from ``files``; :class:`TLSFilesError` names the file that failed."""
    # Not ssl.create_default_context(): it would also trust the system CAs for client
    # certificates, letting in any client with a certificate from a public CA.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as exc:
        message = f"cannot load TLS certificate {files.cert} / key {files.key}: {exc}"
        raise TLSFilesError(message) from exc
    if files.client_ca is not None:
        try:
            context.load_verify_locations(cafile=files.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TLSFilesError(f"cannot load TLS client CA {files.client_ca}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class ReloadingContext:
    """The listener's context; every handshake gets the context of the files' current version.

    A change is noticed on the next handshake (a few ``stat`` calls each, no timer). Files that do
    not load (a renewal caught half-written, a key that does not match its certificate) are
    logged and the previous context is kept until the files change again.
    """

    def __init__(self, files: TLSFiles) -> None:
        self.files = files
        try:
            self._signature = self._stat()
        except OSError:
            self._signature = ()  # build_context says which file is missing
        self.context = build_context(files)
        self.context.sni_callback = self._on_handshake
        self._current = self.context

    def current(self) -> ssl.SSLContext:
        """The context built from the files as they are now (rebuilt only when they changed)."""
        try:
            signature = self._stat()
        except OSError as exc:  # a file is missing for a moment while it is being replaced
            log.warning("TLS files unreadable, keeping the loaded certificate: %s", exc)
            return self._current
        if signature != self._signature:
            self._signature = signature  # taken before reading: a later write is seen next time
            try:
                self._current = build_context(self.files)
            except TLSFilesError as exc:
                log.warning("keeping the loaded certificate: %s", exc)
            else:
                log.info("TLS files changed: new connections use the new certificate")
        return self._current

    def _on_handshake(
        self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> None:
        connection.context = self.current()

    def _stat(self) -> Signature:
        stats = [os.stat(path) for path in self.files.paths()]
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)
