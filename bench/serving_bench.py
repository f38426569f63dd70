"""The extender process's CPU per call, by how it is served (``python -m bench.serving_bench``).

``make run``'s command (the demo cluster) is started once per set-up, and one client sends
``--calls`` filter calls one after another, as kube-scheduler sends a pod's calls; the figure is
the server process's user + system CPU over the calls, divided by them (the client's CPU is not
counted). Set-ups:

* ``plain``: HTTP/1.1 on one kept-alive connection (uvicorn), as on loopback;
* ``tls-h2``: mutual TLS, HTTP/2 on one connection (the TLS server, kube-scheduler's case);
* ``tls-h1``: mutual TLS, HTTP/1.1 on one kept-alive connection (the TLS server, ``server.http2:
  false``);
* ``tls-h1-dial``: mutual TLS, HTTP/1.1 with a new connection (a full handshake) every second
  call — kube-scheduler's pattern over HTTP/1.1.
"""

from __future__ import annotations

import argparse
import os
import ssl
import tempfile
import time
from pathlib import Path

import httpx
import trustme

from bench.common import machine, markdown_table
from tests.serving import ROOT, free_port, serve_demo

SETUPS = ("plain", "tls-h2", "tls-h1", "tls-h1-dial")
BODY = (ROOT / "examples" / "filter-gpu-pod.json").read_bytes()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(setup: str, calls: int, directory: Path) -> float:
    """Server CPU milliseconds per call."""
    env: dict[str, str] = {}
    verify: ssl.SSLContext | bool = True
    if setup != "plain":
        server_ca, client_ca = trustme.CA(), trustme.CA()
        leaf = server_ca.issue_cert("127.0.0.1")
        leaf.cert_chain_pems[0].write_to_path(str(directory / "tls.crt"))
        leaf.private_key_pem.write_to_path(str(directory / "tls.key"))
        client_ca.cert_pem.write_to_path(str(directory / "ca.crt"))
        env = {
            "PLACEMENT_EXTENDER_SERVER__TLS_CERT_FILE": str(directory / "tls.crt"),
            "PLACEMENT_EXTENDER_SERVER__TLS_KEY_FILE": str(directory / "tls.key"),
            "PLACEMENT_EXTENDER_SERVER__TLS_CLIENT_CA_FILE": str(directory / "ca.crt"),
            "PLACEMENT_EXTENDER_SERVER__HTTP2": str(setup == "tls-h2").lower(),
        }
        verify = ssl.create_default_context()
        server_ca.configure_trust(verify)
        client_ca.issue_cert("placement-scheduler").configure_cert(verify)
    port = free_port()
    scheme = "http" if setup == "plain" else "https"
    url = f"{scheme}://127.0.0.1:{port}/filter"
    with serve_demo(port, env) as served:
        client = httpx.Client(verify=verify, http2=setup == "tls-h2", timeout=10)
        for _ in range(200):  # warm up
            client.post(url, content=BODY).raise_for_status()
        before = cpu_seconds(served.process.pid)
        started = time.monotonic()
        for call in range(calls):
            if setup == "tls-h1-dial" and call % 2 == 0:
                client.close()
                client = httpx.Client(verify=verify, timeout=10)
            client.post(url, content=BODY).raise_for_status()
        spent = cpu_seconds(served.process.pid) - before
        elapsed = time.monotonic() - started
        client.close()
    print(f"{setup}: {calls / elapsed:.0f} calls/s", flush=True)
    return 1000 * spent / calls


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--setups", default=",".join(SETUPS))
    args = parser.parse_args()
    print(f"machine: {machine()}")
    rows = []
    for setup in args.setups.split(","):
        with tempfile.TemporaryDirectory() as directory:
            rows.append([setup, f"{measure(setup, args.calls, Path(directory)):.3f}"])
    print(markdown_table(["set-up", "server CPU ms per call"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
