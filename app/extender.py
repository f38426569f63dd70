"""The extender's verbs: decoded kube-scheduler arguments in, encoded replies out.

This is the glue between the layers: wire (decoded args) → state (snapshot rows) → policy
(verdicts and scores) → wire (reply bytes). Routes call one function here and send the result.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from app.config import Settings
from app.contract import Keys
from app.policy.candidates import Candidates
from app.policy.demand import PodAnnotationError, PodDemand, parse_demand
from app.policy.engine import FilterOutcome, Policy
from app.policy.types import Predicate
from app.preempt import PreemptionVerdict, preemption_verdict
from app.state.records import NodeFacts, node_facts
from app.state.snapshot import Snapshot
from app.state.table import IntArray, Listed, NodeTable
from app.wire.codec import decode_node, decode_node_names, encode
from app.wire.quantity import QuantityError
from app.wire.replies import filter_reply, host_priority_list, json_array, object_members
from app.wire.requests import pod_requests
from app.wire.types import ExtenderArgs, ExtenderArgsRawNames, ExtenderPreemptionArgs, Pod

Args = ExtenderArgs | ExtenderArgsRawNames

_FULL_NODE_CACHE = 20_000
_DEMAND_CACHE = 256  # pods between their filter and prioritize calls


class Observer:
    """Told about every decision (metrics, decision logs); the default does nothing."""

    def filtered(
        self, demand: PodDemand, outcome: FilterOutcome, predicates: Sequence[Predicate]
    ) -> None:
        """After a filter decision."""

    def scored(self, demand: PodDemand, scores: npt.NDArray[np.int64]) -> None:
        """After a prioritize decision."""

    def preempted(self, demand: PodDemand, verdict: PreemptionVerdict) -> None:
        """After a preempt decision."""


class PodError(ValueError):
    """The pod cannot be placed as written (bad annotation or quantity): reported in ``Error``."""


@dataclass(frozen=True, slots=True)
class Request:
    """One filter/prioritize call resolved against state: the pod and its candidate nodes."""

    demand: PodDemand
    nodes: Candidates
    listed: Listed
    """The candidates' rows and pre-encoded reply fragments, in request order."""
    raw_nodes: list[msgspec.Raw] | None
    """Full-nodes mode: the request's node objects, echoed back for the kept ones."""


