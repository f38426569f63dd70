"""Reserving ahead: a reservation write for a pod also reserves the node for the next pending
pods of the same workload, which then bind without a write of their own.

Why: under the default profile (binpack + container-ID affinity) the next pod with a pod's
container ID and requests lands on the node that pod just took nearly every time, and each
reservation write costs kube-apiserver and etcd about twice a read. What keeps it safe:

- an entry reserved ahead is an ordinary entry to every reader: it holds its room on that node
  for every other pod until it expires or its pod is seen bound or deleted;
- it is dropped only then (by any writer's pruning), never by a release or by a decision made
  elsewhere, so a replica that has seen it may rely on it without a fresh read while enough of
  its time to live is left (:data:`CLOCK_SKEW_SECONDS` beyond the bind budget);
- a decision on that node for its own pod replaces it, like any older entry of the pod.

A wrong guess (the pod goes elsewhere) holds room on the guessed node until the pod is seen
bound, or for the entry's shorter time to live if it stays pending.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

from app.commit.ledger_write import admit_in_order, entry_requests
from app.config import Scoring
from app.state.ledger import Reservation
from app.state.records import PodFacts

CLOCK_SKEW_SECONDS = 10.0
"""How far replicas' clocks may disagree before an entry one of them still relies on could be
pruned as expired by another."""


def affinity_pulls(scoring: Scoring, requests: Mapping[str, int], gpu_resource: str) -> bool:
    """Whether the policy pulls pods of one container ID together for this pod's class: only
    then is the next such pod likely to land where this one did."""
    pods = scoring.gpu_pods if requests.get(gpu_resource, 0) > 0 else scoring.cpu_pods
    return pods.weights.affinity > 0


def usable_entry(
    ledger: Sequence[Reservation],
    pod_uid: str,
    requests: Mapping[str, int],
    *,
    now: float,
    min_life: float,
) -> Reservation | None:
    """The pod's entry reserved ahead in ``ledger``, if it holds exactly what the pod requests
    and has more than ``min_life`` seconds to live."""
    wanted = entry_requests(requests)
    for entry in ledger:
        if (
            entry.ahead
            and entry.pod_uid == pod_uid
            and entry.requests == wanted
            and entry.expires_at - now > min_life
        ):
            return entry
    return None


def reserve_ahead(
    waiting: Iterable[PodFacts],
    requests: Mapping[str, int],
    left: Mapping[str, int],
    *,
    limit: int,
    skip: Collection[str],
    expires_at: float,
) -> list[Reservation]:
    """Entries for the first ``limit`` pods of ``waiting`` (pending pods of one workload, in
    queue order) not in ``skip`` (already reserved somewhere, or being decided) that fit in
    ``left`` one after another, each asking ``requests``."""
    chosen: list[PodFacts] = []
    for pod in waiting:
        if len(chosen) == limit:
            break
        if pod.uid not in skip:
            chosen.append(pod)
    verdicts = admit_in_order([requests] * len(chosen), left)
    recorded = entry_requests(requests)
    return [
        Reservation(
            pod_uid=pod.uid,
            pod=f"{pod.namespace}/{pod.name}",
            requests=recorded,
            expires_at=expires_at,
            ahead=True,
        )
        for pod, missing in zip(chosen, verdicts, strict=True)
        if not missing
    ]
