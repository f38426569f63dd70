"""Grants: one reservation write holds room on a node for this replica's next binds there, of
any workload, which then take their share in memory and write nothing.

Why: where pods are packed (binpack), the next pod usually lands on the node the last one took,
whatever its workload, and a reservation write costs kube-apiserver and etcd more than the rest
of a bind. Reserving ahead (``app.commit.ahead``) covers only pods of one workload, named in
advance; a grant covers whichever pods come.

The accounting (what keeps it safe):

- a grant is an entry keyed ``"<holder>~grant"`` (``app.state.ledger``), written with the same
  compare-and-swap as any entry. Every other reader — other replicas, this replica after a
  restart (a new holder ID), extenders that predate grants — counts its whole room until it
  expires. Only its holder, this process, hands it out, so the room it hands out is room every
  other writer already counts as taken;
- the holder counts, per node, what each bind took from its grant (``Snapshot.take_from_grant``)
  for pods it has not seen bound, and never hands out more than the grant holds;
- a bind takes from a grant only while the grant has more than
  ``bind.budget_seconds + CLOCK_SKEW_SECONDS + bind.prune_bound_after_seconds`` to live: the
  Binding is sent within the budget, and every replica is expected to see a bound pod within
  ``prune_bound_after_seconds`` (the same expectation that lets writers prune entries of bound
  pods), so the grant still stands in every view until each has seen that pod bound;
- the holder's next write on the node replaces its grant: what binds took from the old one is
  written as ordinary entries of their pods (not yet settled ones), so no pod that took room is
  ever left uncounted by a reader that has not seen it bound;
- a refused Binding gives its share back to the grant; an unknown outcome keeps it.

A bound pod is therefore counted twice by other readers (as itself, and inside the grant's room)
until the grant is rewritten or expires: over-counting, which is conservative. A replica that
dies holding a grant locks its room until the grant expires (``bind.grant_ttl_seconds``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.commit.ahead import CLOCK_SKEW_SECONDS
from app.commit.ledger_write import entry_requests, shortfalls
from app.config import Bind
from app.state.ledger import Reservation

GRANT_NAME = "grant"
"""What a grant's ``p`` field says (it names no pod)."""


def min_life(bind: Bind) -> float:
    """Seconds a grant must still have to live for a bind to take from it."""
    return bind.budget_seconds + CLOCK_SKEW_SECONDS + bind.prune_bound_after_seconds


def own_grant(
    ledger: Sequence[Reservation], holder: str, *, now: float, bind: Bind
) -> Reservation | None:
    """This holder's grant in ``ledger``, if it may still be taken from."""
    for entry in ledger:
        if entry.grant and entry.pod_uid == holder:
            return entry if entry.expires_at - now > min_life(bind) else None
    return None


def left_in(grant: Reservation, taken: Mapping[str, Sequence[tuple[str, int]]]) -> dict[str, int]:
    """The grant's room less everything taken from it (bound pods included)."""
    left = dict(grant.requests)
    for requests in taken.values():
        for resource, amount in requests:
            left[resource] = left.get(resource, 0) - amount
    return left


def fits(requests: Mapping[str, int], left: Mapping[str, int]) -> bool:
    return not shortfalls(requests, left)


def taken_entries(
    taken: Mapping[str, Sequence[tuple[str, int]]],
    pods: Mapping[str, str],
    *,
    expires_at: float,
) -> list[Reservation]:
    """Ordinary entries for the pods that took from a grant being replaced (``pods``: uid →
    "namespace/name")."""
    return [
        Reservation(
            pod_uid=uid, pod=pods.get(uid, ""), requests=tuple(requests), expires_at=expires_at
        )
        for uid, requests in taken.items()
    ]


def new_grant(
    holder: str,
    requests: Mapping[str, int],
    left: Mapping[str, int],
    *,
    pods: int,
    expires_at: float,
) -> Reservation | None:
    """A grant of room for up to ``pods`` more pods asking ``requests`` each, as many as fit
    in ``left``; None if not even one does."""
    wanted = entry_requests(requests)
    if not wanted:
        return None
    count = min([pods] + [max(left.get(resource, 0), 0) // amount for resource, amount in wanted])
    if count < 1:
        return None
    room = tuple((resource, amount * count) for resource, amount in wanted)
    return Reservation(pod_uid=holder, pod=GRANT_NAME, requests=room, expires_at=expires_at,
                       grant=True)  # fmt: skip
