"""Deciding one node's write: which queued binds still fit (in arrival order), which are
already covered by an entry reserved ahead or by this replica's grant, and which entries the
write carries — theirs, those reserved ahead for the next pending pods of their workloads, and
this replica's new grant (with what binds took from the old one written as their pods' own
entries)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.commit import grants
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
    """One write's content: the binds it admits, every entry it adds, and what it removes."""

    admitted: list[Waiting]
    entries: list[Reservation]
    ahead: list[Reservation]
    grant: Reservation | None = None
    """This replica's new grant on the node."""
    replaces_grant: bool = False
    """The write replaces this replica's grant there (dropped unless ``grant`` renews it), and
    turns what binds took from it into entries of their pods."""
    removed: frozenset[str] = frozenset()
    """Keys' stems the write drops besides releases (this replica's old grant)."""


class Decider:
    """Decides reservations for one replica, remembering where each workload last bound."""

    def __init__(self, settings: Settings, snapshot: Snapshot, metrics: Metrics) -> None:
        self.settings = settings
        self.bind_settings = settings.bind
        self.snapshot = snapshot
        self.metrics = metrics
        self._last_node: OrderedDict[WorkloadKey, str] = OrderedDict()
        """Per workload, the node this replica last bound one of its pods to (most recent last)."""
        self._last_bound_node = ""
        """The node this replica last bound any pod to."""

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

    def take_from_grant(
        self, node: str, batch: list[Waiting], ledger: tuple[Reservation, ...], now: float
    ) -> list[Waiting]:
        """Answer the binds that fit in what this replica's grant on ``node`` has left, in
        arrival order, taking their room from it (nothing to write); the rest."""
        holder = self.snapshot.grant_holder
        grant = grants.own_grant(ledger, holder, now=now, bind=self.bind_settings)
        if grant is None or not batch:
            return batch
        taken = self.snapshot.grant_taken(node)
        left = grants.left_in(grant, taken)
        rest: list[Waiting] = []
        for waiting in batch:
            uid = waiting.pod.uid
            if uid not in taken and not grants.fits(waiting.requests, left):
                rest.append(waiting)
                continue
            if uid not in taken:  # a retry of a pod that took its room already keeps it
                requests = entry_requests(waiting.requests)
                self.snapshot.take_from_grant(node, uid, requests)
                taken[uid] = requests
                for resource, amount in requests:
                    left[resource] = left.get(resource, 0) - amount
            waiting.attempts.from_grant = True
            self.metrics.grants.labels("used").inc()
            waiting.done.set_result(None)
        return rest

    def decide(
        self,
        node: NodeFacts,
        batch: list[Waiting],
        reservations: tuple[Reservation, ...],
        now: float,
        settled: Callable[[str], bool],
    ) -> Decision:
        """Admit the binds of ``batch`` that fit in arrival order (refusing the others with
        ``no longer fits``), and the entries the write adds for them. This replica's grant on
        the node is replaced: what binds took from it becomes entries of their pods
        (``settled`` ones need none), and its room is free to decide in."""
        name = node.name
        snapshot = self.snapshot
        holder = snapshot.grant_holder
        replaces_grant = bool(holder) and any(e.grant and e.pod_uid == holder for e in reservations)
        taken = {u: r for u, r in snapshot.grant_taken(name).items() if not settled(u)}
        pods = {u: f"{p.namespace}/{p.name}" for u in taken if (p := snapshot.pods.get(u))}
        converted = grants.taken_entries(
            taken, pods, expires_at=now + self.bind_settings.reservation_ttl_seconds
        )
        converted_keys = {e.key for e in converted}
        counted = [
            e
            for e in reservations
            if not (e.grant and e.pod_uid == holder) and e.key not in converted_keys
        ] + converted
        tracked = snapshot.table.resources
        used = dict(zip(tracked, snapshot.usage(name).tolist(), strict=True))
        free = free_for(
            allocatable={r: node.allocatable.get(r, 0) for r in tracked},
            used=used,
            ledger=counted,
            deciding={w.pod.uid for w in batch},
            is_bound=snapshot.accounted,
            now=now,
        )
        admitted: list[Waiting] = []
        for waiting, missing in zip(
            batch, admit_in_order([w.requests for w in batch], free), strict=True
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
        grant = self._grant(name, admitted, entries + ahead, free, now)
        return Decision(
            admitted,
            entries + ahead + converted + ([grant] if grant else []),
            ahead,
            grant=grant,
            replaces_grant=replaces_grant or bool(converted),
            removed=frozenset({holder}) if replaces_grant else frozenset(),
        )

    def _grant(
        self,
        name: str,
        admitted: list[Waiting],
        adding: list[Reservation],
        free: dict[str, int],
        now: float,
    ) -> Reservation | None:
        """This replica's new grant on node ``name``, in what the write's entries leave free,
        for pods like the last admitted one — if this replica's previous bind went to this node
        too (where placements scatter, a grant would only hold room)."""
        holder = self.snapshot.grant_holder
        pods = self.bind_settings.grant_pods
        if not pods or not holder or not admitted or self._last_bound_node != name:
            return None
        if self.bind_settings.grant_ttl_seconds <= grants.min_life(self.bind_settings):
            return None  # it could never be taken from
        left = dict(free)
        for entry in adding:
            for resource, amount in entry.requests:
                left[resource] = left.get(resource, 0) - amount
        grant = grants.new_grant(
            holder,
            admitted[-1].requests,
            left,
            pods=pods,
            expires_at=now + self.bind_settings.grant_ttl_seconds,
        )
        if grant is not None:
            self.metrics.grants.labels("written").inc()
        return grant

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
        """Where this replica just bound a pod (of the workload)."""
        self._last_bound_node = node
        key = workload_key(pod)
        if key is None:
            return
        self._last_node[key] = node
        self._last_node.move_to_end(key)
        if len(self._last_node) > LAST_NODES_KEPT:
            self._last_node.popitem(last=False)
