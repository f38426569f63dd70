"""Deciding a reservation: does the pod still fit, and what the node's ledger becomes."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from app.state.ledger import Reservation, format_ledger
from app.wire.quantity import format_amount


@dataclass(frozen=True, slots=True)
class Shortfall:
    """A resource the pod needs more of than the node has free."""

    resource: str
    free: int
    requested: int

    def __str__(self) -> str:
        free = format_amount(self.resource, max(self.free, 0))
        return (
            f"{self.resource} {free} free, {format_amount(self.resource, self.requested)} requested"
        )


def entry_requests(requests: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    """Requests as a ledger entry records them (sorted, zeros left out)."""
    return tuple(sorted((r, a) for r, a in requests.items() if a))


def free_for(
    *,
    allocatable: Mapping[str, int],
    used: Mapping[str, int],
    ledger: Sequence[Reservation],
    deciding: Collection[str],
    is_bound: Callable[[str], bool],
    now: float,
) -> dict[str, int]:
    """allocatable − used − live reservations of pods other than those ``deciding`` (their
    own earlier entries are replaced by the write being decided) whose capacity is not yet
    accounted for otherwise (``is_bound``: seen bound, or deleted)."""
    free = {r: allocatable.get(r, 0) - used.get(r, 0) for r in set(allocatable) | set(used)}
    for entry in ledger:
        if entry.pod_uid in deciding or not entry.live(now) or is_bound(entry.pod_uid):
            continue
        for resource, amount in entry.requests:
            free[resource] = free.get(resource, 0) - amount
    return free


def shortfalls(requests: Mapping[str, int], free: Mapping[str, int]) -> list[Shortfall]:
    """Every requested resource the node cannot cover, in a stable order."""
    return [
        Shortfall(resource, free.get(resource, 0), amount)
        for resource, amount in sorted(requests.items())
        if amount > 0 and amount > free.get(resource, 0)
    ]


def pruned(
    ledger: Sequence[Reservation], *, now: float, settled: Callable[[str], bool]
) -> list[Reservation]:
    """The entries still worth keeping: not expired, and whose pod is not ``settled`` (seen
    bound long enough that every replica counts the pod itself)."""
    return [e for e in ledger if e.live(now) and not settled(e.pod_uid)]


def ledger_after(
    ledger: Sequence[Reservation],
    *,
    add: Sequence[Reservation] = (),
    remove: Collection[str] = (),
    now: float,
    settled: Callable[[str], bool],
) -> str:
    """The ledger annotation after one write: pruned, the entries of ``remove`` dropped, and
    ``add`` appended. A pod decided here replaces any older entry of its own, reserved ahead or
    not; a release (``remove``) never drops an entry reserved ahead, which only expiry or its
    pod settling removes (see ``app.state.ledger``)."""
    decided = {e.pod_uid for e in add if not e.ahead}
    released = set(remove)
    adding = {e.key for e in add}
    kept = [
        e
        for e in pruned(ledger, now=now, settled=settled)
        if e.pod_uid not in decided
        and e.key not in adding
        and (e.ahead or e.pod_uid not in released)
    ]
    return format_ledger([*kept, *add])


def admit_in_order(
    requests: Sequence[Mapping[str, int]],
    free: Mapping[str, int],
    held: Sequence[Mapping[str, int]] | None = None,
) -> list[list[Shortfall]]:
    """Decide a batch of reservations on one node in arrival order: each must fit in what the
    earlier admitted ones left, less what ``held`` keeps from it (the room nominated pods of
    its priority or higher wait for). Per request, its shortfalls (empty: admitted)."""
    left = dict(free)
    verdicts: list[list[Shortfall]] = []
    for i, wanted in enumerate(requests):
        kept_back = held[i] if held else {}
        room = {r: a - kept_back.get(r, 0) for r, a in left.items()} if kept_back else left
        missing = shortfalls(wanted, room)
        if not missing:
            for resource, amount in wanted.items():
                left[resource] = left.get(resource, 0) - amount
        verdicts.append(missing)
    return verdicts
