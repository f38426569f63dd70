"""known_node: the node must be in the extender's snapshot."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Flagged, Predicate
from app.state.table import FLAG_UNKNOWN

NAME = "KnownNode"
REASON = "unknown node"

# Resolvable: the snapshot may simply not have seen the node yet (watch lag).
TEST = Flagged(FLAG_UNKNOWN, minds=lambda pod: True, unresolvable=False)


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return "unknown node: not in the extender's snapshot"


PREDICATE = Predicate(NAME, TEST, lambda pod: REASON, explain)
