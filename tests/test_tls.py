"""Mutual TLS over real sockets on loopback: who may call the extender port, what the plain probe
port serves, and certificates swapped under a running server.

Covers: no client certificate → refused; a client certificate from another CA → refused; the
trusted CA's → served (hot verbs and /explain); /healthz, /readyz and /metrics (only those) on the
probe port without any certificate; renewed server certificate and client CA files used by new
connections without a restart (the same process and snapshot), a half-renewed pair ignored
until complete; keys the server cannot sign with refused; config that cannot work refused;
/explain switched off.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.api.server import Runtime, create_app
from app.api.tls import TLSFiles, TLSFilesError, build_context, check_key_type
from app.config import ConfigError, load_settings
from app.state.readiness import Readiness
from tests.builders import extender_of
from tests.pki import Pki, client, make_pki, self_signed, write_pem
from tests.serving import ROOT, Served, free_port, serve_demo, serve_refused

FILTER_BODY = (ROOT / "examples" / "filter-gpu-pod.json").read_bytes()


@dataclass
class Running:
    pki: Pki
    served: Served
    url: str
    probe_url: str


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    port, probe_port = free_port(), free_port()
    with serve_demo(port, pki.env(probe_port), listeners=2) as served:
        yield Running(pki, served, f"https://127.0.0.1:{port}", f"http://127.0.0.1:{probe_port}")


def refused(running: Running, certificate: trustme.LeafCert | None) -> bool:
    """Whether the extender port drops a client presenting ``certificate`` without any HTTP
    response (the TLS handshake rejected it)."""
    with client(running.pki.server_ca, certificate) as c:
        try:
            c.post(f"{running.url}/filter", content=FILTER_BODY)
        except httpx.TransportError:
            return True
    return False


def test_a_call_without_a_client_certificate_is_refused(running: Running) -> None:
    assert refused(running, None)
    assert not refused(running, running.pki.client_ca.issue_cert("placement-scheduler"))


def test_a_client_certificate_from_another_ca_is_refused(running: Running) -> None:
    assert refused(running, trustme.CA().issue_cert("placement-scheduler"))
    assert not refused(running, running.pki.client_ca.issue_cert("placement-scheduler"))


def test_the_trusted_client_certificate_is_served(running: Running) -> None:
    scheduler = running.pki.client_ca.issue_cert("placement-scheduler")
    with client(running.pki.server_ca, scheduler) as c:
        reply = c.post(f"{running.url}/filter", content=FILTER_BODY)
        assert reply.status_code == 200 and reply.json()["NodeNames"]
        explained = c.post(f"{running.url}/explain?format=text", content=FILTER_BODY)
        assert explained.status_code == 200 and "PASS" in explained.text
        assert c.post(f"{running.url}/prioritize", content=FILTER_BODY).status_code == 200


def test_the_probe_port_serves_probes_and_metrics_to_anyone(running: Running) -> None:
    with httpx.Client(timeout=10) as plain:
        assert plain.get(f"{running.probe_url}/healthz").status_code == 200
        assert plain.get(f"{running.probe_url}/readyz").status_code == 200
        metrics = plain.get(f"{running.probe_url}/metrics")
        assert "placement_extender_snapshot_nodes 23.0" in metrics.text
        # ...and nothing else: the verbs and /explain need the client certificate.
        for path in ("/filter", "/prioritize", "/bind", "/explain"):
            assert plain.post(f"{running.probe_url}{path}", content=FILTER_BODY).status_code == 404


def served_certificate(port: int, ca: trustme.CA, certificate: trustme.LeafCert) -> bytes:
    """The DER certificate the server presents to a new connection."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    certificate.configure_cert(context)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert tls.recv(64).startswith(b"HTTP/1.1 200")
        return der


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def test_renewed_files_are_used_by_new_connections_without_a_restart(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    scheduler = pki.client_ca.issue_cert("placement-scheduler")
    first = pki.server_ca.issue_cert("127.0.0.1")
    pki.write_server(first)
    port = free_port()
    env = {**pki.env(free_port()), "PLACEMENT_EXTENDER_SERVER__TLS_RELOAD_CHECK_SECONDS": "0.1"}
    with serve_demo(port, env, listeners=2) as served:
        pid = served.process.pid
        assert served_certificate(port, pki.server_ca, scheduler) == der(first)

        # A renewal caught half-way (new certificate, old key) is not used...
        renewed = pki.server_ca.issue_cert("127.0.0.1")
        write_pem(renewed.cert_chain_pems[0], pki.cert)
        served.wait_for_log("keeping the loaded certificate")
        assert served_certificate(port, pki.server_ca, scheduler) == der(first)
        # ...and the complete one is, from the next connection on (once the server noticed).
        write_pem(renewed.private_key_pem, pki.key)
        served.wait_for_log(RENEWED)
        assert served_certificate(port, pki.server_ca, scheduler) == der(renewed)

        # A new client CA: certificates of the old one are refused from now on.
        new_client_ca = trustme.CA()
        write_pem(new_client_ca.cert_pem, pki.client_ca_file)
        served.wait_for_log(RENEWED, count=2)
        with client(pki.server_ca, scheduler) as old, pytest.raises(httpx.TransportError):
            old.get(f"https://127.0.0.1:{port}/healthz")
        with client(pki.server_ca, new_client_ca.issue_cert("placement-scheduler")) as new:
            assert new.get(f"https://127.0.0.1:{port}/healthz").status_code == 200
        assert served.process.pid == pid and served.process.poll() is None
        assert sum("snapshot loaded" in line for line in served.log) == 1  # one, kept throughout


RENEWED = "TLS files changed"


def test_unloadable_tls_files_are_named(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    with pytest.raises(TLSFilesError, match="client CA"):
        build_context(TLSFiles(str(pki.cert), str(pki.key), str(tmp_path / "missing.crt")))
    with pytest.raises(TLSFilesError, match=r"tls\.crt"):
        build_context(TLSFiles(str(pki.cert), str(pki.client_ca_file)))  # key is not a key


def test_an_unloadable_client_ca_stops_serve_with_one_line(tmp_path: Path) -> None:
    env = make_pki(tmp_path).env(free_port())
    env["PLACEMENT_EXTENDER_SERVER__TLS_CLIENT_CA_FILE"] = str(tmp_path / "missing.crt")
    stderr = serve_refused(env)
    assert stderr.startswith("placement-extender: cannot load TLS client CA ")
    assert "missing.crt" in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("curve", "supported"),
    [(ec.SECP256R1(), True), (ec.SECP384R1(), True), (ec.SECP521R1(), False)],
)
@pytest.mark.parametrize(
    "key_format",
    [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL],
)
def test_keys_are_checked_for_what_the_server_can_sign_with(
    curve: ec.EllipticCurve, supported: bool, key_format: serialization.PrivateFormat
) -> None:
    _, key = self_signed(curve, key_format)
    if supported:
        check_key_type(key, "tls.key")
    else:
        with pytest.raises(TLSFilesError, match="unsupported key type"):
            check_key_type(key, "tls.key")


def test_a_key_the_server_cannot_sign_with_stops_serve_with_one_line(tmp_path: Path) -> None:
    """OpenSSL loads a P-521 key; the server's TLS library (rustls with ring) cannot sign with
    it and would end the process, so it is refused before serving (and a renewal to one is
    logged and not used, like a key that does not match its certificate)."""
    cert, key = self_signed(ec.SECP521R1(), serialization.PrivateFormat.PKCS8)
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    env = {"PLACEMENT_EXTENDER_SERVER__TLS_CERT_FILE": str(tmp_path / "tls.crt"),
           "PLACEMENT_EXTENDER_SERVER__TLS_KEY_FILE": str(tmp_path / "tls.key")}  # fmt: skip
    stderr = serve_refused(env)
    assert stderr.startswith("placement-extender: TLS key ")
    assert "unsupported key type" in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ({"tls_client_ca_file": "/ca.crt"}, "tls_client_ca_file needs"),
        ({"tls_cert_file": "/tls.crt"}, "go together"),
        ({"probe_port": 8888}, "must differ"),
    ],
)
def test_settings_that_cannot_work_are_refused(server: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(server=server)


async def test_explain_can_be_switched_off() -> None:
    extender = extender_of([], [], server={"explain": False})
    runtime = Runtime(settings=extender.settings, readiness=Readiness(), extender=extender)
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://extender") as c:
        reply = await c.post("/explain", content=FILTER_BODY)
        assert reply.status_code == 404 and "server.explain" in reply.json()["Error"]
        assert (await c.post("/filter", content=FILTER_BODY)).status_code == 200
