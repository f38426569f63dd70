"""The same policy answers whether the snapshot came from a file or from the API server
(through the stand-in and the real kubernetes client)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import load_settings
from app.extender import Extender
from app.state.file_source import load_snapshot
from app.state.snapshot import NodeParsing, Snapshot
from app.wire.codec import decode_extender_args
from tests.builders import P, args_body, pod
from tests.live import live_runtime
from tests.standin import ApiServerStandIn

DEMO = Path(__file__).parent.parent / "examples" / "demo-cluster.yaml"


def demo_objects() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = yaml.safe_load(DEMO.read_text())["items"]
    return items


def node_names() -> list[str]:
    return [o["metadata"]["name"] for o in demo_objects() if o["kind"] == "Node"]


def file_extender() -> Extender:
    """The demo cluster, from its file."""
    snapshot = Snapshot(NodeParsing.from_settings(load_settings()))
    load_snapshot(DEMO, snapshot)
    return Extender(load_settings(), snapshot)


@asynccontextmanager
async def apiserver_extender() -> AsyncIterator[Extender]:
    """The demo cluster, served by the stand-in and watched through the kubernetes client."""
    with ApiServerStandIn() as apiserver:
        for obj in demo_objects():
            (apiserver.add_node if obj["kind"] == "Node" else apiserver.add_pod)(obj)
        async with live_runtime(apiserver) as (runtime, _, changes):
            await changes.until(lambda: runtime.readiness.ready)
            assert runtime.extender is not None
            yield runtime.extender


@pytest.fixture(params=["file", "apiserver"])
async def extender(request: pytest.FixtureRequest) -> AsyncIterator[Extender]:
    if request.param == "file":
        yield file_extender()
        return
    async with apiserver_extender() as live:
        yield live


PODS = {
    "gpu-a10g-or-t4": pod(
        "g1", gpus=1, cpu="4", memory="16Gi", annotations={P + "gpu-types": "A10G,T4"}
    ),
    "gpu-big-memory": pod("g2", gpus=2, annotations={P + "gpu-memory": "40000"}),
    "cpu-endpoint": pod(
        "c1", cpu="2", memory="4Gi", annotations={P + "container-id": "endpoint-api"}
    ),
    "batch-pool": pod("b1", cpu="8", annotations={P + "pool": "batch"}),
    "spot-tolerant": pod("s1", cpu="1", annotations={P + "preemptible": "true"}),
}


def answer(extender: Extender, verb: str, body: bytes) -> Any:
    args = decode_extender_args(body)
    return json.loads(extender.filter(args) if verb == "filter" else extender.prioritize(args))


@pytest.mark.parametrize("case", sorted(PODS))
async def test_policy_answers(extender: Extender, case: str) -> None:
    body = args_body(PODS[case], node_names())
    kept = answer(extender, "filter", body)["NodeNames"]
    expected = {
        "gpu-a10g-or-t4": ["gpu-t4-2", "gpu-t4-3", "gpu-a10g-2", "gpu-a10g-3", "gpu-a10g-4"],
        "gpu-big-memory": ["gpu-a100-1", "gpu-a100-2", "gpu-a100-3", "gpu-h100-2"],
        "cpu-endpoint": [f"cpu-general-{i}" for i in range(1, 7)],
        "batch-pool": ["cpu-batch-1", "cpu-batch-2"],
        "spot-tolerant": [f"cpu-general-{i}" for i in range(1, 7)]
        + ["cpu-general-spot-1", "cpu-general-spot-2"],
    }[case]
    assert kept == expected
    scores = {e["Host"]: e["Score"] for e in answer(extender, "prioritize", body)}
    if case == "gpu-a10g-or-t4":
        assert min(scores[n] for n in kept if "a10g" in n) > max(
            scores[n] for n in kept if "t4" in n
        )


async def test_file_and_apiserver_give_identical_replies() -> None:
    from_file = file_extender()
    async with apiserver_extender() as from_apiserver:
        for spec in PODS.values():
            body = args_body(spec, node_names())
            for verb in ("filter", "prioritize"):
                assert answer(from_file, verb, body) == answer(from_apiserver, verb, body)
