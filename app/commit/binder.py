"""POST /bind: reserve capacity with a compare-and-swap on the node, then create the Binding.

1. Find the pod (this replica's snapshot, else GET) — already bound here: success.
2. Read the node: the snapshot's copy first (no GET on the happy path), a fresh GET after a
   conflict.
3. free = allocatable − pods bound there − live reservations of pods not yet seen bound.
   The pod does not fit any more → ``Error`` naming the resources.
4. PATCH the ledger (expired entries pruned, this pod's entry added) carrying the node's
   resourceVersion. 409 → someone else wrote first: back off (jittered), re-read, re-decide
   from scratch; never replay the old write.
5. POST the Binding with the pod's UID as precondition. Refused → release the reservation
   (best effort; the TTL covers the rest). No answer → keep it: the pod may be bound.

Every step runs inside one time budget, which must stay below kube-scheduler's httpTimeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import msgspec

from app.commit.ledger_write import free_for, shortfalls, with_reservation, without_reservation
from app.config import Settings
from app.kube import CONNECTIONS, ApiReply, KubeApi, Unreachable
from app.metrics import Metrics
from app.state.ledger import Reservation
from app.state.records import NodeFacts, PodFacts, node_facts, pod_facts
from app.state.snapshot import Snapshot
from app.wire.codec import BadRequest, decode_binding_args, encode
from app.wire.quantity import QuantityError
from app.wire.types import ExtenderBindingArgs, Node, Pod

log = logging.getLogger(__name__)

T = TypeVar("T")
CONFLICT = 409
NOT_FOUND = 404
BUDGET_EXHAUSTED = "budget_exhausted"
UNKNOWN_OUTCOME = "unknown_outcome"

_node_decoder = msgspec.json.Decoder(Node)
_pod_decoder = msgspec.json.Decoder(Pod)


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
        max_threads: int = CONNECTIONS,
    ) -> None:
        self.settings = settings
        self.bind_settings = settings.bind
        self.api = api
        self.snapshot = snapshot
        self.metrics = metrics or Metrics()
        self.wall_clock = wall_clock
        self.rng = rng or random.Random()
        self.ledger_key = snapshot.parsing.keys.reservations
        self._locks: dict[str, asyncio.Lock] = {}
        # the kubernetes client blocks: its calls run here, off the event loop
        self.executor = ThreadPoolExecutor(max_threads, thread_name_prefix="bind")

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
            # time spent waiting for a thread, the event loop or a node's lock.
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
                "conflicts": attempts.conflicts, "duration_ms": round(elapsed * 1000, 2),
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
        async with self._node_lock(args.Node):
            # Binds to one node from this replica take turns: they would only collide on the
            # node's resourceVersion. Other replicas are kept honest by the CAS itself.
            node = await self._reserve(args, pod, deadline, attempts)
        await self._create_binding(args, pod, node, deadline, attempts)
        self.snapshot.set_pod(replace(pod, node_name=args.Node))
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
    ) -> NodeFacts:
        tracked = self.snapshot.table.resources
        requests = {r: pod.requests.get(r, 0) for r in tracked}
        node = self.snapshot.nodes.get(args.Node)  # first try: the watched copy, no GET
        delay = self.bind_settings.backoff_initial_seconds
        while True:
            if node is None:
                node = await self._read_node(args.Node, deadline)
            now = self.wall_clock()
            used = dict(zip(tracked, self.snapshot.usage(args.Node).tolist(), strict=True))
            free = free_for(
                allocatable={r: node.allocatable.get(r, 0) for r in tracked},
                used=used,
                ledger=node.reservations,
                pod_uid=pod.uid,
                is_bound=self.snapshot.accounted,
                now=now,
            )
            missing = shortfalls(requests, free)
            if missing:
                detail = "; ".join(str(m) for m in missing)
                raise BindError(f"node {args.Node} no longer fits: {detail}", "no_longer_fits")
            entry = Reservation(
                pod_uid=pod.uid,
                pod=f"{pod.namespace}/{pod.name}",
                requests=tuple(sorted((r, a) for r, a in requests.items() if a)),
                expires_at=now + self.bind_settings.reservation_ttl_seconds,
            )
            patch = {
                "metadata": {
                    "resourceVersion": node.resource_version,
                    "annotations": {
                        self.ledger_key: with_reservation(
                            node.reservations, entry, now=now, settled=self._settled
                        )
                    },
                }
            }
            attempts.reservations += 1
            if attempts.reservations > 1:
                self.metrics.bind_retries.inc()
            try:
                reply = await self._call(deadline, self.api.patch_node, args.Node, patch)
            except BindError as exc:
                if exc.outcome == BUDGET_EXHAUSTED:
                    raise self._budget_spent(attempts) from exc
                raise
            if reply.ok:
                written = self._node_facts(reply.body)
                self.snapshot.set_node(written)  # this replica sees its own reservation now
                return written
            if reply.status != CONFLICT:
                raise BindError(
                    _api_message(f"reserving on node {args.Node}", reply), _outcome(reply)
                )
            attempts.conflicts += 1
            self.metrics.cas_conflicts.inc()
            pause = self.rng.uniform(delay / 2, delay)
            if time.monotonic() + pause >= deadline:
                raise self._budget_spent(attempts)
            await asyncio.sleep(pause)
            delay = min(delay * 2, self.bind_settings.backoff_max_seconds)
            node = None  # re-read and re-decide from scratch

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
        node: NodeFacts,
        deadline: float,
        attempts: Attempts,
    ) -> None:
        attempts.binding_sent = True
        try:
            reply = await self._call(
                deadline, self._binding, args.PodNamespace, args.PodName, args.PodUID, args.Node
            )
        except NotSent:
            raise  # never sent: the pod is not bound; its reservation expires with the TTL
        except BindError as exc:
            raise BindError(
                f"{exc}; the binding's outcome is unknown, so its reservation on node {args.Node} "
                "is kept until it expires",
                UNKNOWN_OUTCOME,
            ) from exc
        if reply.ok:
            return
        status = reply.status_object()
        if reply.status == CONFLICT and "already assigned" in status.message:
            current = await self._current_node_of(args, deadline)
            if current == args.Node:
                return  # an earlier attempt of ours (or an equal decision) already bound it
        await self._release(args, pod, node, deadline)
        raise BindError(_api_message("binding the pod", reply), _outcome(reply))

    def _binding(self, namespace: str, name: str, uid: str, node: str, timeout: float) -> ApiReply:
        return self.api.create_binding(
            namespace=namespace, name=name, uid=uid, node=node, timeout=timeout
        )

    async def _current_node_of(self, args: ExtenderBindingArgs, deadline: float) -> str | None:
        try:
            reply = await self._call(deadline, self.api.get_pod, args.PodNamespace, args.PodName)
        except BindError:
            return None
        if not reply.ok:
            return None
        return _pod_decoder.decode(reply.body).spec.nodeName

    async def _release(
        self, args: ExtenderBindingArgs, pod: PodFacts, node: NodeFacts, deadline: float
    ) -> None:
        """Best effort: one CAS write removing the pod's entry; a conflict or error leaves it
        to expire."""
        patch = {
            "metadata": {
                "resourceVersion": node.resource_version,
                "annotations": {
                    self.ledger_key: without_reservation(
                        node.reservations, pod.uid, now=self.wall_clock(), settled=self._settled
                    )
                },
            }
        }
        try:
            reply = await self._call(deadline, self.api.patch_node, args.Node, patch)
        except BindError:
            return
        if reply.ok:
            self.snapshot.set_node(self._node_facts(reply.body))

    # ---- plumbing ------------------------------------------------------------------------

    def _node_lock(self, node: str) -> asyncio.Lock:
        lock = self._locks.get(node)
        if lock is None:
            lock = self._locks[node] = asyncio.Lock()
        return lock

    def _settled(self, pod_uid: str) -> bool:
        """Seen bound long enough that its ledger entry may go (see Bind.prune_bound_after)."""
        if self.snapshot.is_gone(pod_uid):
            return True
        return self.snapshot.bound_for(pod_uid) > self.bind_settings.prune_bound_after_seconds

    async def _call(self, deadline: float, function: Callable[..., T], *args: Any) -> T:
        """Run a blocking API call off the loop with the time left as its timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise NotSent(self.bind_settings.budget_seconds)
        timeout = min(self.bind_settings.request_timeout_seconds, left)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, lambda: function(*args, timeout))
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

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def _api_message(doing: str, reply: ApiReply) -> str:
    status = reply.status_object()
    reason = f" ({status.reason})" if status.reason else ""
    return f"{doing}: {reply.status}{reason}: {status.message}"


def _outcome(reply: ApiReply) -> str:
    return {NOT_FOUND: "not_found", CONFLICT: "conflict"}.get(reply.status, "api_error")
