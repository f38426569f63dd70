"""Tidy ledgers at rest: every write prunes its ledger (expired entries, entries of pods
settled), but a node nobody binds to any more keeps what its last write left — entries of pods
long bound or deleted — until its next bind. Each replica sweeps the ledgers every
``bind.tidy_interval_seconds`` (jittered) and prunes, through the binder's own write, each one
that was not written since its previous sweep and holds such an entry that would otherwise
outlive its expiry before the next sweep. Waiting until then leaves the prune to the node's next
bind wherever binds come often (a write per bind would double the writes of steady churn on a
sparse cluster), yet no entry stays past its time to live. Replicas rarely double up: a prune
reaches every replica's snapshot through its watch before their next sweep, and a ledger
written meanwhile is skipped for a sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from app.commit.binder import Binder
from app.config import Settings
from app.state.snapshot import Snapshot


class LedgerTidy:
    """Sweeps the snapshot's ledgers and asks the binder to prune the idle ones."""

    def __init__(
        self,
        settings: Settings,
        snapshot: Snapshot,
        binder: Binder,
        *,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.interval = settings.bind.tidy_interval_seconds
        self.horizon = 1.5 * self.interval + 1.0
        """Sweeps are at most 1.5 intervals apart (see ``_run``); 1 s more for the write."""
        self.snapshot = snapshot
        self.binder = binder
        self.clock = clock
        self.jitter = jitter
        self._seen: dict[str, str] = {}  # node → its ledger's resourceVersion at the last sweep
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval * (0.5 + self.jitter()))
            self.sweep()

    def sweep(self) -> list[str]:
        """Queue a prune for each idle ledger holding droppable entries; returns their nodes."""
        now = self.clock()
        seen, self._seen = self._seen, {}
        tidied = []
        for name, ledger in self.snapshot.ledgers.items():
            self._seen[name] = ledger.resource_version
            if seen.get(name) != ledger.resource_version or ledger.problem:
                continue  # written since the last sweep (its writers prune), or unreadable
            due = now + self.horizon  # past the next sweep, however it is jittered
            if any(e.expires_at <= due and self.binder.is_droppable(e, now)
                   for e in ledger.reservations):  # fmt: skip
                self.binder.tidy(name)
                tidied.append(name)
        return tidied
