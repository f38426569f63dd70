"""gpu_memory: each GPU of the node has at least the memory the pod asks for."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Check, Predicate

NAME = "GPUMemory"


def check(pod: PodDemand, nodes: Candidates) -> Check | None:
    if not pod.wants_gpu or pod.gpu_memory_mib == 0:
        return None
    return Check(failed=(nodes.gpu_memory < pod.gpu_memory_mib), unresolvable=True)


def reason(pod: PodDemand) -> str:
    return f"gpu memory below {pod.gpu_memory_mib} MiB"


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return f"gpu memory {int(nodes.gpu_memory[i])} MiB < {pod.gpu_memory_mib} MiB requested"


PREDICATE = Predicate(NAME, check, reason, explain)
