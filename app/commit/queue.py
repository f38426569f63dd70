"""Group commit: binds (and releases) waiting for one node's next ledger write, one writer task
per node. Binds to one node from this replica would only collide on its resourceVersion, so
they share writes; other replicas are kept honest by the CAS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from app.commit.outcome import BUDGET_EXHAUSTED, Attempts, BindError
from app.state.records import PodFacts

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Waiting:
    """One bind's reservation, queued for its node's next write."""

    pod: PodFacts
    requests: dict[str, int]
    deadline: float
    attempts: Attempts
    done: asyncio.Future[None]


@dataclass(eq=False)
class Release:
    """A reservation to remove (best effort) in its node's next write."""

    deadline: float
    done: asyncio.Future[None]


@dataclass
class NodeQueue:
    """What waits for one node's next write, and the task writing it."""

    waiting: list[Waiting] = field(default_factory=list)
    releases: dict[str, Release] = field(default_factory=dict)
    writer: asyncio.Task[None] | None = None


Write = Callable[[str, list[Waiting], dict[str, Release]], Awaitable[None]]
"""Writes one batch to a node's ledger: answers each waiter and settles each release."""


class NodeQueues:
    """Per node, what waits for its next write; drains each with ``write``, a batch per call."""

    def __init__(self, write: Write, budget_spent: Callable[[Attempts], BindError]) -> None:
        self._write = write
        self._budget_spent = budget_spent
        self._queues: dict[str, NodeQueue] = {}

    def add(self, node: str, waiting: Waiting) -> None:
        queue = self._queue(node)
        queue.waiting.append(waiting)
        self._kick(node, queue)

    def release(self, node: str, pod_uid: str, deadline: float) -> asyncio.Future[None]:
        """Queue a best-effort release for the node's next write; done when it was tried."""
        queue = self._queue(node)
        release = Release(deadline, asyncio.get_running_loop().create_future())
        queue.releases[pod_uid] = release
        self._kick(node, queue)
        return release.done

    def cancel(self) -> None:
        """Stop every node's writer."""
        for queue in list(self._queues.values()):
            if queue.writer is not None:
                queue.writer.cancel()

    def _queue(self, node: str) -> NodeQueue:
        queue = self._queues.get(node)
        if queue is None:
            queue = self._queues[node] = NodeQueue()
        return queue

    def _kick(self, node: str, queue: NodeQueue) -> None:
        if queue.writer is None:
            queue.writer = asyncio.get_running_loop().create_task(self._drain(node, queue))

    async def _drain(self, node: str, queue: NodeQueue) -> None:
        """Write the node's queued reservations and releases, a batch per write, until none
        is left."""
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
                    fail(batch, exc, self._budget_spent)
                    settle(releases)
        finally:
            queue.writer = None
            if not queue.waiting and not queue.releases:
                self._queues.pop(node, None)


def fail(
    batch: list[Waiting], error: BindError, budget_spent: Callable[[Attempts], BindError]
) -> None:
    """Answer every waiter of ``batch`` not answered yet with ``error`` (a budget that ran out
    names each bind's own attempts)."""
    spent = error.outcome == BUDGET_EXHAUSTED
    for waiting in batch:
        if not waiting.done.done():
            waiting.done.set_exception(budget_spent(waiting.attempts) if spent else error)


def settle(releases: dict[str, Release]) -> None:
    """Releases are best effort: their waiters learn only that the attempt is over."""
    for release in releases.values():
        if not release.done.done():
            release.done.set_result(None)
