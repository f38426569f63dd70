"""Every recorded kube-scheduler call replays with a reply of the shape kube-scheduler accepts.

The snapshot is the recorded API server's own lists, so node names and capacities are the ones
the recording was made against.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import FIXTURES
from tests.conftest import ClientFactory

RECORDED = sorted((FIXTURES / "kube-scheduler").glob("*-filter-*.json")) + sorted(
    (FIXTURES / "kube-scheduler").glob("*-prioritize-*.json")
)
FILTER_KEYS = {"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}


def recorded_cluster() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    nodes = json.loads((FIXTURES / "kube-apiserver" / "list-nodes.json").read_text())["items"]
    pods = json.loads((FIXTURES / "kube-apiserver" / "list-pods.json").read_text())["items"]
    for item in nodes:
        item["kind"] = "Node"
    for item in pods:
        item["kind"] = "Pod"
    return nodes, pods


@pytest.fixture
def client(make_client: ClientFactory) -> httpx.AsyncClient:
    return make_client(*recorded_cluster())


def request_names(request: dict[str, Any]) -> list[str]:
    if request["NodeNames"] is not None:
        return list(request["NodeNames"])
    return [n["metadata"]["name"] for n in request["Nodes"]["items"]]


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: Path(p).stem)
async def test_recorded_request_gets_a_reply_of_the_accepted_shape(
    client: httpx.AsyncClient, path: Path
) -> None:
    call = json.loads(path.read_text())
    body = json.dumps(call["request"]).encode()
    reply = await client.post(call["path"], content=body, headers=call["headers"])
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    data = reply.json()
    names = request_names(call["request"])
    if call["verb"] == "filter":
        assert set(data) == FILTER_KEYS
        assert set(call["reply_accepted"]) <= set(data)
        assert data["Error"] == ""
        if call["request"]["NodeNames"] is not None:
            assert data["Nodes"] is None
            kept = data["NodeNames"]
        else:
            assert data["NodeNames"] is None
            items = data["Nodes"]["items"]
            kept = [n["metadata"]["name"] for n in items]
            by_name = {n["metadata"]["name"]: n for n in call["request"]["Nodes"]["items"]}
            assert all(item == by_name[item["metadata"]["name"]] for item in items)
        failed, hard = data["FailedNodes"], data["FailedAndUnresolvableNodes"]
        # every requested node is accounted for exactly once, none invented
        assert sorted([*kept, *failed, *hard]) == sorted(names)
        assert kept == [n for n in names if n in set(kept)]  # request order kept
        assert all(isinstance(r, str) and r for r in [*failed.values(), *hard.values()])
    else:
        assert [entry["Host"] for entry in data] == names
        assert all(set(entry) == {"Host", "Score"} for entry in data)
        assert all(isinstance(e["Score"], int) and 0 <= e["Score"] <= 10 for e in data)


async def test_recorded_gpu_pod_keeps_only_accepted_gpu_types(client: httpx.AsyncClient) -> None:
    for mode in ("nodecache", "fullnodes"):
        call = json.loads(
            (FIXTURES / "kube-scheduler" / f"{mode}-filter-gpu-worker.json").read_text()
        )
        data = (await client.post("/filter", json=call["request"])).json()
        kept = data["NodeNames"] or [n["metadata"]["name"] for n in data["Nodes"]["items"]]
        assert kept == ["gpu-a10g-1", "gpu-t4-1"]
        assert data["FailedAndUnresolvableNodes"] == {"gpu-h100-1": "gpu type not in [A10G,T4]"}


async def test_recorded_gpu_pod_prefers_its_first_gpu_type(client: httpx.AsyncClient) -> None:
    call = json.loads(
        (FIXTURES / "kube-scheduler" / "nodecache-prioritize-gpu-worker.json").read_text()
    )
    call["request"]["NodeNames"] = ["gpu-a10g-1", "gpu-t4-1"]
    scores = {
        e["Host"]: e["Score"]
        for e in (await client.post("/prioritize", json=call["request"])).json()
    }
    assert scores["gpu-a10g-1"] > scores["gpu-t4-1"]
