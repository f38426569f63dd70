"""HTTP/2 on the extender's TLS port, over real sockets on loopback (``make run``'s command with
mutual TLS): ALPN offers h2 and still HTTP/1.1; calls are answered over both; the HTTP/2 limits
the server announces hold (streams past the bound refused, a header list past the bound answered
431, a rapid-reset flood ends the connection); a stalled body gets 408 and an oversized one 413
on its own stream while the connection's other streams are served, and over HTTP/1.1 a stalled
body gets 408 and the connection closed.

The raw HTTP/2 client is the ``h2`` state machine, which lets a test send what a well-behaved
client would not.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
import trustme

from tests.pki import Pki, client, make_pki
from tests.serving import ROOT, free_port, serve_demo

FILTER_BODY = (ROOT / "examples" / "filter-gpu-pod.json").read_bytes()
MAX_STREAMS = 4
READ_TIMEOUT = 2.0
MAX_BODY = 4096


@dataclass
class Running:
    pki: Pki
    port: int
    scheduler: trustme.LeafCert

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def tls(self, alpn: list[str] | None) -> ssl.SSLSocket:
        """A TLS connection presenting the scheduler's certificate, offering ``alpn``."""
        context = ssl.create_default_context()
        self.pki.server_ca.configure_trust(context)
        self.scheduler.configure_cert(context)
        if alpn is not None:
            context.set_alpn_protocols(alpn)
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        return context.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    port = free_port()
    env = {
        **pki.env(free_port()),
        "PLACEMENT_EXTENDER_SERVER__HTTP2_MAX_CONCURRENT_STREAMS": str(MAX_STREAMS),
        "PLACEMENT_EXTENDER_SERVER__READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "PLACEMENT_EXTENDER_SERVER__MAX_BODY_BYTES": str(MAX_BODY),
    }
    with serve_demo(port, env, listeners=2):
        yield Running(pki, port, pki.client_ca.issue_cert("placement-scheduler"))


