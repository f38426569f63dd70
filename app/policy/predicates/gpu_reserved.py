"""gpu_reserved: nodes with GPUs are kept for GPU work (policy.gpu_nodes_for_gpu_pods_only)."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Flagged, Predicate
from app.state.table import FLAG_HAS_GPUS

NAME = "GPUNodeReserved"
REASON = "GPU node reserved for GPU pods"

TEST = Flagged(FLAG_HAS_GPUS, minds=lambda pod: not pod.wants_gpu, unresolvable=True)


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return f"{REASON}: node has {int(nodes.gpu_count[i])} GPU(s), pod requests none"


PREDICATE = Predicate(NAME, TEST, lambda pod: REASON, explain)
