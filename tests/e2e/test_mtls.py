"""Mutual TLS through a real kube-scheduler: the chart's profile (``enableHTTPS``, ``tlsConfig``
with the client certificate the chart issues) against an extender that requires it.

The chart's scheduler schedules and binds through the extender, over HTTP/2 (negotiated by ALPN:
all its calls on one connection); a kube-scheduler presenting a client certificate of another
install's CA is refused at the TLS handshake, so its pod is not placed and kube-scheduler
reports the extender's refusal.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import trustme

from tests.controlplane.chart import TLS_VALUES, chart_client_certificate, tls_files
from tests.controlplane.objects import (
    JSON,
    all_settled,
    bound_node,
    create_nodes,
    create_pods,
    node,
    pod,
    watch_pods,
)
from tests.e2e.conftest import Scenario

# A request's path in the log of Go's HTTP/2 client: ':path' = '/filter' (quotes escaped).
VERB_PATH = re.compile(r':path\W+= \W+/(filter|prioritize|bind)\W')


def scheduled_or_failed(name: str) -> Any:
    def done(pods: dict[str, JSON]) -> bool:
        conditions = (pods.get(name, {}).get("status") or {}).get("conditions") or ()
        failed = any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conditions)
        return name in pods and (bound_node(pods[name]) is not None or failed)

    return done


def test_the_chart_scheduler_certificate_is_served_and_another_is_refused(
    scenario: Scenario, tmp_path: Path
) -> None:
    server_ca = trustme.CA()  # the user's tls.secretName Secret
    leaf = server_ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "tls.key"))
    server_ca.cert_pem.write_to_path(str(tmp_path / "ca.crt"))
    ours = chart_client_certificate(tmp_path / "ours")
    theirs = chart_client_certificate(tmp_path / "theirs", days=365)  # another install's CA
    assert Path(theirs["ca.crt"]).read_bytes() != Path(ours["ca.crt"]).read_bytes()

    create_nodes(scenario.core, [node("node-1")])
    extender = scenario.extender({
        "PLACEMENT_EXTENDER_SERVER__TLS_CERT_FILE": str(tmp_path / "tls.crt"),
        "PLACEMENT_EXTENDER_SERVER__TLS_KEY_FILE": str(tmp_path / "tls.key"),
        "PLACEMENT_EXTENDER_SERVER__TLS_CLIENT_CA_FILE": ours["ca.crt"],
    })  # fmt: skip
    assert extender.url.startswith("https://")
    schedulers = {}
    for name, client in (("placement-scheduler", ours), ("stranger", theirs)):
        edit = tls_files(str(tmp_path / "ca.crt"), client)
        # Go's HTTP/2 client logs each connection it opens (and the headers of each request).
        schedulers[name] = scenario.scheduler(extender, name=name, values=TLS_VALUES, edit=edit,
                                              env={"GODEBUG": "http2debug=1"})  # fmt: skip

    names = [f"via-chart-cert-{i}" for i in range(6)]
    create_pods(scenario.core, [pod(name, scheduler="placement-scheduler") for name in names])
    pods = watch_pods(scenario.core, all_settled(names), timeout=60)
    assert {bound_node(pods[name]) for name in names} == {"node-1"}
    # Every call (a filter and a bind per pod: with one feasible node there is nothing to
    # prioritize) went over one HTTP/2 connection.
    log = schedulers["placement-scheduler"].log.read_text()
    extender_address = f"127.0.0.1:{extender.port}"
    opened = [line for line in log.splitlines()
              if "http2: Transport creating client conn" in line and extender_address in line]
    assert len(opened) == 1, opened  # fmt: skip
    calls = [found.group(1) for line in log.splitlines()
             if "http2: Transport encoding header" in line
             and (found := VERB_PATH.search(line))]  # fmt: skip
    assert sorted(calls) == ["bind"] * len(names) + ["filter"] * len(names)


    create_pods(scenario.core, [pod("via-other-cert", scheduler="stranger")])
    pods = watch_pods(scenario.core, scheduled_or_failed("via-other-cert"), timeout=60)
    assert bound_node(pods["via-other-cert"]) is None
    (condition,) = [c for c in pods["via-other-cert"]["status"]["conditions"]
                    if c["type"] == "PodScheduled"]  # fmt: skip
    # kube-scheduler's own words: the call to the extender failed (the handshake was refused,
    # e.g. 'Post "https://127.0.0.1:port/filter": EOF').
    assert condition["message"].startswith(f'Post "{extender.url}/filter": ')

