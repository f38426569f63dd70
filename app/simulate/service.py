"""``POST /simulate``: a PodList of pending pods against the live snapshot, on a fork of it."""

from __future__ import annotations

import asyncio

import msgspec

from app.config import Settings
from app.extender import PodError
from app.simulate.pending import PendingPodsError, pending_pods
from app.simulate.report import as_json
from app.simulate.run import simulate
from app.state.snapshot import Snapshot
from app.wire.codec import encode

ORIGIN = "request body"


async def simulate_body(settings: Settings, snapshot: Snapshot, body: bytes) -> bytes:
    """The ``--format json`` reply for the pods in ``body``. The snapshot is forked here, on the
    event loop (the only thread that changes it), and the simulation runs on a worker thread
    over the fork, so the live snapshot is never written. Raises :class:`PendingPodsError` for
    a body that cannot be simulated."""
    try:
        documents = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise PendingPodsError(f"{ORIGIN} is not valid JSON: {exc}") from exc
    pods = pending_pods(documents, ORIGIN)
    fork = snapshot.fork()
    try:
        simulation = await asyncio.to_thread(simulate, settings, fork, pods, forked=True)
    except PodError as exc:
        raise PendingPodsError(str(exc)) from exc
    return encode(as_json(simulation))
