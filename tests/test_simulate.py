"""``simulate`` on a small cluster worked out by hand: queue order, each placement taking its
capacity before the next pod, reasons counted as kube-scheduler's event counts them, nodes to
add by first-fit decreasing, pods no node shape holds; and the snapshot it was given untouched.

The cluster (affinity weight 0, so scores follow binpack and pool priority alone):

    cpu-a, cpu-b   4 CPU 16Gi, pool general          spot-1   same, a spot node
    batch-1        8 CPU 32Gi, pool batch, pool-only  t4-1     1 T4 (15360 MiB), 8 CPU 32Gi
    a10g-1         2 A10G (23028 MiB), 16 CPU 64Gi, one GPU and 4 CPU taken by a running pod
    a100-1         4 A100-80 (81920 MiB), 32 CPU 128Gi
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.config import load_settings
from app.extender import PodError
from app.simulate.pending import PendingPodsError, pending_pods
from app.simulate.placement import event_message
from app.simulate.report import as_json
from app.simulate.run import Simulation, simulate
from tests.builders import P, node, pod, snapshot_of

SETTINGS = {"scoring": {"cpu_pods": {"weights": {"affinity": 0}}}}
SPOT = {"karpenter.sh/capacity-type": "spot"}


def cluster() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    general = {P + "pool": "general"}
    nodes = [
        node("cpu-a", cpu="4", memory="16Gi", labels=general),
        node("cpu-b", cpu="4", memory="16Gi", labels=general),
        node("spot-1", cpu="4", memory="16Gi", labels={**general, **SPOT}),
        node("batch-1", cpu="8", memory="32Gi",
             labels={P + "pool": "batch", P + "pool-only": "true"}),
        node("t4-1", cpu="8", memory="32Gi", gpus=1, product="Tesla-T4", gpu_memory=15360),
        node("a10g-1", cpu="16", memory="64Gi", gpus=2, product="NVIDIA-A10G", gpu_memory=23028),
        node("a100-1", cpu="32", memory="128Gi", gpus=4, product="NVIDIA-A100-SXM4-80GB",
             gpu_memory=81920),
    ]  # fmt: skip
    running = [pod("running", node_name="a10g-1", cpu="4", gpus=1, phase="Running")]
    return nodes, running


def pending(
    name: str, *, priority: int | None = None, created: str | None = None, **spec: Any
) -> dict[str, Any]:
    item = pod(name, **spec)
    del item["metadata"]["uid"]  # as in a manifest
    if priority is not None:
        item["spec"]["priority"] = priority
    if created is not None:
        item["metadata"]["creationTimestamp"] = created
    return item


def gpu(types: str, **more: str) -> dict[str, str]:
    return {P + "gpu-types": types, **{P + k.replace("_", "-"): v for k, v in more.items()}}


def batch() -> list[dict[str, Any]]:
    """The pending pods, deliberately not in queue order."""
    return [
        pending("web-1", cpu="3", memory="4Gi", created="2026-01-05T10:03:00Z"),
        pending("web-2", cpu="3", memory="4Gi", created="2026-01-05T10:03:00Z"),
        pending("web-3", cpu="3", memory="4Gi", created="2026-01-05T10:03:00Z"),
        pending("infer-2", cpu="2", memory="8Gi", gpus=1, annotations=gpu("A10G,T4"),
                created="2026-01-05T10:01:00Z"),
        pending("infer-1", cpu="2", memory="8Gi", gpus=1, annotations=gpu("A10G,T4"),
                created="2026-01-05T10:00:00Z"),
        pending("embed", cpu="2", gpus=1, annotations=gpu("T4", gpu_memory="15000"),
                created="2026-01-05T10:02:00Z"),
        pending("train", cpu="16", memory="64Gi", gpus=2, priority=100,
                annotations=gpu("A100-80", gpu_memory="80000")),
        pending("crawler", cpu="3", annotations={P + "preemptible": "true"},
                created="2026-01-05T10:04:00Z"),
        pending("etl-1", cpu="6", annotations={P + "pool": "batch"}),
        pending("etl-2", cpu="6", annotations={P + "pool": "batch"}),
        pending("huge", cpu="64"),
        pending("b200", gpus=1, annotations=gpu("B200")),
        pending("big-memory", gpus=1, annotations=gpu("any", gpu_memory="90000")),
    ]  # fmt: skip


def run(pods: list[dict[str, Any]] | None = None) -> Simulation:
    nodes, running = cluster()
    settings = load_settings(**SETTINGS)
    return simulate(settings, snapshot_of(nodes, running, settings), pending_pods(
        pods if pods is not None else batch(), "test"
    ))  # fmt: skip


@pytest.fixture(scope="module")
def result() -> Simulation:
    return run()


def test_pods_are_placed_in_queue_order_each_taking_its_capacity(result: Simulation) -> None:
    placed = [(p.pod.key.removeprefix("default/"), p.node) for p in result.placements]
    assert placed == [
        ("train", "a100-1"),  # priority 100 first
        ("infer-1", "a10g-1"),  # then by creation time: A10G preferred, its last free GPU
        ("infer-2", "t4-1"),  # A10G now full: the second preference
        ("embed", None),  # the only T4 is taken
        ("web-1", "cpu-a"),  # binpack tie between cpu-a and cpu-b: the lowest name
        ("web-2", "cpu-b"),  # cpu-a has 1 CPU left after web-1
        ("web-3", None),
        ("crawler", "spot-1"),  # general nodes are full; spot admits a preemptible pod
        ("etl-1", "batch-1"),  # no creation time: after those with one, in file order
        ("etl-2", None),
        ("huge", None),
        ("b200", None),
        ("big-memory", None),
    ]
    assert (result.placed, result.unplaced, result.nodes_touched) == (7, 6, 7)


def test_reasons_are_counted_per_text_as_kube_schedulers_event_reads(result: Simulation) -> None:
    by_pod = {p.pod.key: p for p in result.placements}
    web = by_pod["default/web-3"]
    assert web.reasons == {
        "insufficient cpu (3 requested)": 2,
        "preemptible node; pod is not preemptible": 1,
        "node admits only pods of its pool": 1,
        "GPU node reserved for GPU pods": 3,
    }
    assert event_message(web.reasons, 7) == (
        "0/7 nodes are available: 1 node admits only pods of its pool, 1 preemptible node; "
        "pod is not preemptible, 2 insufficient cpu (3 requested), 3 GPU node reserved for "
        "GPU pods."
    )
    gpu, memory = "insufficient nvidia.com/gpu (1 requested)", "gpu memory below 15000 MiB"
    assert by_pod["default/embed"].reasons == {
        gpu: 1,  # t4-1, taken by infer-2
        f"{gpu}; {memory}": 2,  # cpu-a, cpu-b: no GPUs, so no GPU memory either
        f"{gpu}; {memory}; node admits only pods of its pool": 1,  # batch-1
        f"{gpu}; {memory}; preemptible node; pod is not preemptible": 1,  # spot-1
        "gpu type not in [T4]": 1,  # a100-1 still has GPUs free
        f"{gpu}; gpu type not in [T4]": 1,  # a10g-1
    }


def test_scores_are_the_extenders_own(result: Simulation) -> None:
    scores = {p.pod.key: p.score for p in result.placements}
    assert all(0 <= s <= 10 for s in scores.values() if s is not None)
    # A10G is the first preference: its band is the top half of 0..10, T4's the bottom half.
    assert scores["default/infer-1"] is not None and scores["default/infer-1"] >= 6
    assert scores["default/infer-2"] is not None and scores["default/infer-2"] <= 5


def test_nodes_to_add_per_pool_and_gpu_type(result: Simulation) -> None:
    additions = {(a.pool, a.gpu_type): (a.pods, a.add_nodes) for a in result.additions}
    assert additions == {
        (None, None): (1, {"cpu-a": 1}),  # web-3; "huge" fits no shape
        (None, "T4"): (1, {"t4-1": 1}),
        ("batch", None): (1, {"batch-1": 1}),
    }
    assert result.nodes_to_add == 3


def test_pods_no_node_shape_holds_are_listed_with_why(result: Simulation) -> None:
    why = {u.pod: u.reason for u in result.unfittable}
    assert list(why) == ["default/huge", "default/b200", "default/big-memory"]
    # six shapes: cpu-a and cpu-b are one
    assert why["default/huge"] == (
        "0/6 node shapes are available: 1 insufficient cpu (64 requested), "
        "1 insufficient cpu (64 requested); node admits only pods of its pool, "
        "1 insufficient cpu (64 requested); preemptible node; pod is not preemptible, "
        "3 insufficient cpu (64 requested); GPU node reserved for GPU pods."
    )
    assert "3 gpu type not in [B200]" in why["default/b200"]
    assert "3 gpu memory below 90000 MiB" in why["default/big-memory"]


def test_first_fit_decreasing_packs_added_nodes() -> None:
    """Seven unplaced batch pods of 5, 4, 4, 3, 2, 2, 2 CPUs on 8-CPU nodes like batch-1, taken
    largest first: [5 3] [4 4] [2 2 2] → 3 nodes (first-fit in input order would need 4)."""
    filler = pending("filler", cpu="8", annotations={P + "pool": "batch"}, priority=10)
    sizes = ["2", "5", "2", "4", "3", "4", "2"]
    pods = [filler] + [
        pending(f"etl-{i}", cpu=c, annotations={P + "pool": "batch"}) for i, c in enumerate(sizes)
    ]
    result = run(pods)
    assert result.placed == 1
    [addition] = result.additions
    assert (addition.pool, addition.gpu_type, addition.pods) == ("batch", None, 7)
    assert addition.add_nodes == {"batch-1": 3}


def test_the_given_snapshot_is_not_changed() -> None:
    nodes, running = cluster()
    settings = load_settings(**SETTINGS)
    snapshot = snapshot_of(nodes, running, settings)
    version, free = snapshot.version, snapshot.table.free.copy()
    simulate(settings, snapshot, pending_pods(batch(), "test"))
    assert snapshot.version == version
    assert np.array_equal(snapshot.table.free, free)
    assert all(p.node_name in (None, "a10g-1") for p in snapshot.pods.values())


def test_json_has_exactly_the_documented_keys(result: Simulation) -> None:
    document = as_json(result)
    assert list(document) == [
        "placed", "unplaced", "elapsed_ms", "placements", "shortfall", "unfittable"
    ]  # fmt: skip
    assert (document["placed"], document["unplaced"]) == (7, 6)
    assert document["placements"][0] == {
        "pod": "default/train", "node": "a100-1", "score": document["placements"][0]["score"],
        "reasons": {},
    }  # fmt: skip
    [batch_short] = [s for s in document["shortfall"] if s["pool"] == "batch"]
    assert batch_short["gpu_type"] is None and batch_short["pods"] == 1
    assert batch_short["add_nodes"] == [{"like": "batch-1", "count": 1}]
    assert batch_short["demand"]["cpu"] == 12_000  # both etl pods, millicores
    assert batch_short["free"]["cpu"] == 8_000  # batch-1, before placing
    assert document["unfittable"][0]["pod"] == "default/huge"


def test_pending_pods_with_a_node_are_an_error_naming_them() -> None:
    pods = [*batch(), pending("bound", cpu="1", node_name="cpu-a"),
            pending("also", cpu="1", node_name="t4-1")]  # fmt: skip
    with pytest.raises(PendingPodsError, match=r"default/bound \(on cpu-a\), default/also"):
        pending_pods(pods, "test")


def test_a_pod_twice_or_a_node_among_the_pods_is_an_error() -> None:
    with pytest.raises(PendingPodsError, match="more than once: default/web-1"):
        pending_pods([*batch(), pending("web-1")], "test")
    with pytest.raises(PendingPodsError, match=r"object #0 \(Node cpu-a\) is not a Pod"):
        pending_pods([cluster()[0][0]], "test")
    with pytest.raises(PendingPodsError, match="holds no Pod objects"):
        pending_pods({"kind": "PodList", "items": []}, "test")


def test_an_unusable_annotation_names_the_pod_and_key() -> None:
    bad = pending("bad", cpu="1", annotations={P + "gpu-memory": "lots"})
    with pytest.raises(PodError, match=r"default/bad.*gpu-memory='lots'"):
        run([bad])


def test_a_nominated_pod_in_the_snapshot_holds_its_room_as_in_filter() -> None:
    """A pod nominated to a node (status.nominatedNodeName) holds its room there against pods
    of its priority or lower, as the live filter counts it; a higher priority does not see it."""
    nodes = [node("g-1", gpus=2), node("g-2", gpus=2)]
    waiting = pod("preemptor", gpus=2, priority=1000, nominated="g-1")
    settings = load_settings(**SETTINGS)
    pods = [pending("low", gpus=2, priority=10), pending("top", gpus=2, priority=5000)]
    result = simulate(settings, snapshot_of(nodes, [waiting], settings), pending_pods(pods, "t"))
    placed = {p.pod.key: p.node for p in result.placements}
    # queue order: top first (it may take g-1: the nomination is below it), then low
    assert placed == {"default/top": "g-1", "default/low": "g-2"}
    pods = [pending("low", gpus=2, priority=10)]
    result = simulate(settings, snapshot_of(nodes, [waiting], settings), pending_pods(pods, "t"))
    assert [p.node for p in result.placements] == ["g-2"]
