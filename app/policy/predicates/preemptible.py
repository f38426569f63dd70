"""preemptible: pods that do not tolerate preemption never land on spot/preemptible nodes."""

from __future__ import annotations

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Check, Predicate

NAME = "Preemptible"
REASON = "preemptible node; pod is not preemptible"


def check(pod: PodDemand, nodes: Candidates) -> Check | None:
    if pod.preemptible:
        return None
    return Check(failed=nodes.preemptible, unresolvable=True)


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return f'{REASON} (set the pod annotation preemptible: "true" to allow it)'


PREDICATE = Predicate(NAME, check, lambda pod: REASON, explain)
