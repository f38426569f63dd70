"""TLS for the extender port: its certificate, the client CA it may require, and their renewal.

The HTTP/2 server (:mod:`app.api.h2`) loads certificate files by path, once per worker, and a
file it cannot load ends the process. So it is never handed the mounted files themselves: each
version of them is read once, checked here, and copied into memory-only files
(``/proc/self/fd/N`` of a memfd), which are what the server loads. A renewal caught half-written
or a key that does not match its certificate is logged and the loaded version kept until the
files change again; a file swapped between the check and the load cannot slip through.
"""

from __future__ import annotations

import base64
import logging
import os
import re
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

    def signature(self) -> Signature:
        """This version of the files; ``OSError`` while one is missing."""
        stats = [os.stat(path) for path in self.paths()]
        return tuple((s.st_ino, s.st_mtime_ns, s.st_size) for s in stats)


def build_context(files: TLSFiles, shown: TLSFiles | None = None) -> ssl.SSLContext:
    """A server context from ``files``; :class:`TLSFilesError` names the file that failed (as
    ``shown`` names it, when ``files`` are copies)."""
    names = shown or files
    # Not ssl.create_default_context(): it would also trust the system CAs for client
    # certificates, letting in any client with a certificate from a public CA.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert, files.key)
    except (OSError, ssl.SSLError) as exc:
        message = f"cannot load TLS certificate {names.cert} / key {names.key}: {exc}"
        raise TLSFilesError(message) from exc
    if files.client_ca is not None:
        try:
            context.load_verify_locations(cafile=files.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TLSFilesError(f"cannot load TLS client CA {names.client_ca}: {exc}") from exc
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# The server's TLS library (rustls with ring) signs with these keys only, read from these PEM
# blocks; OpenSSL, which checks the pair above, accepts more (DSA, P-521, encrypted keys).
_KEY_BLOCK = re.compile(
    rb"-----BEGIN (PRIVATE KEY|RSA PRIVATE KEY|EC PRIVATE KEY)-----(.+?)-----END \1-----", re.S
)
_RSA = bytes.fromhex("06092a864886f70d010101")  # OID 1.2.840.113549.1.1.1
_ED25519 = bytes.fromhex("06032b6570")  # OID 1.3.101.112
_P256 = bytes.fromhex("06082a8648ce3d030107")  # OID 1.2.840.10045.3.1.7
_P384 = bytes.fromhex("06052b81040022")  # OID 1.3.132.0.34


def check_key_type(pem: bytes, name: str) -> None:
    """:class:`TLSFilesError` unless ``pem``'s first key is one the server can sign with:
    RSA, ECDSA P-256 or P-384, Ed25519."""
    found = _KEY_BLOCK.search(pem)
    if found is None:
        raise TLSFilesError(f"TLS key {name}: no PKCS#8, RSA or EC private key block")
    label, body = found.group(1), base64.b64decode(b"".join(found.group(2).split()))
    if label == b"RSA PRIVATE KEY":
        return
    # PKCS#8 names its algorithm (and an EC key's curve) in its first bytes; SEC1 (EC PRIVATE
    # KEY) names its curve right after the private number (at most 48 bytes for P-384).
    head = body[:96]
    if any(oid in head for oid in (_RSA, _ED25519, _P256, _P384)):
        return
    raise TLSFilesError(
        f"TLS key {name}: unsupported key type (use RSA, ECDSA P-256 or P-384, or Ed25519)"
    )


class LoadedFiles:
    """One checked version of the files, as memory-only copies the server loads by path."""

    def __init__(self, files: TLSFiles) -> None:
        """Reads and checks ``files``: :class:`TLSFilesError` names the file that failed."""
        self.source = files
        self._fds: list[int] = []
        try:
            contents = {path: _read(path, files) for path in files.paths()}
            check_key_type(contents[files.key], files.key)
            copies = {path: self._copy(path, data) for path, data in contents.items()}
            self.files = TLSFiles(
                copies[files.cert],
                copies[files.key],
                copies[files.client_ca] if files.client_ca else None,
            )
            build_context(self.files, shown=files)
        except BaseException:
            self.close()
            raise

    def _copy(self, path: str, data: bytes) -> str:
        fd = os.memfd_create(os.path.basename(path), os.MFD_CLOEXEC)
        self._fds.append(fd)
        os.write(fd, data)
        return f"/proc/self/fd/{fd}"

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def _read(path: str, files: TLSFiles) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        what = (
            f"client CA {path}" if path == files.client_ca
            else f"certificate {files.cert} / key {files.key}"
        )  # fmt: skip
        raise TLSFilesError(f"cannot load TLS {what}: {exc}") from exc


class Renewals:
    """The files' loaded version and the check for a new one (a few ``stat`` calls)."""

    def __init__(self, files: TLSFiles) -> None:
        """Loads the files now: :class:`TLSFilesError` if they cannot serve."""
        self.files = files
        try:
            self._signature = files.signature()
        except OSError:
            self._signature = ()  # LoadedFiles says which file is missing
        self.loaded = LoadedFiles(files)

    def renewed(self) -> LoadedFiles | None:
        """The files' new version if they changed and load; else None (the loaded one stays).
        The caller closes the version it replaces once nothing loads it any more."""
        try:
            signature = self.files.signature()
        except OSError as exc:  # a file is missing for a moment while it is being replaced
            log.warning("TLS files unreadable, keeping the loaded certificate: %s", exc)
            return None
        if signature == self._signature:
            return None
        self._signature = signature  # taken before reading: a later write is seen next time
        try:
            self.loaded = LoadedFiles(self.files)
        except TLSFilesError as exc:
            log.warning("keeping the loaded certificate: %s", exc)
            return None
        return self.loaded
