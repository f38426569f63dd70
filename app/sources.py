"""Where the snapshot comes from: a file, or (see app.state.watch) the live API server.

A source fills the runtime's snapshot and marks it ready; the routes only read it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from app.api.server import Runtime
from app.extender import Extender
from app.state.file_source import load_snapshot
from app.state.snapshot import NodeParsing, Snapshot

log = logging.getLogger(__name__)

NODES = "nodes"
PODS = "pods"


class FileSource:
    """Load a snapshot file once, off the event loop, then publish it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def start(self, runtime: Runtime) -> None:
        snapshot = Snapshot(NodeParsing.from_settings(runtime.settings))
        await asyncio.to_thread(load_snapshot, self.path, snapshot)
        runtime.extender = Extender(runtime.settings, snapshot)
        runtime.readiness.loaded(NODES)
        runtime.readiness.loaded(PODS)
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
