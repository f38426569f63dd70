"""preemptible: pods that do not tolerate preemption never land on spot/preemptible nodes."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Flagged, Predicate
from app.state.table import FLAG_PREEMPTIBLE

NAME = "Preemptible"
REASON = "preemptible node; pod is not preemptible"

TEST = Flagged(FLAG_PREEMPTIBLE, minds=lambda pod: not pod.preemptible, unresolvable=True)


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return f'{REASON} (set the pod annotation preemptible: "true" to allow it)'


PREDICATE = Predicate(NAME, TEST, lambda pod: REASON, explain)
