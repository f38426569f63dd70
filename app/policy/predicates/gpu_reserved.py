"""gpu_reserved: nodes with GPUs are kept for GPU work (policy.gpu_nodes_for_gpu_pods_only)."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Check, Predicate

NAME = "GPUNodeReserved"
REASON = "GPU node reserved for GPU pods"


def check(pod: PodDemand, nodes: Candidates) -> Check | None:
    if pod.wants_gpu:
        return None
    return Check(failed=(nodes.gpu_count > 0), unresolvable=True)


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return f"{REASON}: node has {int(nodes.gpu_count[i])} GPU(s), pod requests none"


PREDICATE = Predicate(NAME, check, lambda pod: REASON, explain)
