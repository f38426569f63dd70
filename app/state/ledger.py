"""The reservation ledger: in-flight placements of one node, stored in an annotation of a
``coordination.k8s.io/v1`` Lease named after the node, in the extender's namespace.

A Lease rather than the Node itself: only the extender's replicas watch these Leases, so a
reservation write wakes nobody else (a Node write is sent to every Node watcher, kube-scheduler
included) and Node objects do not grow with the ledger.

Format (compact JSON): ``{"<pod uid>": {"r": {"cpu": 2000, "pods": 1}, "e": 1764280000.5,
"p": "namespace/name"}}`` — requests in the extender's integer units, expiry as Unix seconds.
An entry reserved *ahead* for a pending pod (``app.commit.ahead``) is keyed ``"<pod uid>~ahead"``:
it is dropped only when it expires or its pod is settled, never by a release or a later decision,
so a replica that sees it may bind the pod without writing. Extenders that predate it read it as
the entry of a pod they never see bound, counted until it expires: conservative.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from app.wire.types import Lease

AHEAD_SUFFIX = "~ahead"
"""Key suffix of an entry reserved ahead (pod UIDs never contain "~")."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Capacity held for a pod between the bind decision and the pod showing up bound."""

    pod_uid: str
    pod: str
    requests: tuple[tuple[str, int], ...]
    expires_at: float
    ahead: bool = False
    """Reserved ahead for a pending pod of the same workload (see the module docstring)."""

    @property
    def key(self) -> str:
        """The entry's key in the annotation."""
        return self.pod_uid + AHEAD_SUFFIX if self.ahead else self.pod_uid

    def live(self, now: float) -> bool:
        return self.expires_at > now


@dataclass(frozen=True, slots=True)
class NodeLedger:
    """A node's ledger as last read: its Lease's resourceVersion (the CAS token) and entries.
    ``problem`` names why the annotation could not be read (the node is then not used)."""

    node: str
    resource_version: str
    reservations: tuple[Reservation, ...] = ()
    problem: str = ""


class LedgerError(ValueError):
    """The annotation is not a ledger this extender wrote."""


def parse_ledger(text: str | None) -> tuple[Reservation, ...]:
    """Parse the annotation value; empty or missing means no reservations."""
    if not text:
        return ()
    try:
        data: Any = msgspec.json.decode(text)
        if not isinstance(data, dict):
            raise LedgerError("reservation ledger is not a JSON object")
        return tuple(
            Reservation(
                pod_uid=key.removesuffix(AHEAD_SUFFIX),
                pod=str(entry.get("p", "")),
                requests=tuple(sorted((str(k), int(v)) for k, v in entry["r"].items())),
                expires_at=float(entry["e"]),
                ahead=key.endswith(AHEAD_SUFFIX),
            )
            for key, entry in data.items()
        )
    except (msgspec.DecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LedgerError(f"reservation ledger is unreadable: {exc}") from exc


def ledger_of(lease: Lease, key: str) -> NodeLedger:
    """The ledger a Lease carries under annotation ``key``."""
    meta = lease.metadata
    try:
        reservations = parse_ledger((meta.annotations or {}).get(key))
        problem = ""
    except LedgerError as exc:
        reservations, problem = (), str(exc)
    return NodeLedger(meta.name, meta.resourceVersion, reservations, problem)


def format_ledger(entries: tuple[Reservation, ...] | list[Reservation]) -> str:
    """The annotation value for ``entries`` (stable key order, compact)."""
    return msgspec.json.encode(
        {
            e.key: {"r": dict(e.requests), "e": round(e.expires_at, 3), "p": e.pod}
            for e in sorted(entries, key=lambda e: e.key)
        }
    ).decode()
