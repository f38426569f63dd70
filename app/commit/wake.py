"""Wake kube-scheduler when room held by a reservation comes free without an API event it
watches.

kube-scheduler 1.36 files a pod the extender refused under the pseudo-plugin "Extender" and
retries it on any cluster event it watches — or only after its 5-minute flush of unschedulable
pods (docs/faults.md has the source references and the experiment). Room a ledger entry held
comes free silently: the entry expires (its replica may have died), is released or pruned (a
Lease write: kube-scheduler does not watch Leases), or its pod is deleted while pending. The
snapshot reports each case (``Snapshot.freed_listeners``); this module then updates one
CSIStorageCapacity in the extender's namespace: an object kube-scheduler watches (its
VolumeBinding plugin registers the event) and few others do, writable with a namespaced Role.
It reports no capacity, on no node, for a storage class that does not exist.

Traffic is bounded and shared: a replica rings at most once per ``wake.min_interval_seconds``,
after a random part of it (all room freed meanwhile shares that ring), and not at all when the
object says another replica rang after the room freed; the write is a CAS, so two replicas that
read the same version write once between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import msgspec

from app.config import Settings
from app.contract import Keys
from app.kube import KubeApi, Unreachable
from app.metrics import Metrics
from app.state.snapshot import Snapshot

log = logging.getLogger(__name__)

CONFLICT = 409
NOT_FOUND = 404
EXPIRY_POLL_SECONDS = 1.0
"""The longest the expiry timer sleeps: an entry written meanwhile may expire sooner."""
SENT, COALESCED, FAILED = "sent", "coalesced", "failed"


class _Meta(msgspec.Struct):
    resourceVersion: str = ""
    annotations: dict[str, str] | None = None


class _Object(msgspec.Struct):
    metadata: _Meta


_decoder = msgspec.json.Decoder(_Object)


class WakeUp:
    """Rings the wake-up object when the snapshot reports freed room, and frees expired
    entries on time (nothing else may read the snapshot while every refused pod waits)."""

    def __init__(
        self,
        settings: Settings,
        api: KubeApi,
        snapshot: Snapshot,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.config = settings.wake
        self.namespace = settings.kube.ledger_namespace
        self.timeout = settings.bind.request_timeout_seconds
        self.annotation = Keys(settings.prefix).woken_at
        self.api = api
        self.snapshot = snapshot
        self.metrics = metrics
        self.clock = clock
        self.jitter = jitter
        self._freed_at: float | None = None
        """When room first freed since the last ring (None: nothing to ring for)."""
        self._last_ring = float("-inf")  # monotonic
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ringer: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Listen to the snapshot (on the running loop, which mutates it)."""
        if not self.config.enabled:
            return
        self._loop = asyncio.get_running_loop()
        self.snapshot.freed_listeners.append(self.freed)
        self._timer = self._loop.create_task(self._expire_on_time())

    async def stop(self) -> None:
        if self.freed in self.snapshot.freed_listeners:
            self.snapshot.freed_listeners.remove(self.freed)
        for task in (self._timer, self._ringer):
            if task is not None:
                task.cancel()
        for task in (self._timer, self._ringer):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def freed(self, node: str) -> None:
        """Room on ``node`` came free without an API event kube-scheduler watches."""
        if self._freed_at is None:
            self._freed_at = self.clock()
        if self._loop is not None and (self._ringer is None or self._ringer.done()):
            self._ringer = self._loop.create_task(self._ring_soon())

    async def _expire_on_time(self) -> None:
        while True:
            due = self.snapshot.next_expiry - self.clock()
            await asyncio.sleep(min(max(due, 0.0) + 0.01, EXPIRY_POLL_SECONDS))
            self.snapshot.refresh()  # reports the room of what expired

    async def _ring_soon(self) -> None:
        interval = self.config.min_interval_seconds
        while self._freed_at is not None:
            rested = max(self._last_ring + interval - time.monotonic(), 0.0)
            await asyncio.sleep(rested + self.jitter() * interval)
            freed_at, self._freed_at = self._freed_at, None
            self._last_ring = time.monotonic()
            outcome = await self._ring(freed_at)
            self.metrics.wakeups.labels(outcome).inc()
            if outcome == FAILED:  # the pods still wait: try again after the interval
                self._freed_at = freed_at if self._freed_at is None else self._freed_at

    async def _ring(self, freed_at: float) -> str:
        """One ring for room freed at ``freed_at`` (Unix seconds): SENT, COALESCED or FAILED."""
        name = self.config.object_name
        try:
            reply = await self.api.get_wake(self.namespace, name, self.timeout)
            if reply.status == NOT_FOUND:
                created = await self.api.create_wake(self.namespace, self._object(), self.timeout)
                return self._outcome(created.status, "create")
            if not reply.ok:
                return self._outcome(reply.status, "get")
            meta = _decoder.decode(reply.body).metadata
            if _rung_at(meta, self.annotation) >= freed_at:
                return COALESCED  # another replica rang after the room freed
            patch = {"metadata": {"resourceVersion": meta.resourceVersion,
                                  "annotations": {self.annotation: self._now()}}}  # fmt: skip
            patched = await self.api.patch_wake(self.namespace, name, patch, self.timeout)
            return self._outcome(patched.status, "patch")
        except (Unreachable, msgspec.DecodeError) as exc:
            log.warning("wake-up not sent", extra={"error": str(exc)})
            return FAILED

    def _outcome(self, status: int, doing: str) -> str:
        if 200 <= status < 300:
            return SENT
        if status == CONFLICT:  # another replica created or rang it since we read it
            return COALESCED
        log.warning("wake-up not sent", extra={"call": doing, "status": status})
        return FAILED

    def _now(self) -> str:
        return f"{self.clock():.3f}"

    def _object(self) -> dict[str, Any]:
        name = self.config.object_name
        return {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "CSIStorageCapacity",
            "metadata": {"name": name, "annotations": {self.annotation: self._now()}},
            # no nodeTopology: on no node; no capacity: none reported; no such storage class
            "storageClassName": name,
        }


def _rung_at(meta: _Meta, annotation: str) -> float:
    try:
        return float((meta.annotations or {}).get(annotation, "0"))
    except ValueError:
        return 0.0