class Extender:
    """Filter, prioritize and explain against one snapshot."""

    def __init__(
        self, settings: Settings, snapshot: Snapshot, observer: Observer | None = None
    ) -> None:
        self.settings = settings
        self.observer: Observer = observer or Observer()
        self.snapshot = snapshot
        self.keys = Keys(settings.prefix)
        self.policy = Policy(settings, snapshot.table.resources)
        self._gpu_column = snapshot.table.gpu_column
        self._full_nodes: OrderedDict[tuple[str, str], NodeFacts] = OrderedDict()
        self._demands: OrderedDict[tuple[str, str], PodDemand] = OrderedDict()

    # ---- resolving a request -------------------------------------------------------------

    def demand(self, pod: Pod) -> PodDemand:
        """The pod's demand; raises :class:`PodError` with a message for kube-scheduler.

        kube-scheduler sends the same pod to filter and then prioritize: a pod already read at
        the same UID and resourceVersion is not read again.
        """
        meta = pod.metadata
        key = (meta.uid, meta.resourceVersion)
        if meta.uid and meta.resourceVersion:
            known = self._demands.get(key)
            if known is not None:
                return known
        demand = self._read_demand(pod)
        if meta.uid and meta.resourceVersion:
            self._demands[key] = demand
            if len(self._demands) > _DEMAND_CACHE:
                self._demands.popitem(last=False)
        return demand

    def _read_demand(self, pod: Pod) -> PodDemand:
        meta = pod.metadata
        try:
            requests = self.snapshot.table.vector(pod_requests(pod))
            return parse_demand(
                namespace=meta.namespace,
                name=meta.name,
                labels=meta.labels or {},
                annotations=meta.annotations or {},
                requests=requests,
                gpu_count=int(requests[self._gpu_column]),
                keys=self.keys,
            )
        except (PodAnnotationError, QuantityError) as exc:
            raise PodError(f"pod {meta.namespace}/{meta.name}: {exc}") from exc

    def resolve(self, args: Args) -> Request:
        """Map the request's nodes onto snapshot rows (or request-built rows, full mode).

        The node list is read before the pod, so a malformed list is a bad request (400)
        whatever the pod says."""
        assert args.Pod is not None  # the codec guarantees it
        snapshot = self.snapshot
        snapshot.refresh()
        if args.Nodes is not None and args.Nodes.items is not None:
            raw = args.Nodes.items
            facts = [self._facts_of(item) for item in raw]
            if all(snapshot.nodes.get(f.name) is f for f in facts):
                table, lookup = snapshot.table, snapshot.nodes
            else:
                table = self._table_from(facts)
                lookup = {f.name: snapshot.with_ledger_problem(f) for f in facts}
            listed = table.listed([f.name for f in facts])
            adjusted = self.adjustments(args.Pod, table)
            nodes = Candidates(table, listed.rows, lookup, listed, adjusted)
            return Request(self.demand(args.Pod), nodes, listed, raw)
        table = snapshot.table
        if isinstance(args, ExtenderArgsRawNames):
            listed = table.listed_raw(bytes(args.NodeNames), decode_node_names)
        else:
            listed = table.listed(args.NodeNames or [])
        adjusted = self.adjustments(args.Pod, table)
        nodes = Candidates(table, listed.rows, snapshot.nodes, listed, adjusted)
        return Request(self.demand(args.Pod), nodes, listed, None)

    def adjustments(
        self, pod: Pod, table: NodeTable, freed: Mapping[str, IntArray] | None = None
    ) -> dict[int, IntArray]:
        """Per row, what to add to the node's free room when deciding ``pod``: the pod's own
        reservations (they hold nothing against it) and ``freed`` (a preemption's victims),
        less the room that nominated pods of the same or higher priority hold there."""
        snapshot = self.snapshot
        uid = pod.metadata.uid
        changes = dict(snapshot.own_reservations(uid))
        for node, held in snapshot.nominated_for(uid, pod.spec.priority or 0).items():
            changes[node] = changes[node] - held if node in changes else -held
        for node, amounts in (freed or {}).items():
            changes[node] = changes[node] + amounts if node in changes else amounts
        rows = table.rows
        return {rows[n]: amounts for n, amounts in changes.items() if n in rows}

    def _facts_of(self, raw: msgspec.Raw) -> NodeFacts:
        """Full-nodes mode: the request's node is authoritative; reuse parsed facts when the
        snapshot (or an earlier request) saw this exact resourceVersion."""
        node = decode_node(raw)
        key = (node.metadata.name, node.metadata.resourceVersion)
        known = self.snapshot.nodes.get(key[0])
        if known is not None and key[1] and known.resource_version == key[1]:
            return known
        cached = self._full_nodes.get(key)
        if cached is None:
            parsing = self.snapshot.parsing
            cached = node_facts(node, parsing.keys, parsing.gpu_resource, parsing.gpu_aliases)
            self._full_nodes[key] = cached
            if len(self._full_nodes) > _FULL_NODE_CACHE:
                self._full_nodes.popitem(last=False)
        return cached

    def _table_from(self, facts: list[NodeFacts]) -> NodeTable:
        snapshot = self.snapshot
        table = NodeTable(snapshot.table.resources, snapshot.parsing.gpu_resource, len(facts) + 1)
        for item in facts:
            row = table.upsert(snapshot.with_ledger_problem(item))
            table.set_used(row, snapshot.usage(item.name))
            table.set_reserved(row, table.vector(snapshot.held_by_reservations(item.name)))
        return table

    # ---- verbs ---------------------------------------------------------------------------

    def filter(self, args: Args) -> bytes:
        """``ExtenderFilterResult`` bytes: kept nodes in the request's form, failures split
        into resolvable and unresolvable, ``Error`` for a pod that cannot be read."""
        try:
            request = self.resolve(args)
        except PodError as exc:
            return encode(filter_error(str(exc)))
        outcome = self.policy.filter(request.demand, request.nodes)
        self.observer.filtered(request.demand, outcome, self.policy.predicates)
        if request.raw_nodes is not None:
            return filter_reply_of(request, outcome, None)
        kept = json_array(request.listed.json_names[outcome.passed].tolist())
        # kube-scheduler prioritizes only between two or more nodes; when all are kept it sends
        # the filter's own list, remembered already
        if 1 < np.count_nonzero(outcome.passed) < len(outcome.passed):
            self.snapshot.table.remember(kept, request.listed.kept(outcome.passed))
        return filter_reply_of(request, outcome, kept)

    def prioritize(self, args: Args) -> bytes:
        """``HostPriorityList`` bytes, in request order. Raises :class:`PodError`."""
        request = self.resolve(args)
        scores = self.policy.score(request.demand, request.nodes).scores
        self.observer.scored(request.demand, scores)
        return host_priority_list(request.listed.host_prefixes, scores)

    def preempt(self, args: ExtenderPreemptionArgs) -> bytes:
        """``ExtenderPreemptionResult`` bytes: kube-scheduler's candidate nodes on which the
        preemptor passes the filter once its victims are gone, with those victims unchanged.
        Raises :class:`PodError`."""
        assert args.Pod is not None  # the codec guarantees it
        demand = self.demand(args.Pod)
        self.snapshot.refresh()
        verdict = preemption_verdict(
            self.snapshot, args, lambda freed, names: self._passes(args, demand, freed, names)
        )
        self.observer.preempted(demand, verdict)
        return encode({"NodeNameToMetaVictims": verdict.kept})

    def _passes(
        self,
        args: ExtenderPreemptionArgs,
        demand: PodDemand,
        freed: Mapping[str, IntArray],
        names: Sequence[str],
    ) -> FilterOutcome:
        """The filter's verdict on ``names`` with ``freed`` given back on each."""
        assert args.Pod is not None
        table = self.snapshot.table
        listed = table.listed(names)
        adjusted = self.adjustments(args.Pod, table, freed)
        nodes = Candidates(table, listed.rows, self.snapshot.nodes, listed, adjusted)
        return self.policy.filter(demand, nodes)

    def explain(self, args: Args) -> dict[str, Any]:
        """A readable account of the decision for every node in the request."""
        try:
            request = self.resolve(args)
        except PodError as exc:
            return {"Error": str(exc)}
        demand = request.demand
        resources = self.snapshot.table.resources
        return {
            "pod": demand.pod,
            "demand": {
                "requests": {r: int(v) for r, v in zip(resources, demand.requests) if v},
                "gpu_types": list(demand.gpu_types) if demand.gpu_types else "any",
                "gpu_memory_mib": demand.gpu_memory_mib,
                "pool": demand.pool,
                "preemptible": demand.preemptible,
                "container_id": demand.container_id,
            },
            "snapshot_version": self.snapshot.version,
            "nodes": self._held_on(args.Pod, self.policy.explain(demand, request.nodes)),
        }

    def _held_on(self, pod: Pod | None, report: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Name, per node, the pods that hold room there besides those running: pods
        nominated there that the decision counted, and terminating pods (counted until gone)."""
        assert pod is not None
        snapshot = self.snapshot
        uid, priority = pod.metadata.uid, pod.spec.priority or 0
        resources = snapshot.table.resources
        for entry in report:
            nominated = snapshot.nominations_holding(entry["node"], uid, priority)
            if nominated:
                entry["nominated"] = [
                    {
                        "pod": f"{p.namespace}/{p.name}",
                        "priority": p.priority,
                        "requests": {r: p.requests[r] for r in resources if p.requests.get(r)},
                    }
                    for p in nominated
                ]
            terminating = snapshot.terminating_on(entry["node"])
            if terminating:
                entry["terminating"] = [f"{p.namespace}/{p.name}" for p in terminating]
        return report


def filter_error(message: str) -> dict[str, Any]:
    """A filter reply that fails the whole call with ``message``."""
    return {
        "Nodes": None,
        "NodeNames": None,
        "FailedNodes": {},
        "FailedAndUnresolvableNodes": {},
        "Error": message,
    }


def filter_reply_of(request: Request, outcome: FilterOutcome, kept: bytes | None) -> bytes:
    """``ExtenderFilterResult`` bytes, joined from the table's pre-encoded names: failed nodes
    one group (one reason) at a time; kept nodes in request order, as the names array ``kept``
    (names mode) or the request's own node objects (full-nodes mode)."""
    encoded = request.listed.json_names

    def names_of(which: npt.NDArray[Any]) -> list[bytes]:
        return encoded[which].tolist()  # type: ignore[no-any-return]

    groups = outcome.groups
    first = groups[0].start if groups else len(outcome.order)
    failing = names_of(outcome.order[first:])  # grouped by reason
    runs = [(failing[g.start - first : g.stop - first], g.reason, g.unresolvable) for g in groups]
    failed = object_members((keys, reason) for keys, reason, hard in runs if not hard)
    unresolvable = object_members((keys, reason) for keys, reason, hard in runs if hard)
    if request.raw_nodes is not None:
        nodes = list(compress(request.raw_nodes, outcome.passed.tolist()))
        return filter_reply(node_names=None, nodes=nodes, failed=failed, unresolvable=unresolvable)
    return filter_reply(node_names=kept, nodes=None, failed=failed, unresolvable=unresolvable)
