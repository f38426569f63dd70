"""pool: a pod that names a pool runs only there; a pool-only node admits only its pool's pods."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Check, Predicate

NAME = "Pool"


def check(pod: PodDemand, nodes: Candidates) -> Check | None:
    wanted = nodes.table.pools.lookup(pod.pool) if pod.pool else None
    failed = nodes.pool_only if wanted is None else nodes.pool != wanted
    return Check(failed=failed, unresolvable=True)


def reason(pod: PodDemand) -> str:
    if pod.pool:
        return f"node not in pool {pod.pool}"
    return "node admits only pods of its pool"


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    node_pool = nodes.pool_name(i) or "(none)"
    if pod.pool:
        return f"node pool {node_pool} is not the pod's pool {pod.pool}"
    return f"node is pool-only for pool {node_pool}; the pod names no pool"


PREDICATE = Predicate(NAME, check, reason, explain)
