"""Throwaway PKI for the TLS tests: the extender's serving certificate, the client CA it trusts,
files for both written as kubelet updates a Secret volume, and HTTPS clients."""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def write_pem(blob: trustme.Blob, path: Path) -> Path:
    """Write like kubelet updates a Secret volume: the new file replaces the old one atomically."""
    staging = path.with_name(path.name + ".new")
    blob.write_to_path(str(staging))
    os.replace(staging, path)
    return path


@dataclass
class Pki:
    """A server certificate, the client CA the extender trusts and files for both."""

    dir: Path
    server_ca: trustme.CA
    client_ca: trustme.CA

    @property
    def cert(self) -> Path:
        return self.dir / "tls.crt"

    @property
    def key(self) -> Path:
        return self.dir / "tls.key"

    @property
    def client_ca_file(self) -> Path:
        return self.dir / "client-ca.crt"

    def write_server(self, leaf: trustme.LeafCert) -> None:
        write_pem(leaf.cert_chain_pems[0], self.cert)
        write_pem(leaf.private_key_pem, self.key)

    def env(self, probe_port: int) -> dict[str, str]:
        return {
            "PLACEMENT_EXTENDER_SERVER__TLS_CERT_FILE": str(self.cert),
            "PLACEMENT_EXTENDER_SERVER__TLS_KEY_FILE": str(self.key),
            "PLACEMENT_EXTENDER_SERVER__TLS_CLIENT_CA_FILE": str(self.client_ca_file),
            "PLACEMENT_EXTENDER_SERVER__PROBE_PORT": str(probe_port),
        }


def make_pki(directory: Path) -> Pki:
    pki = Pki(directory, trustme.CA(), trustme.CA())
    pki.write_server(pki.server_ca.issue_cert("127.0.0.1"))
    write_pem(pki.client_ca.cert_pem, pki.client_ca_file)
    return pki


def client(
    ca: trustme.CA, certificate: trustme.LeafCert | None, *, http2: bool = False
) -> httpx.Client:
    """An HTTPS client trusting ``ca``, presenting ``certificate`` if given; with ``http2`` it
    offers HTTP/2 as kube-scheduler does (ALPN h2, then HTTP/1.1)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if certificate is not None:
        certificate.configure_cert(context)
    return httpx.Client(verify=context, timeout=10, http2=http2)


def self_signed(
    curve: ec.EllipticCurve, key_format: serialization.PrivateFormat
) -> tuple[bytes, bytes]:
    """A certificate and key (PEM) for 127.0.0.1 on ``curve``."""
    key = ec.generate_private_key(curve)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = key.private_bytes(serialization.Encoding.PEM, key_format, serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem
