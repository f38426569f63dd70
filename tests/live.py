"""Helpers to run the live source against the API-server stand-in inside a test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from app.api.server import Runtime
from app.config import load_settings
from app.kube import KubeApi
from app.sources import NODES, PODS
from app.state.live import LiveSource
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
    runtime = Runtime(settings=config, readiness=Readiness(NODES, PODS))
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
