"""POST /bind: reserve capacity with a compare-and-swap on the node's ledger, then create the
Binding.

1. Find the pod (this replica's snapshot, else GET) — already bound here: success.
2. Read the node's ledger Lease (``app.state.ledger``): the snapshot's copy first (no GET on
   the happy path), a fresh GET after a conflict. The node itself comes from the snapshot.
3. free = allocatable − pods bound there − live reservations of pods not yet seen bound −
   what pods nominated there of the pod's priority or higher wait for (as in filter).
   The pod does not fit any more → ``Error`` naming the resources (``app.commit.decide``).
4. PATCH the ledger (expired entries pruned, this pod's entry added) carrying the Lease's
   resourceVersion, or create the Lease if the node has none yet (``app.commit.calls``). 409 →
   someone else wrote (or created it) first: back off (jittered), re-read, re-decide from
   scratch; never replay the old write. Binds waiting for the same node in this replica share
   one write (group commit, ``app.commit.queue``): decided in arrival order, each within what
   the earlier ones left. The write also reserves the node ahead for the next pending pods of
   the same workload (``app.commit.ahead``); a pod whose entry reserved ahead is in the ledger
   skips this step.
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
from collections.abc import Callable
from dataclasses import replace

from app.commit.calls import BindCalls
from app.commit.decide import Decider
from app.commit.ledger_write import ledger_after
from app.commit.outcome import (
    CONFLICT,
    NOT_FOUND,
    SERVER_ERROR,
    UNKNOWN_OUTCOME,
    Attempts,
    BindError,
    NotSent,
    api_message,
    budget_spent,
    outcome_of,
)
from app.commit.queue import NodeQueues, Release, Waiting, fail, settle
from app.config import Settings
from app.kube import KubeApi
from app.metrics import Metrics
from app.state.ledger import Reservation
from app.state.records import PodFacts
from app.state.snapshot import Snapshot
from app.wire.codec import BadRequest, decode_binding_args, encode
from app.wire.types import ExtenderBindingArgs

log = logging.getLogger(__name__)


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
        self.calls = BindCalls(settings, api, snapshot.parsing)
        self.decider = Decider(settings, snapshot, self.metrics)
        self.queues = NodeQueues(self._write, self._budget_spent)

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
        self.decider.remember_node(pod, args.Node)
        return "bound"

    async def _pod(self, args: ExtenderBindingArgs, deadline: float) -> PodFacts:
        known = self.snapshot.pod_named(args.PodNamespace, args.PodName)
        if known is not None and (not args.PodUID or known.uid == args.PodUID):
            return known
        return await self.calls.read_pod(args.PodNamespace, args.PodName, args.PodUID, deadline)

    async def _reserve(
        self, args: ExtenderBindingArgs, pod: PodFacts, deadline: float, attempts: Attempts
    ) -> None:
        """Queue the pod's reservation for the node's next write; done when it is written."""
        tracked = self.snapshot.table.resources
        waiting = Waiting(
            pod=pod,
            requests={r: pod.requests.get(r, 0) for r in tracked},
            deadline=deadline,
            attempts=attempts,
            done=asyncio.get_running_loop().create_future(),
        )
        self.queues.add(args.Node, waiting)
        await waiting.done

    async def _write(self, name: str, batch: list[Waiting], releases: dict[str, Release]) -> None:
        """One CAS write for the batch: decide each in arrival order against the node's
        ledger, write it, and on 409 back off, re-read and re-decide; never replay."""
        node = self.snapshot.nodes.get(name)
        ledger = self.snapshot.ledgers.get(name)  # first try: the watched copy, no GET
        fresh = True
        delay = self.bind_settings.backoff_initial_seconds
        while True:
            for waiting in batch:
                if not waiting.done.done() and time.monotonic() >= waiting.deadline:
                    waiting.done.set_exception(self._budget_spent(waiting.attempts))
            batch = [w for w in batch if not w.done.done()]  # answered, or gave up waiting
            now_mono = time.monotonic()
            settle({uid: r for uid, r in releases.items() if r.deadline <= now_mono})
            releases = {uid: r for uid, r in releases.items() if r.deadline > now_mono}
            if not batch and not releases:
                return
            deadline = max([w.deadline for w in batch] + [r.deadline for r in releases.values()])
            if node is None:
                node = await self.calls.read_node(name, deadline)
            if not fresh:
                ledger = await self.calls.read_ledger(name, deadline)
                fresh = True
            if ledger is not None and ledger.problem:  # never overwrite what we cannot read
                raise BindError(f"node {name}: {ledger.problem}", "bad_ledger")
            reservations = () if ledger is None else ledger.reservations
            now = self.wall_clock()
            batch = self.decider.take_reserved_ahead(batch, reservations, now)
            if not batch and not releases:
                return
            decision = self.decider.decide(node, batch, reservations, now)
            admitted = decision.admitted
            if not admitted and not releases:
                return
            text = ledger_after(
                reservations, add=decision.entries, remove=releases, now=now, settled=self._settled
            )
            for waiting in admitted:
                waiting.attempts.reservations += 1
                if waiting.attempts.reservations > 1:
                    self.metrics.bind_retries.inc()
            try:
                reply = await self.calls.write_ledger(node, ledger, text, deadline)
            except BindError as exc:
                fail(admitted, exc, self._budget_spent)
                settle(releases)
                return
            if reply.ok:
                self.snapshot.set_ledger(self.calls.written_ledger(reply))  # seen here at once
                if decision.ahead:
                    self.metrics.reserved_ahead.labels("written").inc(len(decision.ahead))
                for waiting in admitted:
                    if waiting.done.done():  # gave up while the write was in flight
                        self._release_later(name, waiting.pod.uid)
                    else:
                        waiting.done.set_result(None)
                settle(releases)
                return
            # 409: written or created by someone else first; 404: the Lease was deleted
            if reply.status not in (CONFLICT, NOT_FOUND):
                error = BindError(
                    api_message(f"reserving on node {name}", reply), outcome_of(reply)
                )
                fail(admitted, error, self._budget_spent)
                settle(releases)
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

    def _release_later(self, node: str, pod_uid: str) -> None:
        """Release a reservation nobody waits for any more, within one call's timeout."""
        deadline = time.monotonic() + self.bind_settings.request_timeout_seconds
        self.queues.release(node, pod_uid, deadline)

    async def _create_binding(
        self,
        args: ExtenderBindingArgs,
        pod: PodFacts,
        deadline: float,
        attempts: Attempts,
    ) -> None:
        attempts.binding_sent = True
        try:
            reply = await self.calls.create_binding(
                args.PodNamespace, args.PodName, args.PodUID, args.Node, deadline
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
                f"{api_message('binding the pod', reply)}; the binding's outcome is unknown, so "
                f"its reservation on node {args.Node} is kept until it expires",
                UNKNOWN_OUTCOME,
            )
        status = reply.status_object()
        if reply.status == CONFLICT and "already assigned" in status.message:
            try:
                current = await self.calls.current_node_of(
                    args.PodNamespace, args.PodName, deadline
                )
            except BindError as exc:
                # it may be bound to this node by another attempt whose entry ours replaced:
                # a release could leave it uncounted here
                raise BindError(
                    f"{api_message('binding the pod', reply)}; its node could not be read "
                    f"({exc}), so its reservation on node {args.Node} is kept until it expires",
                    UNKNOWN_OUTCOME,
                ) from exc
            if current == args.Node:
                return  # an earlier attempt of ours (or an equal decision) already bound it
        if not attempts.reserved_ahead:
            await self._release(args, pod, deadline)
        raise BindError(api_message("binding the pod", reply), outcome_of(reply))

    async def _release(self, args: ExtenderBindingArgs, pod: PodFacts, deadline: float) -> None:
        """Best effort: the pod's entry leaves in the node's next write; a conflict past the
        budget or an error leaves it to expire."""
        await self.queues.release(args.Node, pod.uid, deadline)

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

    def _budget_spent(self, attempts: Attempts | None) -> BindError:
        return budget_spent(self.bind_settings.budget_seconds, attempts)

    async def close(self) -> None:
        """Stop the node writers and close the API connections."""
        self.queues.cancel()
        await self.api.aclose()
