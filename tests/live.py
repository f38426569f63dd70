"""Helpers to run the live source against the API-server stand-in inside a test's event loop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from app.api.server import Runtime
from app.commit.binder import Binder
from app.commit.wake import WakeUp
from app.config import load_settings
from app.extender import Extender
from app.kube import WATCH_CONNECTIONS, KubeApi
from app.metrics import Metrics
from app.sources import KINDS, LiveSource
from app.state.live import ClusterWatch
from app.state.readiness import Readiness
from app.state.snapshot import Snapshot
from tests.standin import ApiServerStandIn


class Changes:
    """Wakes waiters whenever the snapshot or readiness changes (no polling, no sleeps)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.readiness_history: list[bool] = []

    def changed(self, *_: Any) -> None:
        self._event.set()

    def readiness_changed(self, ready: bool) -> None:
        self.readiness_history.append(ready)
        self._event.set()

    async def until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Return once ``condition()`` holds; fail the test after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not condition():
                self._event.clear()
                await self._event.wait()


@asynccontextmanager
async def live_runtime(
    apiserver: ApiServerStandIn, **settings: Any
) -> AsyncIterator[tuple[Runtime, LiveSource, Changes]]:
    """A started LiveSource over ``apiserver``; yields once the source has started (not yet
    necessarily ready)."""
    config = load_settings(**settings)
    runtime = Runtime(settings=config, readiness=Readiness(*KINDS))
    changes = Changes()
    runtime.readiness.listeners.append(changes.readiness_changed)
    client = apiserver.api_client()
    source = LiveSource(config, KubeApi(client))
    await source.start(runtime)
    assert source.snapshot is not None
    source.snapshot.listeners.append(changes.changed)
    try:
        yield runtime, source, changes
    finally:
        await source.stop()
        client.close()


def snapshot_of(source: LiveSource) -> Snapshot:
    assert source.snapshot is not None
    return source.snapshot


class Replica:
    """One extender replica as the bind tests need it: its own API client, watch, snapshot,
    extender and binder (and metrics), with an injectable wall clock for the binder; with
    ``wake`` (``wake.enabled``), the wake-up too (``jitter``: its share of the interval)."""

    def __init__(
        self,
        apiserver: ApiServerStandIn,
        clock: Callable[[], float] | None = None,
        jitter: float | None = None,
        **settings: Any,
    ) -> None:

        self.settings = load_settings(**settings)
        self.client = apiserver.api_client(connection_pool_maxsize=WATCH_CONNECTIONS)
        self.readiness = Readiness(*KINDS)
        self.changes = Changes()
        self.readiness.listeners.append(self.changes.readiness_changed)
        self.watch = ClusterWatch(self.settings, KubeApi(self.client), self.readiness)
        self.watch.snapshot.listeners.append(self.changes.changed)
        self.metrics = Metrics()
        self.extender = Extender(self.settings, self.watch.snapshot)
        self.binder = Binder(
            self.settings, KubeApi(self.client), self.watch.snapshot, self.metrics,
            wall_clock=clock or time.time,
        )  # fmt: skip
        self.wake: WakeUp | None = None
        if self.settings.wake.enabled and jitter is not None:
            self.wake = WakeUp(self.settings, KubeApi(self.client), self.watch.snapshot,
                               self.metrics, jitter=lambda: jitter)  # fmt: skip

    @property
    def snapshot(self) -> Snapshot:
        return self.watch.snapshot

    async def start(self) -> Replica:
        self.watch.start(asyncio.get_running_loop())
        await self.changes.until(lambda: self.readiness.ready)
        if self.wake is not None:
            self.wake.start()
        return self

    async def stop(self) -> None:
        if self.wake is not None:
            await self.wake.stop()
        await self.watch.stop()
        await self.binder.close()
        self.client.close()

    async def bind(self, pod: dict[str, Any], node: str) -> str:
        """POST /bind's handler for ``pod`` onto ``node``; returns the ``Error`` ("" = bound)."""
        meta = pod["metadata"]
        body = {"PodName": meta["name"], "PodNamespace": meta.get("namespace", "default"),
                "PodUID": meta["uid"], "Node": node}  # fmt: skip
        status, reply = await self.binder.handle(json.dumps(body).encode())
        assert status == 200
        error: str = json.loads(reply)["Error"]
        return error


@asynccontextmanager
async def replicas(
    apiserver: ApiServerStandIn, count: int, *, jitters: list[float] | None = None, **settings: Any
) -> AsyncIterator[list[Replica]]:
    """``count`` started replicas over one stand-in (with ``jitters``, one per replica, each
    runs the wake-up with that share of its interval as its wait)."""
    shares: list[float | None] = list(jitters) if jitters else [None] * count
    started = [await Replica(apiserver, jitter=share, **settings).start() for share in shares]
    try:
        yield started
    finally:
        for replica in started:
            await replica.stop()
