"""``simulate`` agrees with the live path: the demo cluster and the example's 100 pending pods,
once through ``simulate`` and once, pod by pod in the same queue order, through the extender's
filter → prioritize (on the kept nodes) → bind against the API-server stand-in, waiting for the
watch to show each pod bound. Same nodes and the same grouped reasons; ties (equal extender
scores, which kube-scheduler breaks with its own plugins' scores and then at random) go to the
lowest node name in both.

The live replica does not reserve ahead: its guesses follow the order pods were first seen
pending (here the stand-in's list, sorted by name, as kube-scheduler's own queue would take
them), not this file's order, and ``simulate`` models placements, not those holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.config import load_settings
from app.simulate.pending import pending_pods
from app.simulate.run import simulate
from app.sources import FileSource
from app.state.file_source import kube_objects, read_documents
from app.wire.codec import decode_extender_args
from tests.builders import args_body
from tests.live import Replica, replicas
from tests.standin import ApiServerStandIn

EXAMPLES = Path(__file__).parent.parent / "examples"
CLUSTER, PENDING = EXAMPLES / "demo-cluster.yaml", EXAMPLES / "pending-pods.yaml"


def _json_ready(obj: dict[str, Any]) -> dict[str, Any]:
    """YAML timestamps are datetimes; the stand-in stores JSON."""
    loaded: dict[str, Any] = json.loads(json.dumps(obj, default=str))
    return loaded


async def live_decision(
    replica: Replica, created: dict[str, Any], names: list[str]
) -> tuple[str | None, dict[str, int]]:
    """What the extender's verbs decide for one pod; binds it to the best node if any."""
    extender = replica.extender
    filtered = json.loads(extender.filter(decode_extender_args(args_body(created, names))))
    assert filtered["Error"] == ""
    reasons: dict[str, int] = {}
    for failed in (filtered["FailedNodes"], filtered["FailedAndUnresolvableNodes"]):
        for reason in failed.values():
            reasons[reason] = reasons.get(reason, 0) + 1
    kept = filtered["NodeNames"]
    if not kept:
        return None, reasons
    scored = json.loads(extender.prioritize(decode_extender_args(args_body(created, kept))))
    best = min(scored, key=lambda host: (-host["Score"], host["Host"]))["Host"]
    assert await replica.bind(created, best) == ""
    uid = created["metadata"]["uid"]
    await replica.changes.until(lambda: replica.snapshot.is_bound(uid))
    return best, {}


async def test_simulate_places_the_example_pods_where_the_live_verbs_do(
    apiserver: ApiServerStandIn,
) -> None:
    settings = load_settings()
    pods = pending_pods(read_documents(PENDING), str(PENDING))
    expected = simulate(settings, FileSource(CLUSTER).load(settings), pods)
    assert expected.placed > 50 and expected.unplaced > 5  # the example exercises both

    apiserver.load_objects(_json_ready(o) for o in kube_objects(read_documents(CLUSTER)))
    apiserver.load_objects(_json_ready(o) for o in kube_objects(read_documents(PENDING)))
    async with replicas(apiserver, 1, bind={"reserve_ahead": 0}) as [replica]:
        names = sorted(replica.snapshot.nodes)
        actual = []
        for pending in pods:
            created = apiserver.get_pod(pending.pod.metadata.namespace, pending.pod.metadata.name)
            assert created is not None
            actual.append(await live_decision(replica, created, names))

    assert [(p.node, p.reasons) for p in expected.placements] == actual
