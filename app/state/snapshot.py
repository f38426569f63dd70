"""The cluster snapshot: nodes, the pods bound to them, and in-flight reservations (each node's
ledger, read from its ledger Lease).

free(node) = allocatable − requests of the pods that hold resources there − live reservations,
where a reservation is live until it expires or its pod is seen bound in *this* snapshot (then the
pod itself is counted). Every change updates only the rows it touches and bumps ``version``.
All mutation happens on one thread (the event loop); readers never see a half-applied change.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.config import Settings
from app.contract import Keys
from app.state.ledger import NodeLedger, Reservation
from app.state.records import NodeFacts, PodFacts, WorkloadKey, workload_key
from app.state.table import UNKNOWN_ROW, IntArray, NodeTable
from app.wire.quantity import CPU
from app.wire.requests import PODS

EPHEMERAL_STORAGE = "ephemeral-storage"
MEMORY = "memory"


def tracked_resources(gpu_resource: str) -> tuple[str, ...]:
    """Resources the extender accounts for; others are left to kube-scheduler's own fit check."""
    return (CPU, MEMORY, EPHEMERAL_STORAGE, PODS, gpu_resource)


@dataclass(frozen=True, slots=True)
class NodeParsing:
    """What turning a v1.Node into :class:`NodeFacts` needs (shared by every source)."""

    keys: Keys
    gpu_resource: str
    gpu_aliases: Mapping[str, str]

    @classmethod
    def from_settings(cls, settings: Settings) -> NodeParsing:
        return cls(Keys(settings.prefix), settings.gpu_resource, settings.all_gpu_aliases)


@dataclass(frozen=True, slots=True, eq=False)
class Nomination:
    """A pending pod that kube-scheduler nominated to a node (``status.nominatedNodeName``):
    its room there is held for pods of lower priority, as kube-scheduler's own filters do."""

    priority: int
    uid: str
    requests: IntArray


@dataclass(frozen=True, slots=True, eq=False)
class NominationArrays:
    """Every nomination as arrays (rebuilt when one changes): its node (an index into
    ``nodes``), priority and requests; ``index``: pod uid → position."""

    nodes: list[str]
    node_of: npt.NDArray[np.intp]
    priority: IntArray
    index: dict[str, int]
    requests: IntArray


GONE_MEMORY_SECONDS = 3600.0
"""How long deleted pods' UIDs are remembered; longer than any reservation's time to live."""


