"""The command line as a user meets it: `make run`'s command serves the demo cluster, and bad
input stops it with one line that says what is wrong."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import trustme

from tests.serving import ROOT, free_port, serve_demo


def test_serves_the_demo_cluster_like_make_run() -> None:
    port = free_port()
    with serve_demo(port):
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        body = (ROOT / "examples" / "filter-gpu-pod.json").read_bytes()
        reply = httpx.post(f"{base}/filter", content=body)
        kept = reply.json()["NodeNames"]
        assert reply.status_code == 200 and kept and all("a10g" in n or "t4" in n for n in kept)
        assert "placement_extender_snapshot_nodes 23.0" in httpx.get(f"{base}/metrics").text


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "serve", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_bad_snapshot_file_is_one_line_naming_the_object(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    container = {"name": "c", "resources": {"requests": {"cpu": "two"}}}
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}}
    bad.write_text(json.dumps({"kind": "List", "items": [pod]}))
    done = run("--snapshot", str(bad))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"placement-extender: {bad}: object #0 (Pod p): quantity 'two' is not a valid "
        "Kubernetes quantity"
    )


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("bind:\n  budget_seconds: -1\n")
    done = run("--snapshot", "examples/demo-cluster.yaml", "--config", str(config))
    assert done.returncode == 2 and "budget_seconds" in done.stderr


def test_serve_without_any_cluster_config_says_what_to_pass(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "none")}
    done = run("--port", "1", env=env)
    assert done.returncode == 2
    assert "pass --kubeconfig PATH" in done.stderr and "--snapshot FILE" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_serves_https_when_given_a_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    env = {"PLACEMENT_EXTENDER_SERVER__TLS_CERT_FILE": str(cert),
           "PLACEMENT_EXTENDER_SERVER__TLS_KEY_FILE": str(key)}  # fmt: skip
    port = free_port()
    with (
        serve_demo(port, env),
        httpx.Client(verify=ssl.create_default_context(cafile=str(ca_file))) as client,
    ):
        assert client.get(f"https://127.0.0.1:{port}/readyz").status_code == 200


def test_help_reads_as_plain_text() -> None:
    for command in ([], ["serve"], ["simulate"]):
        result = subprocess.run(
            [sys.executable, "-m", "app", *command, "--help"], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert "usage: placement-extender" in result.stdout
        assert "``" not in result.stdout and ":class:" not in result.stdout, result.stdout
