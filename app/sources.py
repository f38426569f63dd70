"""Where the snapshot comes from: a file, or the live API server (which also enables /bind).

A source fills the runtime's snapshot and marks it ready; the routes only read it. This module
is the composition root of the layers: it wires state, the extender and the commit layer.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

from app.api.server import Runtime
from app.commit.binder import Binder
from app.commit.tidy import LedgerTidy
from app.commit.wake import WakeUp
from app.config import Settings
from app.extender import Extender
from app.kube import KubeApi, api_client
from app.observe import DecisionObserver
from app.state.file_source import load_snapshot
from app.state.live import KINDS, NODES, PODS, ClusterWatch
from app.state.snapshot import NodeParsing, Snapshot

log = logging.getLogger(__name__)

__all__ = ["KINDS", "NODES", "PODS", "FileSource", "LiveSource"]


def freeze_long_lived() -> None:
    """Exempt what the first full load allocated (a large cluster's records: millions of
    objects) from the garbage collector: otherwise every full collection walks all of it and
    pauses a request for tens of milliseconds. Called once, when the snapshot is first loaded."""
    gc.collect()
    gc.freeze()


class FileSource:
    """A snapshot file, loaded once. ``load`` may run before the server starts (the CLI does,
    so a bad file is a one-line error, not a failed startup); ``start`` publishes it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.snapshot: Snapshot | None = None

    def load(self, settings: Settings) -> Snapshot:
        """Read the file; raises ``SnapshotFileError`` with what is wrong and where."""
        snapshot = Snapshot(NodeParsing.from_settings(settings))
        load_snapshot(self.path, snapshot)
        self.snapshot = snapshot
        return snapshot

    async def start(self, runtime: Runtime) -> None:
        snapshot = self.snapshot
        if snapshot is None:
            snapshot = await asyncio.to_thread(self.load, runtime.settings)
        runtime.extender = Extender(runtime.settings, snapshot, DecisionObserver(runtime.metrics))
        runtime.metrics.watch_source(lambda: snapshot, dict)
        freeze_long_lived()
        for kind in KINDS:  # a file has no ledgers: nothing binds against it
            runtime.readiness.loaded(kind)
        log.info(
            "snapshot loaded",
            extra={
                "path": str(self.path),
                "nodes": len(snapshot.nodes),
                "pods": len(snapshot.pods),
            },
        )

    async def stop(self) -> None:
        return None


class LiveSource:
    """Watch the API server into a snapshot, and commit binds through it."""

    def __init__(self, settings: Settings, api: KubeApi) -> None:
        self.settings = settings
        self.api = api
        self.watch: ClusterWatch | None = None
        self.binder: Binder | None = None
        self.wake: WakeUp | None = None
        self.tidy: LedgerTidy | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveSource:
        """Raises ``KubeConfigError`` with a one-line hint when no API server is configured."""
        return cls(settings, KubeApi(api_client(settings.kube.kubeconfig)))

    @property
    def snapshot(self) -> Snapshot | None:
        return None if self.watch is None else self.watch.snapshot

    @property
    def counters(self) -> dict[str, int]:
        return {} if self.watch is None else self.watch.counters

    async def start(self, runtime: Runtime) -> None:
        watch = self.watch = ClusterWatch(self.settings, self.api, runtime.readiness)
        runtime.extender = Extender(
            self.settings, watch.snapshot, DecisionObserver(runtime.metrics)
        )
        self.binder = Binder(self.settings, self.api, watch.snapshot, runtime.metrics)
        runtime.bind = self.binder.handle
        self.wake = WakeUp(self.settings, self.api, watch.snapshot, runtime.metrics)
        self.wake.start()
        self.tidy = LedgerTidy(self.settings, watch.snapshot, self.binder)
        self.tidy.start()
        runtime.metrics.watch_source(lambda: watch.snapshot, lambda: dict(watch.counters))

        def first_ready(ready: bool) -> None:
            if ready:
                runtime.readiness.listeners.remove(first_ready)
                freeze_long_lived()

        runtime.readiness.listeners.append(first_ready)
        watch.start(asyncio.get_running_loop())

    async def stop(self) -> None:
        if self.tidy is not None:
            await self.tidy.stop()
        if self.wake is not None:
            await self.wake.stop()
        if self.watch is not None:
            await self.watch.stop()
        if self.binder is not None:
            await self.binder.close()
