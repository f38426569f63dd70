"""Deciding one node's write: which queued binds still fit (in arrival order), which are
already covered by an entry reserved ahead, and which entries the write carries — theirs, and
those reserved ahead for the next pending pods of their workloads."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from app.commit.ahead import CLOCK_SKEW_SECONDS, affinity_pulls, reserve_ahead, usable_entry
from app.commit.ledger_write import admit_in_order, entry_requests, free_for
from app.commit.outcome import BindError
from app.commit.queue import Waiting
from app.config import Settings
from app.metrics import Metrics
from app.state.ledger import Reservation
from app.state.records import NodeFacts, PodFacts, WorkloadKey, workload_key
from app.state.snapshot import Snapshot

LAST_NODES_KEPT = 10_000
"""Workloads whose last node is remembered (the least recently bound are forgotten)."""


@dataclass
class Decision:
    """One write's content: the binds it admits and every entry it adds."""

    admitted: list[Waiting]
    entries: list[Reservation]
    ahead: list[Reservation]


class Decider:
    """Decides reservations for one replica, remembering where each workload last bound."""

    def __init__(self, settings: Settings, snapshot: Snapshot, metrics: Metrics) -> None:
        self.settings = settings
        self.bind_settings = settings.bind
        self.snapshot = snapshot
        self.metrics = metrics
        self._last_node: OrderedDict[WorkloadKey, str] = OrderedDict()
        """Per workload, the node this replica last bound one of its pods to (most recent last)."""

    def take_reserved_ahead(
        self, batch: list[Waiting], ledger: tuple[Reservation, ...], now: float
    ) -> list[Waiting]:
        """Answer the binds whose pod the ledger already holds an entry reserved ahead for
        (nothing to write: the entry stands until it expires or the pod settles); the rest."""
        if not any(e.ahead for e in ledger):
            return batch
        min_life = self.bind_settings.budget_seconds + CLOCK_SKEW_SECONDS
        rest: list[Waiting] = []
        for waiting in batch:
            if usable_entry(ledger, waiting.pod.uid, waiting.requests, now=now, min_life=min_life):
                waiting.attempts.reserved_ahead = True
                self.metrics.reserved_ahead.labels("used").inc()
                waiting.done.set_result(None)
            else:
                rest.append(waiting)
        return rest

    def decide(
        self,
        node: NodeFacts,
        batch: list[Waiting],
        reservations: tuple[Reservation, ...],
        now: float,
    ) -> Decision:
        """Admit the binds of ``batch`` that fit in arrival order (refusing the others with
        ``no longer fits``), and the entries the write adds for them."""
        name = node.name
        tracked = self.snapshot.table.resources
        used = dict(zip(tracked, self.snapshot.usage(name).tolist(), strict=True))
        batch_uids = {w.pod.uid for w in batch}
        free = free_for(
            allocatable={r: node.allocatable.get(r, 0) for r in tracked},
            used=used,
            ledger=reservations,
            deciding=batch_uids,
            is_bound=self.snapshot.accounted,
            now=now,
        )
        # room that pods nominated here of each pod's priority or higher wait for (as in filter)
        held = [self.snapshot.nominated_held(name, w.pod, skip=batch_uids) for w in batch]
        admitted: list[Waiting] = []
        for waiting, missing in zip(
            batch, admit_in_order([w.requests for w in batch], free, held), strict=True
        ):
            if missing:
                detail = "; ".join(str(m) for m in missing)
                waiting.done.set_exception(
                    BindError(f"node {name} no longer fits: {detail}", "no_longer_fits")
                )
            else:
                admitted.append(waiting)
        entries = [
            Reservation(
                pod_uid=w.pod.uid,
                pod=f"{w.pod.namespace}/{w.pod.name}",
                requests=entry_requests(w.requests),
                expires_at=now + self.bind_settings.reservation_ttl_seconds,
            )
            for w in admitted
        ]
        ahead = self._ahead(name, admitted, batch, reservations, free, now)
        return Decision(admitted, entries + ahead, ahead)

    def _ahead(
        self,
        name: str,
        admitted: list[Waiting],
        batch: list[Waiting],
        ledger: tuple[Reservation, ...],
        free: dict[str, int],
        now: float,
    ) -> list[Reservation]:
        """Entries reserved ahead on node ``name``, in what the admitted binds leave free, for
        the next pending pods of each admitted pod's workload — of a workload whose previous
        pod bound by this replica went to this node too: where placements scatter (at 5,000
        nodes kube-scheduler offers each pod a different tenth of them), guesses would only
        hold room and lengthen the ledger."""
        limit = self.bind_settings.reserve_ahead
        if not limit or not admitted:
            return []
        left = dict(free)
        for waiting in admitted:
            for resource, amount in waiting.requests.items():
                left[resource] = left.get(resource, 0) - amount
        snapshot = self.snapshot
        skip = {w.pod.uid for w in batch} | {e.pod_uid for e in ledger}
        expires_at = now + self.bind_settings.reserve_ahead_ttl_seconds
        gpu_resource = snapshot.parsing.gpu_resource
        entries: list[Reservation] = []
        for waiting in admitted:
            key = workload_key(waiting.pod)
            if key is None or self._last_node.get(key) != name:
                continue  # no sign yet that this workload's pods keep landing here
            if not affinity_pulls(self.settings.scoring, waiting.requests, gpu_resource):
                continue
            pending = (
                p
                for p in snapshot.waiting_like(waiting.pod)
                if not snapshot.has_reservations(p.uid) and not snapshot.accounted(p.uid)
            )
            found = reserve_ahead(
                pending, waiting.requests, left, limit=limit, skip=skip, expires_at=expires_at
            )
            for entry in found:
                skip.add(entry.pod_uid)
                for resource, amount in entry.requests:
                    left[resource] = left.get(resource, 0) - amount
            entries += found
        return entries

    def remember_node(self, pod: PodFacts, node: str) -> None:
        """Where this replica just bound a pod of the workload."""
        key = workload_key(pod)
        if key is None:
            return
        self._last_node[key] = node
        self._last_node.move_to_end(key)
        if len(self._last_node) > LAST_NODES_KEPT:
            self._last_node.popitem(last=False)
