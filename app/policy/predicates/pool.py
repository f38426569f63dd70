"""pool: a pod that names a pool runs only there; a pool-only node admits only its pool's pods."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Check, Custom, Flagged, Predicate
from app.state.table import FLAG_POOL_ONLY

NAME = "Pool"

# A pod that names no pool is kept off pool-only nodes.
OPEN_POOLS = Flagged(FLAG_POOL_ONLY, minds=lambda pod: not pod.pool, unresolvable=True)


def in_named_pool(pod: PodDemand, nodes: Candidates) -> Check | None:
    """A pod that names a pool runs only on that pool's nodes."""
    if not pod.pool:
        return None
    return Check(failed=nodes.pool != nodes.table.pools.lookup(pod.pool), unresolvable=True)


def reason(pod: PodDemand) -> str:
    if pod.pool:
        return f"node not in pool {pod.pool}"
    return "node admits only pods of its pool"


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    node_pool = nodes.pool_name(i) or "(none)"
    if pod.pool:
        return f"node pool {node_pool} is not the pod's pool {pod.pool}"
    return f"node is pool-only for pool {node_pool}; the pod names no pool"


PREDICATE = Predicate(NAME, (OPEN_POOLS, Custom(in_named_pool)), reason, explain)