class Snapshot:
    """In-memory cluster state with a columnar node table kept current incrementally."""

    def __init__(self, parsing: NodeParsing, clock: Callable[[], float] = time.time) -> None:
        self.parsing = parsing
        self.clock = clock
        self.table = NodeTable(tracked_resources(parsing.gpu_resource), parsing.gpu_resource)
        self.nodes: dict[str, NodeFacts] = {}
        """As the policy sees them: an unreadable ledger is one of the node's problems."""
        self.ledgers: dict[str, NodeLedger] = {}
        self._listed_nodes: dict[str, NodeFacts] = {}  # as the source gave them
        self.pods: dict[str, PodFacts] = {}
        self.version = 0
        self.updated_at = 0.0
        self._usage: dict[str, IntArray] = {}  # node name → sum of holding pods' requests
        self._counted: dict[str, tuple[str, IntArray]] = {}  # pod uid → (node, vector)
        self._bound: set[str] = set()  # uids of pods with a node, in any phase
        self._uid_by_name: dict[tuple[str, str], str] = {}
        self._bound_since: dict[str, float] = {}  # pod uid → when this snapshot saw it bound
        self._gone: dict[str, float] = {}  # uid of a deleted pod → when (oldest first)
        self._reserving_nodes: dict[str, set[str]] = {}  # pod uid → nodes whose ledger names it
        # pending pods that name a container ID, per workload, in the order first seen pending
        self._waiting: dict[WorkloadKey, dict[str, None]] = {}
        self._waiting_key: dict[str, WorkloadKey] = {}  # pod uid → its key in _waiting
        # per node, the pods nominated there, highest priority first (tuples: replaced, never
        # mutated, so forks share them); and each nominated pod's node
        self._nominated: dict[str, tuple[Nomination, ...]] = {}
        self._nominated_node: dict[str, str] = {}
        self._nominations: NominationArrays | None = None  # built on first use after a change
        self._terminating: dict[str, frozenset[str]] = {}  # node → uids of terminating pods
        self._terminating_at: dict[str, str] = {}  # uid → node
        self._next_expiry = float("inf")
        self.listeners: list[Callable[[], None]] = []
        """Called after every change (on the mutating thread), e.g. to wake waiters."""
        self.freed_listeners: list[Callable[[str], None]] = []
        """Called with a node's name when room its ledger held comes free without its pod
        being bound: an entry expired, was released or pruned, or its pod was deleted — room
        kube-scheduler learns of from no API object it watches (``app.commit.wake``)."""

    # ---- changes -------------------------------------------------------------------------

    def _touch(self) -> None:
        self.version += 1
        self.updated_at = self.clock()
        for listener in self.listeners:
            listener()

    def set_node(self, facts: NodeFacts) -> None:
        """Add or replace a node."""
        self._listed_nodes[facts.name] = facts
        self._place_node(facts)
        self._touch()

    def with_ledger_problem(self, listed: NodeFacts) -> NodeFacts:
        """``listed`` with its ledger's problem, if the ledger is unreadable."""
        ledger = self.ledgers.get(listed.name)
        if ledger is None or not ledger.problem or ledger.problem in listed.problems:
            return listed
        return dataclasses.replace(listed, problems=(*listed.problems, ledger.problem))

    def _place_node(self, listed: NodeFacts) -> None:
        facts = self.with_ledger_problem(listed)
        self.nodes[facts.name] = facts
        row = self.table.upsert(facts)
        usage = self._usage.get(facts.name)
        self.table.set_used(
            row, np.zeros(len(self.table.resources), np.int64) if usage is None else usage
        )
        self._recompute_reserved(facts.name, freed=False)

    def delete_node(self, name: str) -> None:
        """Forget a node (its pods and ledger stay, should it come back)."""
        self._listed_nodes.pop(name, None)
        if self.nodes.pop(name, None) is None:
            return
        self.table.remove(name)
        self._touch()

    def set_ledger(self, ledger: NodeLedger) -> None:
        """Add or replace a node's ledger."""
        old = self.ledgers.get(ledger.node)
        if old is not None:
            self._unindex_reservations(old)
        self.ledgers[ledger.node] = ledger
        for entry in ledger.reservations:
            self._reserving_nodes.setdefault(entry.pod_uid, set()).add(ledger.node)
            self._next_expiry = min(self._next_expiry, entry.expires_at)
        self._ledger_changed(ledger.node, (old.problem if old else "") != ledger.problem)
        self._touch()

    def delete_ledger(self, node: str) -> None:
        """Forget a node's ledger (its Lease was deleted)."""
        old = self.ledgers.pop(node, None)
        if old is None:
            return
        self._unindex_reservations(old)
        self._ledger_changed(node, bool(old.problem))
        self._touch()

    def _ledger_changed(self, node: str, problem_changed: bool) -> None:
        listed = self._listed_nodes.get(node)
        if problem_changed and listed is not None:
            self._place_node(listed)
        else:
            self._recompute_reserved(node)

    def set_ledgers(self, ledgers: Iterable[NodeLedger]) -> None:
        """Add or replace several ledgers (unchanged ones are skipped)."""
        for ledger in ledgers:
            if self.ledgers.get(ledger.node) != ledger:
                self.set_ledger(ledger)

    def keep_only_ledgers(self, nodes: Collection[str]) -> None:
        """Forget every ledger not in ``nodes`` (the end of a re-list)."""
        for node in [n for n in self.ledgers if n not in nodes]:
            self.delete_ledger(node)

    def set_pod(self, facts: PodFacts) -> None:
        """Add or replace a pod; only pods holding resources count against their node."""
        self._uncount(facts.uid)
        self.pods[facts.uid] = facts
        self._queue_waiting(facts)
        self._nominate(facts)
        holding = facts.node_name if facts.terminating and facts.holds_resources else None
        self._mark_terminating(facts.uid, holding)
        self._uid_by_name[(facts.namespace, facts.name)] = facts.uid
        was_bound = facts.uid in self._bound
        if facts.node_name:
            self._bound.add(facts.uid)
            self._bound_since.setdefault(facts.uid, self.clock())
        else:
            self._bound.discard(facts.uid)
            self._bound_since.pop(facts.uid, None)
        if facts.holds_resources and facts.node_name:
            vector = self.table.vector(facts.requests)
            self._counted[facts.uid] = (facts.node_name, vector)
            self._add_usage(facts.node_name, vector)
        if was_bound != bool(facts.node_name):
            # bound: where it is bound, the pod itself counts instead of its entry (no room
            # frees there); its entries elsewhere free their room
            self._reservations_changed(facts.uid, bound_to=facts.node_name)
        self._touch()

    def delete_pod(self, uid: str) -> None:
        """Forget a pod and free what it held."""
        facts = self.pods.pop(uid, None)
        if facts is None:
            return
        if self._uid_by_name.get((facts.namespace, facts.name)) == uid:
            del self._uid_by_name[(facts.namespace, facts.name)]
        self._uncount(uid)
        self._unqueue_waiting(uid)
        self._unnominate(uid)
        self._mark_terminating(uid, None)
        self._bound_since.pop(uid, None)
        self._bound.discard(uid)
        self._forget_gone(now := self.clock())
        self._gone[uid] = now
        self._reservations_changed(uid)  # a deleted pod holds nothing, reserved or not
        self._touch()

    def set_nodes(self, nodes: Iterable[NodeFacts]) -> None:
        """Add or replace several nodes (unchanged ones are skipped)."""
        for facts in nodes:
            if self._listed_nodes.get(facts.name) != facts:
                self.set_node(facts)

    def set_pods(self, pods: Iterable[PodFacts]) -> None:
        """Add or replace several pods (unchanged ones are skipped)."""
        for facts in pods:
            if self.pods.get(facts.uid) != facts:
                self.set_pod(facts)

    def keep_only_nodes(self, names: Collection[str]) -> None:
        """Forget every node not in ``names`` (the end of a re-list)."""
        for name in [n for n in self.nodes if n not in names]:
            self.delete_node(name)

    def keep_only_pods(self, uids: Collection[str]) -> None:
        """Forget every pod not in ``uids`` (the end of a re-list)."""
        for uid in [u for u in self.pods if u not in uids]:
            self.delete_pod(uid)

    def replace_nodes(self, nodes: Iterable[NodeFacts]) -> None:
        """Make the node set exactly ``nodes``, keeping the pods."""
        fresh = list(nodes)
        self.set_nodes(fresh)
        self.keep_only_nodes({n.name for n in fresh})

    def replace_pods(self, pods: Iterable[PodFacts]) -> None:
        """Make the pod set exactly ``pods``, keeping the nodes."""
        fresh = list(pods)
        self.set_pods(fresh)
        self.keep_only_pods({p.uid for p in fresh})

    def fork(self) -> Snapshot:
        """An independent copy to change without touching this one (a what-if, e.g.
        ``simulate``). Records are frozen and amount vectors are replaced on change, never
        mutated, so they are shared; every dict and set index is copied (any added later too),
        the table deeply. No listeners are carried over."""
        forked = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, dict | set):
                setattr(forked, name, copy.copy(value))
        forked.table = copy.deepcopy(self.table)
        forked._reserving_nodes = {uid: set(n) for uid, n in self._reserving_nodes.items()}
        forked._waiting = {key: dict(uids) for key, uids in self._waiting.items()}
        forked.listeners = []
        forked.freed_listeners = []
        return forked

    # ---- reading -------------------------------------------------------------------------

    def refresh(self) -> None:
        """Drop reservations that expired since the last call (cheap when none did)."""
        now = self.clock()
        if now < self._next_expiry:
            return
        self._next_expiry = float("inf")
        for name, ledger in self.ledgers.items():
            if ledger.reservations:
                self._recompute_reserved(name, now)
        self._touch()

    @property
    def next_expiry(self) -> float:
        """When the next counted ledger entry expires (Unix seconds; inf if none does):
        :meth:`refresh` then frees its room."""
        return self._next_expiry

    def pod_named(self, namespace: str, name: str) -> PodFacts | None:
        """The pod of that name, if this snapshot has seen it."""
        uid = self._uid_by_name.get((namespace, name))
        return None if uid is None else self.pods.get(uid)

    def waiting_like(self, pod: PodFacts) -> Iterator[PodFacts]:
        """The pending pods of ``pod``'s workload (same namespace, container ID and requests;
        ``pod`` itself excluded), in the order this snapshot first saw them pending — the
        order kube-scheduler's queue takes pods of equal priority. Nothing if it names no
        container ID."""
        key = workload_key(pod)
        for uid in () if key is None else self._waiting.get(key, ()):
            if uid != pod.uid:
                yield self.pods[uid]

    def has_reservations(self, uid: str) -> bool:
        """Whether any node's ledger, as last read, names the pod."""
        return uid in self._reserving_nodes

    def is_bound(self, uid: str) -> bool:
        """Whether this snapshot has seen the pod with a node."""
        return uid in self._bound

    def own_reservations(self, uid: str, now: float | None = None) -> dict[str, IntArray]:
        """Per node, what the pod's own live ledger entries hold there (usually nothing).

        A pod filtered again holds nothing for itself: its earlier bind attempt has ended, and
        a bind replaces the pod's own entry. Counting it would shut the pod out of the very
        capacity it reserved until the entry expires."""
        nodes = self._reserving_nodes.get(uid)
        if not nodes or self.accounted(uid):
            return {}
        now = self.clock() if now is None else now
        held: dict[str, IntArray] = {}
        for name in nodes:
            for entry in self.reservations_on(name):
                if entry.pod_uid == uid and entry.live(now):
                    vector = self.table.vector(dict(entry.requests))
                    held[name] = held[name] + vector if name in held else vector
        return held

    def nominated_for(self, uid: str, priority: int) -> dict[str, IntArray]:
        """Per node, the room held there for pod ``uid`` of ``priority`` by nominated pods:
        those of priority ≥ ``priority`` other than the pod itself, as kube-scheduler's filters
        count them (``addGENominatedPods``). A nominated pod with a live ledger entry is left
        out: its bind is under way, and the entry holds its room. Vectorised over every
        nomination (they are few, and the arrays are rebuilt only when one changes)."""
        if not self._nominated_node:
            return {}
        arrays = self._nomination_arrays()
        counted = arrays.priority >= priority
        own = arrays.index.get(uid)
        if own is not None:
            counted[own] = False
        reserving = self._reserving_nodes
        if reserving:
            index, now = arrays.index, self.clock()
            small, large = (index, reserving) if len(index) < len(reserving) else (reserving, index)
            for other in [u for u in small if u in large]:
                if self._has_live_entry(other, now):
                    counted[index[other]] = False
        if not counted.any():
            return {}
        nodes = arrays.node_of[counted]
        held = np.zeros((len(arrays.nodes), len(self.table.resources)), np.int64)
        np.add.at(held, nodes, arrays.requests[counted])
        return {arrays.nodes[i]: held[i] for i in np.unique(nodes).tolist()}

    def _nomination_arrays(self) -> NominationArrays:
        arrays = self._nominations
        if arrays is None:
            entries = [(node, n) for node, held in self._nominated.items() for n in held]
            nodes = list(self._nominated)
            position = {node: i for i, node in enumerate(nodes)}
            width = len(self.table.resources)
            arrays = self._nominations = NominationArrays(
                nodes=nodes,
                node_of=np.array([position[node] for node, _ in entries], np.intp),
                priority=np.array([n.priority for _, n in entries], np.int64),
                index={n.uid: i for i, (_, n) in enumerate(entries)},
                requests=np.array([n.requests for _, n in entries], np.int64).reshape(-1, width),
            )
        return arrays

    def nominated_held(
        self, node: str, pod: PodFacts, skip: Collection[str] = ()
    ) -> dict[str, int]:
        """What pods nominated to ``node`` hold there against ``pod`` (see
        :meth:`nominated_for`), by resource name; pods in ``skip`` (decided with it) left out."""
        held: dict[str, int] = {}
        for nomination in self._holding(node, pod.uid, pod.priority, skip):
            for resource, amount in zip(self.table.resources, nomination.requests.tolist()):
                if amount:
                    held[resource] = held.get(resource, 0) + amount
        return held

    def _holding(
        self, node: str, uid: str, priority: int, skip: Collection[str] = ()
    ) -> Iterator[Nomination]:
        """The nominations on ``node`` that hold room against pod ``uid`` of ``priority``."""
        now = None
        for nomination in self._nominated.get(node, ()):
            if nomination.priority < priority:
                return  # highest priority first
            if nomination.uid == uid or nomination.uid in skip:
                continue
            now = self.clock() if now is None else now
            if not self._has_live_entry(nomination.uid, now):
                yield nomination

    def nominations_holding(self, node: str, uid: str, priority: int) -> list[PodFacts]:
        """The nominated pods whose room on ``node`` is held against pod ``uid`` of
        ``priority`` (highest priority first): what :meth:`nominated_for` counts there."""
        return [self.pods[n.uid] for n in self._holding(node, uid, priority)]

    def terminating_on(self, node: str) -> tuple[PodFacts, ...]:
        """The pods being deleted from ``node`` that still hold their room there."""
        return tuple(self.pods[uid] for uid in sorted(self._terminating.get(node, ())))

    def counted_on(self, uid: str, node: str) -> IntArray | None:
        """What the pod holds on ``node`` in this snapshot's accounting (None: nothing)."""
        counted = self._counted.get(uid)
        return counted[1] if counted is not None and counted[0] == node else None

    def _has_live_entry(self, uid: str, now: float) -> bool:
        nodes = self._reserving_nodes.get(uid)
        if not nodes:
            return False
        return any(e.pod_uid == uid and e.live(now) for n in nodes for e in self.reservations_on(n))

    def reservations_on(self, node: str) -> tuple[Reservation, ...]:
        """The entries of the node's ledger as last read (none if it has no ledger)."""
        ledger = self.ledgers.get(node)
        return () if ledger is None else ledger.reservations

    def accounted(self, uid: str) -> bool:
        """Whether a ledger entry of this pod no longer needs counting: the pod is seen bound
        (it counts itself) or deleted (it can never be bound: Bindings carry its UID)."""
        return uid in self._bound or uid in self._gone

    def is_gone(self, uid: str) -> bool:
        """Whether this snapshot saw the pod deleted (within the last ``GONE_MEMORY_SECONDS``)."""
        return uid in self._gone

    def bound_for(self, uid: str) -> float:
        """Seconds since this snapshot first saw the pod bound (0 if it has not)."""
        since = self._bound_since.get(uid)
        return 0.0 if since is None else self.clock() - since

    def usage(self, node: str) -> IntArray:
        """Requests of the pods holding resources on ``node`` (a copy)."""
        found = self._usage.get(node)
        return np.zeros(len(self.table.resources), np.int64) if found is None else found.copy()

    def free(self, node: str) -> IntArray:
        """allocatable − usage − live reservations, per tracked resource."""
        return self.table.free_of(self.table.rows.get(node, UNKNOWN_ROW))

    # ---- internals -----------------------------------------------------------------------

    def _add_usage(self, node: str, delta: IntArray) -> None:
        usage = self._usage.get(node)
        self._usage[node] = delta.copy() if usage is None else usage + delta
        row = self.table.rows.get(node)
        if row is not None:
            self.table.set_used(row, self._usage[node])

    def _uncount(self, uid: str) -> None:
        counted = self._counted.pop(uid, None)
        if counted is not None:
            node, vector = counted
            self._add_usage(node, -vector)

    def _queue_waiting(self, facts: PodFacts) -> None:
        key = workload_key(facts) if facts.waits else None
        if self._waiting_key.get(facts.uid) == key:
            return  # unchanged: keeps its place
        self._unqueue_waiting(facts.uid)
        if key is not None:
            self._waiting.setdefault(key, {})[facts.uid] = None
            self._waiting_key[facts.uid] = key

    def _unqueue_waiting(self, uid: str) -> None:
        key = self._waiting_key.pop(uid, None)
        if key is not None:
            group = self._waiting[key]
            del group[uid]
            if not group:
                del self._waiting[key]

    def _nominate(self, facts: PodFacts) -> None:
        node = facts.nominated
        self._unnominate(facts.uid)
        if node is None:
            return
        self._nominations = None
        entry = Nomination(facts.priority, facts.uid, self.table.vector(facts.requests))
        others = self._nominated.get(node, ())
        self._nominated[node] = tuple(sorted((*others, entry), key=lambda n: (-n.priority, n.uid)))
        self._nominated_node[facts.uid] = node

    def _unnominate(self, uid: str) -> None:
        node = self._nominated_node.pop(uid, None)
        if node is None:
            return
        self._nominations = None
        left = tuple(n for n in self._nominated[node] if n.uid != uid)
        if left:
            self._nominated[node] = left
        else:
            del self._nominated[node]

    def _mark_terminating(self, uid: str, node: str | None) -> None:
        """Index terminating pods by node (for ``/explain``: they are counted like any pod
        holding resources until they are deleted)."""
        old = self._terminating_at.pop(uid, None)
        if old is not None:
            left = self._terminating[old] - {uid}
            if left:
                self._terminating[old] = left
            else:
                del self._terminating[old]
        if node is not None:
            self._terminating_at[uid] = node
            self._terminating[node] = self._terminating.get(node, frozenset()) | {uid}

    def _unindex_reservations(self, ledger: NodeLedger) -> None:
        for entry in ledger.reservations:
            holders = self._reserving_nodes.get(entry.pod_uid)
            if holders is not None:
                holders.discard(ledger.node)
                if not holders:
                    del self._reserving_nodes[entry.pod_uid]

    def _reservations_changed(self, uid: str, *, bound_to: str | None = None) -> None:
        for node in self._reserving_nodes.get(uid, ()):
            self._recompute_reserved(node, freed=node != bound_to)

    def held_by_reservations(self, node: str, now: float | None = None) -> dict[str, int]:
        """What the node's ledger holds: entries not expired whose pod this snapshot has not
        seen bound (once bound, the pod itself is counted instead)."""
        now = self.clock() if now is None else now
        held: dict[str, int] = {}
        for entry in self.reservations_on(node):
            if entry.live(now) and not self.accounted(entry.pod_uid):
                for resource, amount in entry.requests:
                    held[resource] = held.get(resource, 0) + amount
                self._next_expiry = min(self._next_expiry, entry.expires_at)
        return held

    def _forget_gone(self, now: float) -> None:
        """Deleted pods are remembered as long as a ledger entry could name them."""
        gone = self._gone
        while gone:
            uid, since = next(iter(gone.items()))
            if now - since < GONE_MEMORY_SECONDS:
                break
            del gone[uid]

    def _recompute_reserved(
        self, node: str, now: float | None = None, *, freed: bool = True
    ) -> None:
        """Recount what the node's ledger holds; with ``freed``, tell ``freed_listeners`` when
        that shrank (room came free; False where the cause is an API event kube-scheduler sees
        itself, or the room passes to a bound pod)."""
        row = self.table.rows.get(node)
        if row is None:
            return
        reserved = self.table.vector(self.held_by_reservations(node, now))
        shrank = freed and bool((reserved < self.table.reserved[:, row]).any())
        self.table.set_reserved(row, reserved)
        if shrank:
            for listener in self.freed_listeners:
                listener(node)
