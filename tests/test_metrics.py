"""GET /metrics after real traffic: the series exist and their values add up."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.api.server import Runtime, create_app
from app.config import load_settings
from app.extender import Extender
from app.observe import DecisionObserver
from app.sources import NODES, PODS, LiveSource
from app.state.readiness import Readiness
from tests.builders import P, args_body, node, pod, snapshot_of
from tests.live import Changes
from tests.standin import ApiServerStandIn

CLUSTER = [node("cpu-1"), node("cpu-2"), node("gpu-1", gpus=2, product="Tesla-T4")]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_decision_metrics_after_filter_and_prioritize_traffic() -> None:
    settings = load_settings()
    runtime = Runtime(settings=settings, readiness=Readiness())
    runtime.extender = Extender(settings, snapshot_of(CLUSTER), DecisionObserver(runtime.metrics))
    transport = httpx.ASGITransport(app=create_app(runtime))
    names = ["cpu-1", "cpu-2", "gpu-1"]
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        for i in range(3):
            await client.post("/filter", content=args_body(pod(f"c{i}", cpu="1"), names))
            await client.post("/prioritize", content=args_body(pod(f"c{i}", cpu="1"), names[:2]))
        a100 = pod("g", gpus=1, annotations={P + "gpu-types": "A100", P + "pool": "train"})
        await client.post("/filter", content=args_body(a100, names))
        await client.post("/filter", content=b"not json")
        found = samples((await client.get("/metrics")).text)
    prefix = "placement_extender_"
    assert value(found, prefix + "request_duration_seconds_count", verb="filter") == 5
    assert value(found, prefix + "requests_total", verb="filter", code="200") == 4
    assert value(found, prefix + "requests_total", verb="filter", code="400") == 1
    # three CPU pods were kept off the GPU node; the A100 pod failed everywhere
    assert value(found, prefix + "filter_rejections_total", predicate="GPUNodeReserved") == 3
    assert value(found, prefix + "filter_rejections_total", predicate="Fit/nvidia.com/gpu") == 2
    assert value(found, prefix + "unmet_demand_total", pool="train", gpu_type="A100") == 1
    given = sum(value(found, prefix + "prioritize_scores_total", score=str(s)) for s in range(11))
    assert given == 6  # 3 calls × 2 nodes
    assert value(found, prefix + "snapshot_nodes") == 0  # no source registered in this runtime
    assert value(found, prefix + "ready") == 1
    assert value(found, prefix + "bind_budget_seconds") == 0  # no binder: binding unavailable


async def test_ready_follows_readyz(not_ready_runtime: Runtime) -> None:
    transport = httpx.ASGITransport(app=create_app(not_ready_runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
        assert (await client.get("/readyz")).status_code == 503
        found = samples((await client.get("/metrics")).text)
    assert value(found, "placement_extender_ready") == 0


async def test_bind_and_source_metrics_in_live_mode(apiserver: ApiServerStandIn) -> None:
    apiserver.add_node(node("a", cpu="4"))
    settings = load_settings()
    runtime = Runtime(settings=settings, readiness=Readiness(NODES, PODS))
    changes = Changes()
    runtime.readiness.listeners.append(changes.readiness_changed)
    client = apiserver.api_client()
    from app.kube import KubeApi

    source = LiveSource(settings, KubeApi(client))
    transport = httpx.ASGITransport(app=create_app(runtime, source))
    await source.start(runtime)
    try:
        await changes.until(lambda: runtime.readiness.ready)
        worker = apiserver.add_pod(pod("w", cpu="1"))
        assert source.snapshot is not None
        source.snapshot.listeners.append(changes.changed)
        await changes.until(lambda: source.snapshot is not None and len(source.snapshot.pods) == 1)
        body = {
            "PodName": "w",
            "PodNamespace": "default",
            "PodUID": worker["metadata"]["uid"],
            "Node": "a",
        }
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as http:
            assert (await http.post("/bind", json=body)).json() == {"Error": ""}
            too_big = apiserver.add_pod(pod("big", cpu="8"))
            await changes.until(
                lambda: source.snapshot is not None and len(source.snapshot.pods) == 2
            )
            body = {**body, "PodName": "big", "PodUID": too_big["metadata"]["uid"]}
            assert "no longer fits" in (await http.post("/bind", json=body)).json()["Error"]
            found = samples((await http.get("/metrics")).text)
    finally:
        await source.stop()
        client.close()
    prefix = "placement_extender_"
    assert value(found, prefix + "binds_total", outcome="bound") == 1
    assert value(found, prefix + "binds_total", outcome="no_longer_fits") == 1
    assert value(found, prefix + "bind_duration_seconds_count") == 2
    assert value(found, prefix + "cas_conflicts_total") == 0
    assert (
        value(found, prefix + "snapshot_nodes") == 1 and value(found, prefix + "snapshot_pods") == 2
    )
    assert value(found, prefix + "watch_events_total", kind="nodes", event="lists") == 1
    # exported from zero, so the first re-list shows in rate() and increase()
    assert (prefix + "watch_events_total", (("event", "relists"), ("kind", "pods"))) in found
    assert value(found, prefix + "bind_budget_seconds") == settings.bind.budget_seconds
    assert value(found, prefix + "ready") == 1
    assert value(found, prefix + "snapshot_age_seconds") >= 0
