"""resource_fit: free capacity ≥ the pod's request, one predicate per tracked resource.

free = allocatable − requests of pods on the node − live reservations. A shortfall that even an
empty node could not cover (request > allocatable) is unresolvable; otherwise preemption may help.
"""

from __future__ import annotations

from functools import lru_cache, partial

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Predicate, Shortfall
from app.state.table import capacity_limit, free_limit
from app.wire.quantity import format_amount


def _need(column: int, pod: PodDemand) -> int:
    return int(pod.requests[column])


def _reason(resource: str, column: int, pod: PodDemand) -> str:
    return _insufficient(resource, int(pod.requests[column]))


@lru_cache(maxsize=1024)
def _insufficient(resource: str, amount: int) -> str:
    return f"insufficient {resource} ({format_amount(resource, amount)} requested)"


def _explain(resource: str, column: int, pod: PodDemand, nodes: Candidates, i: int) -> str:
    free = int(nodes.free(column)[i])
    total = int(nodes.alloc(column)[i])
    want = int(pod.requests[column])
    return (
        f"{resource}: {format_amount(resource, max(free, 0))} free of "
        f"{format_amount(resource, total)}, {format_amount(resource, want)} requested"
    )


def test(column: int) -> Shortfall:
    """Free amount below the request; unresolvable when above the node's capacity too."""
    return Shortfall(free_limit(column), partial(_need, column), capacity_limit(column))


def predicates(resources: tuple[str, ...]) -> list[Predicate]:
    """One predicate per tracked resource, in column order."""
    return [
        Predicate(
            f"Fit/{resource}",
            test(column),
            partial(_reason, resource, column),
            partial(_explain, resource, column),
        )
        for column, resource in enumerate(resources)
    ]
