"""HTTP behaviour of the routes: bad input gets a clear answer and never a 500."""

from __future__ import annotations

import httpx

from app.api.server import Runtime, create_app
from tests.builders import P, args_body, node, pod
from tests.conftest import ClientFactory

NODES = [node("cpu-1"), node("gpu-1", gpus=4, product="NVIDIA-A10G")]


async def test_malformed_json_is_400_with_json_message(make_client: ClientFactory) -> None:
    client = make_client(NODES)
    for path in ("/filter", "/prioritize", "/explain"):
        reply = await client.post(path, content=b"{not json")
        assert reply.status_code == 400
        assert "not valid JSON" in reply.json()["Error"]


async def test_body_without_pod_is_400(make_client: ClientFactory) -> None:
    reply = await make_client(NODES).post("/filter", json={"NodeNames": ["cpu-1"]})
    assert reply.status_code == 400
    assert reply.json() == {"Error": "request body has no Pod"}


async def test_unusable_annotation_is_200_with_error_naming_it(make_client: ClientFactory) -> None:
    bad = pod("p", gpus=1, annotations={P + "gpu-memory": "lots"})
    reply = await make_client(NODES).post("/filter", content=args_body(bad, ["gpu-1"]))
    assert reply.status_code == 200
    error = reply.json()["Error"]
    assert "placement-extender.io/gpu-memory='lots'" in error and "default/p" in error


async def test_malformed_request_quantity_is_200_with_error(make_client: ClientFactory) -> None:
    bad = pod("p", cpu="two")
    reply = await make_client(NODES).post("/filter", content=args_body(bad, ["cpu-1"]))
    assert reply.status_code == 200
    assert "'two'" in reply.json()["Error"]


async def test_prioritize_with_unusable_annotation_is_422(make_client: ClientFactory) -> None:
    bad = pod("p", annotations={P + "preemptible": "maybe"})
    reply = await make_client(NODES).post("/prioritize", content=args_body(bad, ["cpu-1"]))
    assert reply.status_code == 422
    assert "preemptible" in reply.json()["Error"]


async def test_body_over_the_limit_is_413(make_client: ClientFactory) -> None:
    client = make_client(NODES, server={"max_body_bytes": 2048})
    big = args_body(pod("p"), [f"node-{i}" for i in range(500)])
    reply = await client.post("/filter", content=big)
    assert reply.status_code == 413
    assert "2048" in reply.json()["Error"]


async def test_unknown_node_fails_alone_with_reason(make_client: ClientFactory) -> None:
    reply = await make_client(NODES).post(
        "/filter", content=args_body(pod("p", cpu="1"), ["cpu-1", "ghost"])
    )
    data = reply.json()
    assert data["Error"] == ""
    assert data["NodeNames"] == ["cpu-1"]
    assert data["FailedNodes"] == {"ghost": "unknown node"}


async def test_prioritize_scores_unknown_node_zero(make_client: ClientFactory) -> None:
    reply = await make_client(NODES).post(
        "/prioritize", content=args_body(pod("p"), ["ghost", "cpu-1"])
    )
    assert reply.json()[0] == {"Host": "ghost", "Score": 0}


async def test_explain_reports_every_failure_and_score_parts(make_client: ClientFactory) -> None:
    client = make_client(NODES)
    gpu_pod = pod("p", gpus=1, cpu="1", annotations={P + "gpu-types": "T4"})
    data = (await client.post("/explain", content=args_body(gpu_pod, ["cpu-1", "gpu-1"]))).json()
    by_node = {entry["node"]: entry for entry in data["nodes"]}
    assert by_node["gpu-1"]["failures"] == [
        {"predicate": "GPUType", "reason": "gpu type A10G not in [T4]"}
    ]
    assert by_node["cpu-1"]["failures"][0]["reason"].startswith("nvidia.com/gpu: 0 free of 0")
    cpu_pod = pod("q", cpu="1")
    passed = (await client.post("/explain", content=args_body(cpu_pod, ["cpu-1"]))).json()["nodes"][
        0
    ]
    assert passed["passed"] and set(passed["score_components"]) == {
        "pool_priority",
        "fit",
        "affinity",
    }
    text = (
        await client.post("/explain?format=text", content=args_body(gpu_pod, ["cpu-1", "gpu-1"]))
    ).text
    assert "FAIL gpu-1" in text and "GPUType: gpu type A10G not in [T4]" in text


async def test_health_and_readiness(make_client: ClientFactory, not_ready_runtime: Runtime) -> None:
    ready = make_client(NODES)
    assert (await ready.get("/healthz")).status_code == 200
    assert (await ready.get("/readyz")).status_code == 200
    transport = httpx.ASGITransport(app=create_app(not_ready_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as loading:
        assert (await loading.get("/healthz")).status_code == 200
        readyz = await loading.get("/readyz")
        assert readyz.status_code == 503 and "loading" in readyz.text
        reply = await loading.post("/filter", content=args_body(pod("p"), ["cpu-1"]))
        assert reply.status_code == 503 and "not ready" in reply.json()["Error"]


async def test_bind_without_api_server_answers_with_error(make_client: ClientFactory) -> None:
    reply = await make_client(NODES).post(
        "/bind", json={"PodName": "p", "PodNamespace": "default", "PodUID": "u", "Node": "cpu-1"}
    )
    assert reply.status_code == 200
    assert "without an API server" in reply.json()["Error"]


async def test_other_methods_and_paths_go_to_the_framework(make_client: ClientFactory) -> None:
    client = make_client(NODES)
    assert (await client.get("/filter")).status_code == 405
    assert (await client.get("/nope")).status_code == 404
