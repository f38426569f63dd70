"""POST /bind: reserve capacity with a compare-and-swap on the node's ledger, then create the
Binding.

1. Find the pod (this replica's snapshot, else GET) — already bound here: success.
2. Read the node's ledger Lease (``app.state.ledger``): the snapshot's copy first (no GET on
   the happy path), a fresh GET after a conflict. The node itself comes from the snapshot.
3. free = allocatable − pods bound there − live reservations of pods not yet seen bound.
   The pod does not fit any more → ``Error`` naming the resources.
4. PATCH the ledger (expired entries pruned, this pod's entry added) carrying the Lease's
   resourceVersion, or create the Lease if the node has none yet. 409 → someone else wrote (or
   created it) first: back off (jittered), re-read, re-decide from scratch; never replay the
   old write. Binds waiting for the same node in this replica share one write (group commit):
   decided in arrival order, each within what the earlier ones left. The write also reserves
   the node ahead for the next pending pods of the same workload (``app.commit.ahead``); a pod
   whose entry reserved ahead is in the ledger skips this step.
5. POST the Binding with the pod's UID as precondition. Refused (4xx) → release the
   reservation (best effort; the TTL covers the rest; an entry reserved ahead stays), unless a
   409 "already assigned" finds the pod on this node or cannot read it. No answer, or a 5xx →
   keep it: the pod may be bound.

Every step runs inside one time budget, which must stay below kube-scheduler's httpTimeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import msgspec

from app.commit.ahead import CLOCK_SKEW_SECONDS, affinity_pulls, reserve_ahead, usable_entry
from app.commit.ledger_write import admit_in_order, entry_requests, free_for, ledger_after
from app.config import Settings
from app.contract import LEDGER_OF_NODE
from app.kube import ApiReply, KubeApi, Unreachable
from app.metrics import Metrics
from app.state.ledger import NodeLedger, Reservation, ledger_of
from app.state.records import NodeFacts, PodFacts, WorkloadKey, node_facts, pod_facts, workload_key
from app.state.snapshot import Snapshot
from app.wire.codec import BadRequest, decode_binding_args, encode
from app.wire.quantity import QuantityError
from app.wire.types import ExtenderBindingArgs, Lease, Node, Pod

log = logging.getLogger(__name__)

T = TypeVar("T")
CONFLICT = 409
NOT_FOUND = 404
SERVER_ERROR = 500
BUDGET_EXHAUSTED = "budget_exhausted"
UNKNOWN_OUTCOME = "unknown_outcome"
LAST_NODES_KEPT = 10_000
"""Workloads whose last node is remembered (the least recently bound are forgotten)."""
MIN_CALL_SECONDS = 0.1
"""A call with less of the budget left is not sent: it would mostly time out, and a write whose
outcome is unknown holds its capacity until the reservation expires."""

_node_decoder = msgspec.json.Decoder(Node)
_pod_decoder = msgspec.json.Decoder(Pod)
_lease_decoder = msgspec.json.Decoder(Lease)


class BindError(Exception):
    """The bind failed; ``str()`` is the ``Error`` kube-scheduler shows on the pod."""

    def __init__(self, message: str, outcome: str) -> None:
        super().__init__(message)
        self.outcome = outcome


class NotSent(BindError):
    """The budget ran out before the call was sent: nothing happened on the server."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"bind budget of {budget:g}s exhausted", BUDGET_EXHAUSTED)


@dataclass
class Attempts:
    """What one bind did, for logs and metrics."""

    reservations: int = 0
    conflicts: int = 0
    binding_sent: bool = False
    reserved_ahead: bool = False
    """The node held an entry reserved ahead for the pod: nothing was written."""


@dataclass(eq=False)
class _Waiting:
    """One bind's reservation, queued for its node's next write."""

    pod: PodFacts
    requests: dict[str, int]
    deadline: float
    attempts: Attempts
    done: asyncio.Future[None]


@dataclass(eq=False)
class _Release:
    """A reservation to remove (best effort) in its node's next write."""

    deadline: float
    done: asyncio.Future[None]