def test_alpn_offers_h2_and_http_1_1(running: Running) -> None:
    for offered, chosen in ((["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1"), (None, None)):
        with running.tls(offered) as tls:
            assert tls.selected_alpn_protocol() == chosen


def test_calls_are_answered_over_http2_and_http_1_1(running: Running) -> None:
    for http2, version in ((True, "HTTP/2"), (False, "HTTP/1.1")):
        with client(running.pki.server_ca, running.scheduler, http2=http2) as c:
            replies = [c.post(f"{running.url}/filter", content=FILTER_BODY) for _ in range(3)]
            replies.append(c.post(f"{running.url}/prioritize", content=FILTER_BODY))
        for reply in replies:
            assert reply.http_version == version
            assert reply.status_code == 200
        assert replies[0].json()["NodeNames"]
    # A client that offers no ALPN at all speaks HTTP/1.1.
    with running.tls(None) as tls:
        tls.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert tls.recv(64).startswith(b"HTTP/1.1 200")


def test_every_route_is_served_over_http2(running: Running) -> None:
    """The hot verbs are served by the RSGI front, the rest by FastAPI through its bridge."""
    with client(running.pki.server_ca, running.scheduler, http2=True) as c:
        assert c.get(f"{running.url}/healthz").text == "ok"
        assert c.get(f"{running.url}/readyz").status_code == 200
        metrics = c.get(f"{running.url}/metrics")
        assert "placement_extender_snapshot_nodes 23.0" in metrics.text
        assert metrics.headers["content-type"].startswith("text/plain")
        explained = c.post(f"{running.url}/explain?format=text", content=FILTER_BODY)
        assert explained.status_code == 200 and "PASS" in explained.text
        wrong = c.get(f"{running.url}/filter")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
        assert c.get(f"{running.url}/nowhere").status_code == 404
        assert {r.http_version for r in (explained, wrong)} == {"HTTP/2"}


class Http2:
    """A raw HTTP/2 client connection: send frames, collect the server's events."""

    def __init__(self, running: Running) -> None:
        self.sock = running.tls(["h2"])
        assert self.sock.selected_alpn_protocol() == "h2"
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.events: list[h2.events.Event] = []
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def request(self, stream: int, path: str, length: int, body: bytes = b"") -> None:
        headers = [(":method", "POST"), (":path", path), (":scheme", "https"),
                   (":authority", "127.0.0.1"), ("content-length", str(length))]  # fmt: skip
        self.conn.send_headers(stream, headers, end_stream=length == 0)
        if body:
            self.conn.send_data(stream, body, end_stream=len(body) == length)

    def until(self, done: type[h2.events.Event], count: int = 1, timeout: float = 30) -> None:
        """Read until ``count`` events of type ``done`` have arrived (or the server hung up)."""
        deadline = time.monotonic() + timeout
        while sum(isinstance(e, done) for e in self.events) < count:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = self.sock.recv(65536)
            if not data:
                return
            self.events.extend(self.conn.receive_data(data))
            self.flush()

    def of(self, kind: type[h2.events.Event]) -> list[h2.events.Event]:
        return [e for e in self.events if isinstance(e, kind)]

    def replies(self) -> dict[int, tuple[int, bytes]]:
        """``{stream: (status, body)}`` of the streams answered so far."""
        status = {e.stream_id: int(dict(e.headers)[":status"])
                  for e in self.of(h2.events.ResponseReceived)}  # fmt: skip
        bodies: dict[int, bytes] = {}
        for event in self.of(h2.events.DataReceived):
            bodies[event.stream_id] = bodies.get(event.stream_id, b"") + event.data
        return {stream: (code, bodies.get(stream, b"")) for stream, code in status.items()}

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def http2(running: Running) -> Iterator[Http2]:
    connection = Http2(running)
    try:
        yield connection
    finally:
        connection.close()


def test_the_server_announces_its_limits(http2: Http2) -> None:
    http2.until(h2.events.RemoteSettingsChanged)
    (announced,) = http2.of(h2.events.RemoteSettingsChanged)
    settings = {code: change.new_value for code, change in announced.changed_settings.items()}
    assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == MAX_STREAMS
    assert settings[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] == 64 * 1024


def test_a_header_list_past_the_bound_is_refused(http2: Http2) -> None:
    http2.until(h2.events.RemoteSettingsChanged)
    headers = [(":method", "GET"), (":path", "/healthz"), (":scheme", "https"),
               (":authority", "127.0.0.1"), ("x-padding", "x" * (64 * 1024))]  # fmt: skip
    http2.conn.send_headers(1, headers, end_stream=True)
    http2.conn.send_headers(3, headers[:4], end_stream=True)
    http2.flush()
    http2.until(h2.events.StreamEnded, count=2)
    replies = http2.replies()
    assert replies[1][0] == 431  # Request Header Fields Too Large, on that stream only
    assert replies[3][0] == 200


def test_streams_past_the_bound_are_refused_and_the_others_served(http2: Http2) -> None:
    # Sent before the server's SETTINGS are read: the client does not know the bound yet.
    streams = [1 + 2 * i for i in range(MAX_STREAMS + 2)]
    for stream in streams:
        http2.request(stream, "/filter", len(FILTER_BODY))  # bodies follow
    http2.flush()
    http2.until(h2.events.StreamReset, count=2)
    refused = {e.stream_id: e.error_code for e in http2.of(h2.events.StreamReset)}
    assert refused == dict.fromkeys(streams[MAX_STREAMS:], h2.errors.ErrorCodes.REFUSED_STREAM)
    for stream in streams[:MAX_STREAMS]:
        http2.conn.send_data(stream, FILTER_BODY, end_stream=True)
    http2.flush()
    http2.until(h2.events.StreamEnded, count=MAX_STREAMS)
    replies = http2.replies()
    assert sorted(replies) == streams[:MAX_STREAMS]
    assert all(status == 200 and json.loads(body)["NodeNames"] for status, body in replies.values())


def test_a_rapid_reset_flood_ends_the_connection(http2: Http2) -> None:
    """CVE-2023-44487: streams opened and reset at once cost the client nothing and the server
    a task each; past 20 pending resets the server answers GOAWAY ENHANCE_YOUR_CALM."""
    http2.until(h2.events.RemoteSettingsChanged)
    http2.conn.remote_settings.max_concurrent_streams = 1000  # a hostile client ignores it
    for i in range(200):
        http2.request(1 + 2 * i, "/filter", 10)
        http2.conn.reset_stream(1 + 2 * i)
    http2.flush()
    http2.until(h2.events.ConnectionTerminated)
    (goaway,) = http2.of(h2.events.ConnectionTerminated)
    assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert goaway.last_stream_id < 2 * 200  # well before the flood's end
    assert not http2.of(h2.events.ResponseReceived)


def test_a_stalled_body_gets_408_and_an_oversized_one_413_on_their_own_streams(
    http2: Http2,
) -> None:
    started = time.monotonic()
    http2.request(1, "/filter", len(FILTER_BODY), FILTER_BODY[:10])  # the rest never comes
    http2.request(3, "/filter", MAX_BODY + 1)
    http2.request(5, "/filter", len(FILTER_BODY), FILTER_BODY)
    http2.flush()
    http2.until(h2.events.StreamEnded, count=3)
    replies = http2.replies()
    assert replies[5][0] == 200 and json.loads(replies[5][1])["NodeNames"]
    assert replies[3] == (413, json.dumps({"Error": f"request body over {MAX_BODY} bytes"},
                                          separators=(",", ":")).encode())  # fmt: skip
    expected = {"Error": f"request body not received within {READ_TIMEOUT:g}s"}
    assert replies[1][0] == 408 and json.loads(replies[1][1]) == expected
    assert time.monotonic() - started >= READ_TIMEOUT  # not cut before its time


def test_a_stalled_body_over_http_1_1_gets_408_and_the_connection_closed(running: Running) -> None:
    started = time.monotonic()
    with running.tls(["http/1.1"]) as tls:
        tls.sendall(b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Length: "
                    + str(len(FILTER_BODY)).encode() + b"\r\n\r\n" + FILTER_BODY[:10])  # fmt: skip
        answer = b""
        while chunk := tls.recv(65536):  # ends: the server closes the connection after its 408
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert json.loads(payload) == {"Error": f"request body not received within {READ_TIMEOUT:g}s"}
    assert time.monotonic() - started >= READ_TIMEOUT  # not cut before its time


def test_http2_can_be_switched_off(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    port = free_port()
    env = {**pki.env(free_port()), "PLACEMENT_EXTENDER_SERVER__HTTP2": "false"}
    scheduler = pki.client_ca.issue_cert("placement-scheduler")
    with serve_demo(port, env, listeners=2):
        running = Running(pki, port, scheduler)
        with running.tls(["h2", "http/1.1"]) as tls:
            assert tls.selected_alpn_protocol() == "http/1.1"
        with client(pki.server_ca, scheduler, http2=True) as c:
            reply = c.post(f"{running.url}/filter", content=FILTER_BODY)
        assert reply.http_version == "HTTP/1.1" and reply.status_code == 200
