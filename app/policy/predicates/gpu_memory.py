"""gpu_memory: each GPU of the node has at least the memory the pod asks for."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Predicate, Shortfall
from app.state.table import GPU_MEMORY_LIMIT

NAME = "GPUMemory"


def need(pod: PodDemand) -> int:
    """MiB per GPU the pod asks for; CPU pods ask for none."""
    return pod.gpu_memory_mib if pod.wants_gpu else 0


# A node's GPU memory does not change by evicting pods: every failure is unresolvable.
TEST = Shortfall(GPU_MEMORY_LIMIT, need)


def reason(pod: PodDemand) -> str:
    return f"gpu memory below {pod.gpu_memory_mib} MiB"


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return f"gpu memory {int(nodes.gpu_memory[i])} MiB < {pod.gpu_memory_mib} MiB requested"


PREDICATE = Predicate(NAME, TEST, reason, explain)
