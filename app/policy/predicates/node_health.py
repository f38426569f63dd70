"""node_health: the node's labels, capacity and reservation ledger must be readable."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Flagged, Predicate
from app.state.table import FLAG_INVALID

NAME = "NodeHealth"
REASON = "node has unreadable labels, capacity or reservations"

TEST = Flagged(FLAG_INVALID, minds=lambda pod: True, unresolvable=True)


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    facts = nodes.facts_of(i)
    return "; ".join(facts.problems) if facts else REASON


PREDICATE = Predicate(NAME, TEST, lambda pod: REASON, explain)
