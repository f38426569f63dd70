"""Over real sockets on loopback: a stalled client cannot hold the hot verbs, and SIGTERM with
binds in flight leaves every one bound or released — over plain HTTP (uvicorn) and over mutual
TLS (the HTTP/2 server, kube-scheduler's calls multiplexed on one connection)."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app.api.server import Runtime, create_app
from app.state.ledger import parse_ledger
from app.state.readiness import Readiness
from tests.builders import P, args_body, extender_of, lease, node, pod
from tests.pki import make_pki
from tests.serving import serve_demo
from tests.standin import ApiServerStandIn

ROOT = Path(__file__).parent.parent
READ_TIMEOUT = 2.0


def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll another process's state (there is no event to await across processes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} after {timeout:g}s")
        time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[str]:
    """The extender app under a real uvicorn (httptools) on a loopback port; yields its URL."""
    extender = extender_of([node("cpu-1")], server={"read_timeout_seconds": READ_TIMEOUT})
    runtime = Runtime(settings=extender.settings, readiness=Readiness(), extender=extender)
    config = uvicorn.Config(
        create_app(runtime), http="httptools", loop="asyncio", log_config=None, access_log=False
    )
    running = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    until(lambda: running.started, "started")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)
        sock.close()


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    return conn


def read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_stalled_body_gets_408_and_slow_clients_do_not_hold_the_verbs(server: str) -> None:
    body = args_body(pod("p", cpu="1"), ["cpu-1"])
    stalled = connect(server)
    stalled.sendall(
        b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:10]  # ...and the rest never comes
    )
    started = time.monotonic()
    slowloris = [connect(server) for _ in range(20)]
    for conn in slowloris:
        conn.sendall(b"POST /filter HTTP/1.1\r\nHost: x\r\nContent-Le")  # headers never end
    with httpx.Client(base_url=server) as client:
        for _ in range(5):  # the verbs are served meanwhile...
            reply = client.post("/filter", content=body)
            assert reply.status_code == 200 and reply.json()["NodeNames"] == ["cpu-1"]
    stalled.setblocking(False)
    with pytest.raises(BlockingIOError):  # ...while the stalled call is still waiting
        stalled.recv(1)
    stalled.setblocking(True)
    answer = read_all(stalled)  # ends: the server closes the connection after its 408
    waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 ")
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert json.loads(payload) == {"Error": f"request body not received within {READ_TIMEOUT:g}s"}
    assert READ_TIMEOUT <= waited < READ_TIMEOUT + 10  # bounded
    for conn in (stalled, *slowloris):
        conn.close()


# ---- SIGTERM --------------------------------------------------------------------------------

SHUTDOWN_DELAY = 3.0
API_HANG = 4.5  # longer than the delay; within the per-call timeout and the bind budget


def kubeconfig(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "standin",
            "clusters": [{"name": "standin", "cluster": {"server": url}}],
            "users": [{"name": "standin", "user": {}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "standin"}}],
        })
    )  # fmt: skip
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def refused(url: str, verify: ssl.SSLContext | bool) -> bool:
    """No new connection is served: refused, or (a connection the kernel had queued as the
    listener closed) reset or dropped without an answer."""
    try:
        httpx.get(f"{url}/healthz", timeout=1, verify=verify)
    except (httpx.NetworkError, httpx.RemoteProtocolError):
        return True
    return False


@pytest.mark.parametrize("tls", [False, True], ids=["plain-http", "mutual-tls-http2"])
def test_sigterm_with_binds_in_flight_ends_every_bind_bound_or_released(
    apiserver: ApiServerStandIn, tmp_path: Path, tls: bool
) -> None:
    targets = {"slow": "a", "refused": "b", "fast": "c"}  # one node each: no waiting for turns
    for name in targets.values():
        apiserver.add_node(node(name, cpu="8"))
        apiserver.add_lease(lease(name))  # each reservation is a PATCH of its Lease
    pods = {name: apiserver.add_pod(pod(name, cpu="1")) for name in targets}
    port = free_port()
    env = {
        **os.environ,
        "PLACEMENT_EXTENDER_SERVER__SHUTDOWN_DELAY_SECONDS": str(SHUTDOWN_DELAY),
        "PLACEMENT_EXTENDER_BIND__REQUEST_TIMEOUT_SECONDS": "5",
        "PLACEMENT_EXTENDER_BIND__BUDGET_SECONDS": "7.5",
    }
    verify: ssl.SSLContext | bool = True
    if tls:
        (tmp_path / "pki").mkdir()
        pki = make_pki(tmp_path / "pki")
        env.update(pki.env(free_port()))
        verify = ssl.create_default_context()
        pki.server_ca.configure_trust(verify)
        pki.client_ca.issue_cert("placement-scheduler").configure_cert(verify)
    command = [sys.executable, "-m", "app", "serve", "--kubeconfig",
               str(kubeconfig(tmp_path, apiserver.base_url)), "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    extender = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    replies: dict[str, Any] = {}
    # HTTP/1.1 (the drain of an HTTP/2 connection: tests/test_http2.py): httpx's HTTP/2 client
    # takes the server's graceful GOAWAY for the end of the connection, streams in flight too.
    shared = httpx.Client(verify=verify, timeout=10)

    def readyz() -> int:
        return httpx.get(f"{url}/readyz", verify=verify).status_code

    try:
        until(lambda: not refused(url, verify) and readyz() == 200, "ready")
        # "slow": its reservation write hangs, is refused as a conflict, and is retried: bound.
        apiserver.fail_next("PATCH", r"/leases/a$", status=409, hang_seconds=API_HANG)
        # "refused": its Binding hangs and is then refused: the reservation is released.
        apiserver.fail_next("POST", r"/pods/refused/binding$", status=422, hang_seconds=API_HANG)

        def bind(name: str) -> None:
            meta = pods[name]["metadata"]
            body = {"PodName": name, "PodNamespace": "default", "PodUID": meta["uid"],
                "Node": targets[name]}  # fmt: skip
            replies[name] = shared.post(f"{url}/bind", json=body)

        binds = [threading.Thread(target=bind, args=(name,)) for name in ("slow", "refused")]
        for thread in binds:
            thread.start()
        until(
            lambda: apiserver.request_count("PATCH", LEASE) >= 2
            and apiserver.request_count("POST", BINDING) >= 1,
            "both in flight (the reservation write of one, the Binding of the other)",
        )
        extender.send_signal(signal.SIGTERM)
        until(lambda: readyz() == 503, "unready")  # drops first
        bind("fast")  # still served during the delay
        until(lambda: refused(url, verify), "refusing")  # then no new connection is accepted...
        assert any(thread.is_alive() for thread in binds)  # ...while binds are still in flight
        for thread in binds:
            thread.join(timeout=10)
        assert extender.wait(timeout=20) in (0, -signal.SIGTERM)
    finally:
        shared.close()
        if extender.poll() is None:
            extender.kill()
            extender.wait()
    assert {name: reply.status_code for name, reply in replies.items()} == dict.fromkeys(
        pods, 200
    )
    errors = {name: reply.json()["Error"] for name, reply in replies.items()}
    assert errors["fast"] == "" and errors["slow"] == ""
    assert errors["refused"].startswith("binding the pod: 422")
    reserved = set()
    for name in targets.values():
        stored = apiserver.get_lease("default", name) or {"metadata": {}}
        ledger = stored["metadata"].get("annotations", {}).get(P + "reservations")
        reserved |= {(entry.pod, name) for entry in parse_ledger(ledger)}
    bound = set()
    for name in targets:
        found = apiserver.get_pod("default", name) or {}
        if found["spec"].get("nodeName"):
            bound.add((f"default/{name}", found["spec"]["nodeName"]))
    assert bound == {("default/fast", "c"), ("default/slow", "a")}
    assert reserved == bound  # no reservation without its Binding


LEASE = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
BINDING = "/api/v1/namespaces/{namespace}/pods/{name}/binding"


def test_the_probe_listener_has_its_own_address() -> None:
    """``server.host`` 127.0.0.1 keeps the verbs to the pod; ``server.probe_host`` puts the
    probes and /metrics on another address (the chart's scheduler-pod topology: the pod's IP)."""
    port, probe_port = free_port(), free_port()
    env = {
        "PLACEMENT_EXTENDER_SERVER__PROBE_PORT": str(probe_port),
        "PLACEMENT_EXTENDER_SERVER__PROBE_HOST": "127.0.0.2",  # another address of loopback
    }
    with serve_demo(port, env, listeners=2), httpx.Client(timeout=5) as client:
        assert client.get(f"http://127.0.0.2:{probe_port}/readyz").status_code == 200
        body = (ROOT / "examples" / "filter-gpu-pod.json").read_bytes()
        assert client.post(f"http://127.0.0.1:{port}/filter", content=body).status_code == 200
        for url in (f"http://127.0.0.2:{port}/filter", f"http://127.0.0.1:{probe_port}/readyz"):
            with pytest.raises(httpx.ConnectError):
                client.post(url, content=body)