@dataclass
class _NodeQueue:
    """What waits for one node's next write, and the task writing it."""

    waiting: list[_Waiting] = field(default_factory=list)
    releases: dict[str, _Release] = field(default_factory=dict)
    writer: asyncio.Task[None] | None = None


class Binder:
    """Commits placements for one extender replica."""

    def __init__(
        self,
        settings: Settings,
        api: KubeApi,
        snapshot: Snapshot,
        metrics: Metrics | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.bind_settings = settings.bind
        self.api = api
        self.snapshot = snapshot
        self.metrics = metrics or Metrics()
        self.metrics.bind_budget.set(self.bind_settings.budget_seconds)
        self.wall_clock = wall_clock
        self.rng = rng or random.Random()
        self.ledger_key = snapshot.parsing.keys.reservations
        self.ledger_label = snapshot.parsing.keys.ledger
        self.ledger_namespace = settings.kube.ledger_namespace
        self._queues: dict[str, _NodeQueue] = {}
        self._last_node: OrderedDict[WorkloadKey, str] = OrderedDict()
        """Per workload, the node this replica last bound one of its pods to (most recent last)."""

    # ---- route adapter -------------------------------------------------------------------

    async def handle(self, body: bytes) -> tuple[int, bytes]:
        """Decode ``ExtenderBindingArgs``, bind, answer ``ExtenderBindingResult``."""
        try:
            args = decode_binding_args(body)
        except BadRequest as exc:
            return 400, encode({"Error": str(exc)})
        started = time.monotonic()
        attempts = Attempts()
        try:
            # The per-call timeouts keep each API call inside the budget; this also counts
            # time spent waiting for a connection, the event loop or a node's write.
            async with asyncio.timeout(self.bind_settings.budget_seconds):
                outcome = await self.bind(args, attempts)
            error = ""
        except TimeoutError:
            spent = self._budget_spent(attempts)
            outcome, error = spent.outcome, str(spent)
            if attempts.binding_sent:
                outcome = UNKNOWN_OUTCOME
                error += "; the binding's outcome is unknown, so its reservation is kept"
        except BindError as exc:
            outcome, error = exc.outcome, str(exc)
        except Exception as exc:  # never a 500: kube-scheduler retries the pod
            log.exception("bind failed unexpectedly")
            outcome, error = "internal_error", f"internal error: {exc}"
        elapsed = time.monotonic() - started
        self.metrics.binds.labels(outcome).inc()
        self.metrics.bind_seconds.observe(elapsed)
        log.info(
            "bind",
            extra={
                "verb": "bind", "pod": f"{args.PodNamespace}/{args.PodName}", "node": args.Node,
                "outcome": outcome, "reason": error, "reservations": attempts.reservations,
                "conflicts": attempts.conflicts, "reserved_ahead": attempts.reserved_ahead,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )  # fmt: skip
        return 200, encode({"Error": error})

    # ---- the algorithm -------------------------------------------------------------------

    async def bind(self, args: ExtenderBindingArgs, attempts: Attempts) -> str:
        """Bind the pod or raise :class:`BindError`; returns the outcome label."""
        deadline = time.monotonic() + self.bind_settings.budget_seconds
        pod = await self._pod(args, deadline)
        if pod.node_name == args.Node:
            return "already_bound"
        if pod.node_name:
            raise BindError(
                f"pod {args.PodNamespace}/{args.PodName} is already bound to node {pod.node_name}",
                "bound_elsewhere",
            )
        await self._reserve(args, pod, deadline, attempts)
        await self._create_binding(args, pod, deadline, attempts)
        self.snapshot.set_pod(replace(pod, node_name=args.Node))
        self._remember_node(pod, args.Node)
        return "bound"

    async def _pod(self, args: ExtenderBindingArgs, deadline: float) -> PodFacts:
        known = self.snapshot.pod_named(args.PodNamespace, args.PodName)
        if known is not None and (not args.PodUID or known.uid == args.PodUID):
            return known
        reply = await self._call(deadline, self.api.get_pod, args.PodNamespace, args.PodName)
        if not reply.ok:
            raise BindError(_api_message("reading the pod", reply), _outcome(reply))
        try:
            facts = pod_facts(_pod_decoder.decode(reply.body))
        except QuantityError as exc:
            raise BindError(f"pod {args.PodNamespace}/{args.PodName}: {exc}", "bad_pod") from exc
        if args.PodUID and facts.uid != args.PodUID:
            raise BindError(
                f"pod {args.PodNamespace}/{args.PodName} has UID {facts.uid}, not {args.PodUID}: "
                "it was deleted and re-created",
                "uid_mismatch",
            )
        return facts

    async def _reserve(
        self, args: ExtenderBindingArgs, pod: PodFacts, deadline: float, attempts: Attempts
    ) -> None:
        """Queue the pod's reservation for the node's next write; done when it is written."""
        tracked = self.snapshot.table.resources
        waiting = _Waiting(
            pod=pod,
            requests={r: pod.requests.get(r, 0) for r in tracked},
            deadline=deadline,
            attempts=attempts,
            done=asyncio.get_running_loop().create_future(),
        )
        queue = self._queue(args.Node)
        queue.waiting.append(waiting)
        self._kick(args.Node, queue)
        await waiting.done

    # ---- group commit: one writer per node -----------------------------------------------

    def _queue(self, node: str) -> _NodeQueue:
        queue = self._queues.get(node)
        if queue is None:
            queue = self._queues[node] = _NodeQueue()
        return queue

    def _kick(self, node: str, queue: _NodeQueue) -> None:
        if queue.writer is None:
            queue.writer = asyncio.get_running_loop().create_task(self._drain(node, queue))

    async def _drain(self, node: str, queue: _NodeQueue) -> None:
        """Write the node's queued reservations and releases, a batch per write, until none
        is left. Binds to one node from this replica would only collide on its
        resourceVersion, so they share writes; other replicas are kept honest by the CAS."""
        try:
            while queue.waiting or queue.releases:
                batch, queue.waiting = queue.waiting, []
                releases, queue.releases = queue.releases, {}
                try:
                    await self._write(node, batch, releases)
                except Exception as exc:  # answer every waiter; never a hanging bind
                    if not isinstance(exc, BindError):
                        log.exception("reservation write failed unexpectedly")
                        exc = BindError(f"internal error: {exc}", "internal_error")
                    spent = exc.outcome == BUDGET_EXHAUSTED
                    for waiting in batch:
                        if not waiting.done.done():
                            waiting.done.set_exception(
                                self._budget_spent(waiting.attempts) if spent else exc
                            )
                    _settle(releases)
        finally:
            queue.writer = None
            if not queue.waiting and not queue.releases:
                self._queues.pop(node, None)

    async def _write(self, name: str, batch: list[_Waiting], releases: dict[str, _Release]) -> None:
        """One CAS write for the batch: decide each in arrival order against the node's
        ledger, write it, and on 409 back off, re-read and re-decide; never replay."""
        node = self.snapshot.nodes.get(name)
        ledger = self.snapshot.ledgers.get(name)  # first try: the watched copy, no GET
        fresh = True
        delay = self.bind_settings.backoff_initial_seconds
        tracked = self.snapshot.table.resources
        while True:
            for waiting in batch:
                if not waiting.done.done() and time.monotonic() >= waiting.deadline:
                    waiting.done.set_exception(self._budget_spent(waiting.attempts))
            batch = [w for w in batch if not w.done.done()]  # answered, or gave up waiting
            now_mono = time.monotonic()
            _settle({uid: r for uid, r in releases.items() if r.deadline <= now_mono})
            releases = {uid: r for uid, r in releases.items() if r.deadline > now_mono}
            if not batch and not releases:
                return
            deadline = max([w.deadline for w in batch] + [r.deadline for r in releases.values()])
            if node is None:
                node = await self._read_node(name, deadline)
            if not fresh:
                ledger = await self._read_ledger(name, deadline)
                fresh = True
            if ledger is not None and ledger.problem:  # never overwrite what we cannot read
                raise BindError(f"node {name}: {ledger.problem}", "bad_ledger")
            reservations = () if ledger is None else ledger.reservations
            now = self.wall_clock()
            batch = self._take_reserved_ahead(batch, reservations, now)
            if not batch and not releases:
                return
            used = dict(zip(tracked, self.snapshot.usage(name).tolist(), strict=True))
            free = free_for(
                allocatable={r: node.allocatable.get(r, 0) for r in tracked},
                used=used,
                ledger=reservations,
                deciding={w.pod.uid for w in batch},
                is_bound=self.snapshot.accounted,
                now=now,
            )
            admitted: list[_Waiting] = []
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
            if not admitted and not releases:
                return
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
            entries += ahead
            text = ledger_after(
                reservations, add=entries, remove=releases, now=now, settled=self._settled
            )
            for waiting in admitted:
                waiting.attempts.reservations += 1
                if waiting.attempts.reservations > 1:
                    self.metrics.bind_retries.inc()
            try:
                reply = await self._write_ledger(node, ledger, text, deadline)
            except BindError as exc:
                for waiting in admitted:
                    spent = exc.outcome == BUDGET_EXHAUSTED
                    waiting.done.set_exception(
                        self._budget_spent(waiting.attempts) if spent else exc
                    )
                _settle(releases)
                return
            if reply.ok:
                written = ledger_of(_lease_decoder.decode(reply.body), self.ledger_key)
                self.snapshot.set_ledger(written)  # this replica sees its own reservations now
                if ahead:
                    self.metrics.reserved_ahead.labels("written").inc(len(ahead))
                for waiting in admitted:
                    if waiting.done.done():  # gave up while the write was in flight
                        self._release_later(name, waiting.pod.uid)
                    else:
                        waiting.done.set_result(None)
                _settle(releases)
                return
            # 409: written or created by someone else first; 404: the Lease was deleted
            if reply.status not in (CONFLICT, NOT_FOUND):
                error = BindError(_api_message(f"reserving on node {name}", reply), _outcome(reply))
                for waiting in admitted:
                    waiting.done.set_exception(error)
                _settle(releases)
                return
            self.metrics.cas_conflicts.inc()
            pause = self.rng.uniform(delay / 2, delay)
            for waiting in admitted:
                waiting.attempts.conflicts += 1
                if time.monotonic() + pause >= waiting.deadline:
                    waiting.done.set_exception(self._budget_spent(waiting.attempts))
            await asyncio.sleep(pause)
            delay = min(delay * 2, self.bind_settings.backoff_max_seconds)
            fresh = False  # re-read the ledger and re-decide from scratch

    def _take_reserved_ahead(
        self, batch: list[_Waiting], ledger: tuple[Reservation, ...], now: float
    ) -> list[_Waiting]:
        """Answer the binds whose pod the ledger already holds an entry reserved ahead for
        (nothing to write: the entry stands until it expires or the pod settles); the rest."""
        if not any(e.ahead for e in ledger):
            return batch
        min_life = self.bind_settings.budget_seconds + CLOCK_SKEW_SECONDS
        rest: list[_Waiting] = []
        for waiting in batch:
            if usable_entry(ledger, waiting.pod.uid, waiting.requests, now=now, min_life=min_life):
                waiting.attempts.reserved_ahead = True
                self.metrics.reserved_ahead.labels("used").inc()
                waiting.done.set_result(None)
            else:
                rest.append(waiting)
        return rest

    def _ahead(
        self,
        name: str,
        admitted: list[_Waiting],
        batch: list[_Waiting],
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

    def _remember_node(self, pod: PodFacts, node: str) -> None:
        key = workload_key(pod)
        if key is None:
            return
        self._last_node[key] = node
        self._last_node.move_to_end(key)
        if len(self._last_node) > LAST_NODES_KEPT:
            self._last_node.popitem(last=False)

    def _queue_release(self, node: str, pod_uid: str, deadline: float) -> asyncio.Future[None]:
        """Queue a best-effort release for the node's next write; done when it was tried."""
        queue = self._queue(node)
        release = _Release(deadline, asyncio.get_running_loop().create_future())
        queue.releases[pod_uid] = release
        self._kick(node, queue)
        return release.done

    def _release_later(self, node: str, pod_uid: str) -> None:
        """Release a reservation nobody waits for any more, within one call's timeout."""
        deadline = time.monotonic() + self.bind_settings.request_timeout_seconds
        self._queue_release(node, pod_uid, deadline)

    async def _write_ledger(
        self, node: NodeFacts, ledger: NodeLedger | None, text: str, deadline: float
    ) -> ApiReply:
        """PATCH the node's ledger Lease carrying its resourceVersion, or create the Lease
        (owned by the node, so it goes when the node does) if there was none."""
        annotations = {self.ledger_key: text}
        if ledger is not None:
            patch = {
                "metadata": {"resourceVersion": ledger.resource_version, "annotations": annotations}
            }
            return await self._call(
                deadline, self.api.patch_lease, self.ledger_namespace, node.name, patch
            )
        owner = {"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid}
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": node.name,
                "labels": {self.ledger_label: LEDGER_OF_NODE},
                "annotations": annotations,
                **({"ownerReferences": [owner]} if node.uid else {}),
            },
        }
        return await self._call(deadline, self.api.create_lease, self.ledger_namespace, lease)

    async def _read_ledger(self, name: str, deadline: float) -> NodeLedger | None:
        """The node's ledger as the API server has it now; None if it has no Lease yet."""
        reply = await self._call(deadline, self.api.get_lease, self.ledger_namespace, name)
        if reply.status == NOT_FOUND:
            return None
        if not reply.ok:
            raise BindError(_api_message(f"reading node {name}'s ledger", reply), _outcome(reply))
        return ledger_of(_lease_decoder.decode(reply.body), self.ledger_key)

    async def _read_node(self, name: str, deadline: float) -> NodeFacts:
        reply = await self._call(deadline, self.api.get_node, name)
        if not reply.ok:
            raise BindError(_api_message(f"reading node {name}", reply), _outcome(reply))
        return self._node_facts(reply.body)

    def _node_facts(self, body: bytes) -> NodeFacts:
        parsing = self.snapshot.parsing
        return node_facts(
            _node_decoder.decode(body), parsing.keys, parsing.gpu_resource, parsing.gpu_aliases
        )

    async def _create_binding(
        self,
        args: ExtenderBindingArgs,
        pod: PodFacts,
        deadline: float,
        attempts: Attempts,
    ) -> None:
        attempts.binding_sent = True
        try:
            reply = await self._call(
                deadline, self._binding, args.PodNamespace, args.PodName, args.PodUID, args.Node
            )
        except NotSent:
            # never sent, so the pod is not bound: give its capacity back (after the reply); an
            # entry reserved ahead stays until it expires or the pod settles
            if not attempts.reserved_ahead:
                self._release_later(args.Node, pod.uid)
            raise
        except BindError as exc:
            raise BindError(
                f"{exc}; the binding's outcome is unknown, so its reservation on node {args.Node} "
                "is kept until it expires",
                UNKNOWN_OUTCOME,
            ) from exc
        if reply.ok:
            return
        if reply.status >= SERVER_ERROR:
            # not a refusal: kube-apiserver answers 5xx also when etcd timed out on a write it
            # may still apply, and a released reservation would leave that pod uncounted
            raise BindError(
                f"{_api_message('binding the pod', reply)}; the binding's outcome is unknown, so "
                f"its reservation on node {args.Node} is kept until it expires",
                UNKNOWN_OUTCOME,
            )
        status = reply.status_object()
        if reply.status == CONFLICT and "already assigned" in status.message:
            try:
                current = await self._current_node_of(args, deadline)
            except BindError as exc:
                # it may be bound to this node by another attempt whose entry ours replaced:
                # a release could leave it uncounted here
                raise BindError(
                    f"{_api_message('binding the pod', reply)}; its node could not be read "
                    f"({exc}), so its reservation on node {args.Node} is kept until it expires",
                    UNKNOWN_OUTCOME,
                ) from exc
            if current == args.Node:
                return  # an earlier attempt of ours (or an equal decision) already bound it
        if not attempts.reserved_ahead:
            await self._release(args, pod, deadline)
        raise BindError(_api_message("binding the pod", reply), _outcome(reply))

    async def _binding(
        self, namespace: str, name: str, uid: str, node: str, timeout: float
    ) -> ApiReply:
        return await self.api.create_binding(
            namespace=namespace, name=name, uid=uid, node=node, timeout=timeout
        )

    async def _current_node_of(self, args: ExtenderBindingArgs, deadline: float) -> str | None:
        """The pod's node now (None: deleted); :class:`BindError` when it cannot be read."""
        reply = await self._call(deadline, self.api.get_pod, args.PodNamespace, args.PodName)
        if reply.status == NOT_FOUND:
            return None
        if not reply.ok:
            raise BindError(_api_message("reading the pod", reply), _outcome(reply))
        return _pod_decoder.decode(reply.body).spec.nodeName

    async def _release(self, args: ExtenderBindingArgs, pod: PodFacts, deadline: float) -> None:
        """Best effort: the pod's entry leaves in the node's next write; a conflict past the
        budget or an error leaves it to expire."""
        await self._queue_release(args.Node, pod.uid, deadline)

    def tidy(self, node: str) -> None:
        """Prune the node's ledger in a write of its own (expired entries and those of settled
        pods go, as in every write): for a ledger no bind writes any more (``app.commit.tidy``).
        Queued as the release of a key no entry has, so it shares the node's next write."""
        self._release_later(node, "")

    def is_droppable(self, entry: Reservation, now: float) -> bool:
        """Whether the next write of its ledger drops the entry (expired, or its pod settled)."""
        return not entry.live(now) or self._settled(entry.pod_uid)

    # ---- plumbing ------------------------------------------------------------------------

    def _settled(self, pod_uid: str) -> bool:
        """Seen bound long enough that its ledger entry may go (see Bind.prune_bound_after)."""
        if self.snapshot.is_gone(pod_uid):
            return True
        return self.snapshot.bound_for(pod_uid) > self.bind_settings.prune_bound_after_seconds

    async def _call(self, deadline: float, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Make an API call with the time left as its timeout."""
        left = deadline - time.monotonic()
        if left < MIN_CALL_SECONDS:
            raise NotSent(self.bind_settings.budget_seconds)
        timeout = min(self.bind_settings.request_timeout_seconds, left)
        try:
            return await function(*args, timeout)
        except Unreachable as exc:
            if timeout < self.bind_settings.request_timeout_seconds:  # cut short by the budget
                raise self._budget_spent(None) from exc
            raise BindError(f"the API server did not answer in time: {exc}", "unreachable") from exc

    def _budget_spent(self, attempts: Attempts | None) -> BindError:
        tried = (
            f" after {attempts.reservations} reservation attempts ({attempts.conflicts} conflicts)"
            if attempts
            else ""
        )
        return BindError(
            f"bind budget of {self.bind_settings.budget_seconds:g}s exhausted{tried}",
            BUDGET_EXHAUSTED,
        )

    async def close(self) -> None:
        """Stop the node writers and close the API connections."""
        for queue in list(self._queues.values()):
            if queue.writer is not None:
                queue.writer.cancel()
        await self.api.aclose()


def _settle(releases: dict[str, _Release]) -> None:
    """Releases are best effort: their waiters learn only that the attempt is over."""
    for release in releases.values():
        if not release.done.done():
            release.done.set_result(None)


def _api_message(doing: str, reply: ApiReply) -> str:
    status = reply.status_object()
    reason = f" ({status.reason})" if status.reason else ""
    return f"{doing}: {reply.status}{reason}: {status.message}"


def _outcome(reply: ApiReply) -> str:
    return {NOT_FOUND: "not_found", CONFLICT: "conflict"}.get(reply.status, "api_error")
