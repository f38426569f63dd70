"""known_node: the node must be in the extender's snapshot."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Check, Predicate

NAME = "KnownNode"
REASON = "unknown node"


def check(pod: PodDemand, nodes: Candidates) -> Check | None:
    # Resolvable: the snapshot may simply not have seen the node yet (watch lag).
    return Check(failed=~nodes.known, unresolvable=False)


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return "unknown node: not in the extender's snapshot"


PREDICATE = Predicate(NAME, check, lambda pod: REASON, explain)
