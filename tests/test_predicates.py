"""Each predicate alone: what it rejects, its reasons, and whether preemption could help."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.predicates import (
    gpu_memory,
    gpu_reserved,
    gpu_type,
    known_node,
    node_health,
    pool,
    preemptible,
    resource_fit,
)
from app.policy.types import Predicate
from app.wire.types import Pod
from tests.builders import P, extender_of, node, pod


def setup(
    nodes: list[dict[str, Any]], pod_obj: dict[str, Any], pods: Any = ()
) -> tuple[PodDemand, Candidates]:
    extender = extender_of(nodes, list(pods))
    demand = extender.demand(msgspec.convert(pod_obj, Pod))
    names = [n["metadata"]["name"] for n in nodes] + ["ghost"]
    table = extender.snapshot.table
    return demand, Candidates(table, table.rows_for(names), extender.snapshot.nodes)


def failing(predicate: Predicate, demand: PodDemand, nodes: Candidates) -> dict[str, bool]:
    """Failing known node name → unresolvable (unknown rows are the engine's business; see
    test_unknown_nodes_report_only_unknown_node)."""
    check = predicate.check(demand, nodes)
    if check is None:
        return {}
    hard = np.broadcast_to(check.unresolvable, check.failed.shape)
    counted = check.failed if predicate is known_node.PREDICATE else check.failed & nodes.known
    return {nodes.name(i): bool(hard[i]) for i in np.flatnonzero(counted)}


def fit(resource: str) -> Predicate:
    return next(
        p
        for p in resource_fit.predicates(
            ("cpu", "memory", "ephemeral-storage", "pods", "nvidia.com/gpu")
        )
        if p.name == f"Fit/{resource}"
    )


def test_known_node_fails_only_unknown_names_resolvably() -> None:
    demand, nodes = setup([node("a")], pod("p"))
    assert failing(known_node.PREDICATE, demand, nodes) == {"?": False}
    assert known_node.PREDICATE.reason(demand) == "unknown node"


def test_node_health_rejects_nodes_with_unreadable_labels() -> None:
    bad = node("bad", labels={P + "pool-priority": "high"})
    demand, nodes = setup([node("ok"), bad], pod("p"))
    assert failing(node_health.PREDICATE, demand, nodes) == {"bad": True}
    assert "pool-priority='high'" in node_health.PREDICATE.explain(demand, nodes, 1)


def test_node_health_rejects_malformed_allocatable() -> None:
    demand, nodes = setup([node("bad", cpu="many")], pod("p"))
    assert failing(node_health.PREDICATE, demand, nodes) == {"bad": True}
    assert "'many'" in node_health.PREDICATE.explain(demand, nodes, 0)


def test_cpu_fit_counts_bound_pods_and_marks_impossible_requests_unresolvable() -> None:
    nodes_ = [node("small", cpu="2"), node("busy", cpu="8"), node("big", cpu="8")]
    placed = [pod("x", node_name="busy", cpu="7", phase="Running")]
    demand, nodes = setup(nodes_, pod("p", cpu="1500m"), placed)
    assert failing(fit("cpu"), demand, nodes) == {"busy": False}
    demand, nodes = setup(nodes_, pod("p", cpu="4"), placed)
    assert failing(fit("cpu"), demand, nodes) == {"small": True, "busy": False}
    assert fit("cpu").explain(demand, nodes, 1) == "cpu: 1 free of 8, 4 requested"
    assert fit("cpu").reason(demand) == "insufficient cpu (4 requested)"


def test_finished_pods_free_their_resources() -> None:
    placed = [
        pod("done", node_name="a", cpu="8", phase="Succeeded"),
        pod("bad", node_name="a", cpu="8", phase="Failed"),
    ]
    demand, nodes = setup([node("a", cpu="8")], pod("p", cpu="8"), placed)
    assert failing(fit("cpu"), demand, nodes) == {}


def test_zero_request_is_not_checked_but_pod_slots_are() -> None:
    demand, nodes = setup(
        [node("a", cpu="1", pods="1")], pod("p"), [pod("x", node_name="a", phase="Running")]
    )
    assert fit("cpu").check(demand, nodes) is None
    assert failing(fit("pods"), demand, nodes) == {"a": False}


def test_gpu_fit_and_type_and_memory() -> None:
    nodes_ = [
        node("t4", gpus=1, product="Tesla-T4", gpu_memory=15360),
        node("a10g", gpus=4, product="NVIDIA-A10G", gpu_memory=23028),
        node("h100", gpus=8, product="NVIDIA-H100-80GB-HBM3", gpu_memory=81559),
        node("labelled", gpus=2, labels={P + "gpu-type": "L4"}),
    ]
    wants = pod("p", gpus=2, annotations={P + "gpu-types": "A10G,T4,L4", P + "gpu-memory": "20000"})
    demand, nodes = setup(nodes_, wants)
    assert failing(fit("nvidia.com/gpu"), demand, nodes) == {"t4": True}
    assert failing(gpu_type.PREDICATE, demand, nodes) == {"h100": True}
    assert gpu_type.PREDICATE.explain(demand, nodes, 2) == "gpu type H100 not in [A10G,T4,L4]"
    assert failing(gpu_memory.PREDICATE, demand, nodes) == {"t4": True, "labelled": True}


def test_any_gpu_type_and_cpu_pods_skip_gpu_type_check() -> None:
    nodes_ = [node("h100", gpus=8, product="NVIDIA-H100-80GB-HBM3")]
    demand, nodes = setup(nodes_, pod("p", gpus=1, annotations={P + "gpu-types": "any"}))
    assert gpu_type.PREDICATE.check(demand, nodes) is None
    demand, nodes = setup(nodes_, pod("p", cpu="1", annotations={P + "gpu-types": "T4"}))
    assert gpu_type.PREDICATE.check(demand, nodes) is None


def test_cpu_pods_stay_off_gpu_nodes() -> None:
    demand, nodes = setup([node("cpu"), node("gpu", gpus=1)], pod("p", cpu="1"))
    assert failing(gpu_reserved.PREDICATE, demand, nodes) == {"gpu": True}
    demand, nodes = setup([node("cpu"), node("gpu", gpus=1)], pod("p", gpus=1))
    assert gpu_reserved.PREDICATE.check(demand, nodes) is None


def test_gpu_reservation_can_be_switched_off() -> None:
    extender = extender_of([node("gpu", gpus=1)], policy={"gpu_nodes_for_gpu_pods_only": False})
    assert gpu_reserved.PREDICATE not in extender.policy.predicates


def test_pool_rules() -> None:
    nodes_ = [
        node("general", labels={P + "pool": "general"}),
        node("batch", labels={P + "pool": "batch", P + "pool-only": "true"}),
        node("none"),
    ]
    demand, nodes = setup(nodes_, pod("p"))
    assert failing(pool.PREDICATE, demand, nodes) == {"batch": True}
    demand, nodes = setup(nodes_, pod("p", annotations={P + "pool": "batch"}))
    assert failing(pool.PREDICATE, demand, nodes) == {"general": True, "none": True}
    demand, nodes = setup(nodes_, pod("p", labels={P + "pool": "general"}))  # label works too
    assert failing(pool.PREDICATE, demand, nodes) == {"batch": True, "none": True}
    demand, nodes = setup(nodes_, pod("p", annotations={P + "pool": "nowhere"}))
    assert set(failing(pool.PREDICATE, demand, nodes)) == {"general", "batch", "none"}


@pytest.mark.parametrize(
    "labels",
    [
        {P + "preemptible": "true"},
        {"karpenter.sh/capacity-type": "spot"},
        {"cloud.google.com/gke-spot": "true"},
        {"cloud.google.com/gke-preemptible": "true"},
        {"eks.amazonaws.com/capacityType": "SPOT"},
        {"kubernetes.azure.com/scalesetpriority": "spot"},
    ],
)
def test_preemptible_nodes_only_for_preemptible_pods(labels: dict[str, str]) -> None:
    nodes_ = [
        node("spot", labels=labels),
        node("on-demand", labels={"karpenter.sh/capacity-type": "on-demand"}),
    ]
    demand, nodes = setup(nodes_, pod("p"))
    assert failing(preemptible.PREDICATE, demand, nodes) == {"spot": True}
    demand, nodes = setup(nodes_, pod("p", annotations={P + "preemptible": "true"}))
    assert preemptible.PREDICATE.check(demand, nodes) is None


@pytest.mark.parametrize(
    ("annotations", "fragment"),
    [
        ({P + "gpu-memory": "lots"}, "gpu-memory='lots'"),
        ({P + "gpu-memory": "-1"}, "negative"),
        ({P + "gpu-types": " , "}, "lists no GPU type"),
        ({P + "preemptible": "yes"}, 'must be "true" or "false"'),
    ],
)
def test_unusable_annotations_raise_with_key_and_value(
    annotations: dict[str, str], fragment: str
) -> None:
    from app.extender import PodError

    extender = extender_of([node("a")])
    with pytest.raises(PodError, match=fragment):
        extender.demand(msgspec.convert(pod("p", annotations=annotations), Pod))


def test_container_id_from_annotation_label_or_name() -> None:
    extender = extender_of([node("a")])
    read = lambda p: extender.demand(msgspec.convert(p, Pod)).container_id  # noqa: E731
    assert read(pod("p", annotations={P + "container-id": "fn-1"})) == "fn-1"
    assert read(pod("p", labels={P + "container-id": "fn-2"})) == "fn-2"
    assert read(pod("p", namespace="team")) == "team/p"


def test_gfd_products_normalise_to_short_types() -> None:
    from app.config import DEFAULT_GPU_PRODUCT_ALIASES
    from app.state.records import normalise_gpu_product

    expected = {
        "Tesla-T4": "T4",
        "NVIDIA-A10G": "A10G",
        "NVIDIA-A100-SXM4-80GB": "A100-80",
        "NVIDIA-H100-80GB-HBM3": "H100",
        "NVIDIA-RTX-6000": "RTX-6000",
    }
    for product, short in expected.items():
        assert normalise_gpu_product(product, DEFAULT_GPU_PRODUCT_ALIASES) == short
    assert normalise_gpu_product("Tesla-T4", {"Tesla-T4": "T4-16"}) == "T4-16"


def test_unknown_nodes_report_only_unknown_node() -> None:
    extender = extender_of([node("a", cpu="1")])
    demand = extender.demand(msgspec.convert(pod("p", cpu="2", gpus=1), Pod))
    table = extender.snapshot.table
    nodes = Candidates(table, table.rows_for(["ghost", "a"]), extender.snapshot.nodes)
    outcome = extender.policy.filter(demand, nodes)
    assert outcome.reasons[outcome.reason_index[0]] == "unknown node"
    assert not outcome.unresolvable[0] and outcome.unresolvable[1]


def test_a_pod_is_read_once_per_resource_version() -> None:
    extender = extender_of([node("a")])
    spec = pod("p", cpu="1")
    spec["metadata"]["resourceVersion"] = "7"
    first = extender.demand(msgspec.convert(spec, Pod))
    assert extender.demand(msgspec.convert(spec, Pod)) is first  # filter, then prioritize
    spec["metadata"]["resourceVersion"] = "8"
    spec["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "2"
    assert extender.demand(msgspec.convert(spec, Pod)).requests[0] == 2000
