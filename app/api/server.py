"""The ASGI application: hot verbs on a bare handler, the rest on FastAPI."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from app import __version__
from app.api.hotpath import HotPath, error_body
from app.config import Settings
from app.extender import Extender, PodError, filter_error
from app.metrics import CONTENT_TYPE, Metrics
from app.simulate.pending import PendingPodsError
from app.simulate.service import simulate_body
from app.state.readiness import Readiness
from app.wire.codec import (
    BadRequest,
    decode_extender_args,
    decode_extender_args_raw_names,
    decode_preemption_args,
    encode,
)

log = logging.getLogger(__name__)

Handler = Callable[[bytes], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True)
class Verbs:
    """The extender's verbs: the path of each route, and what a scheduler config names."""

    filter: str = "filter"
    prioritize: str = "prioritize"
    bind: str = "bind"
    preempt: str = "preempt"


VERBS = Verbs()


@dataclass
class Runtime:
    """What the routes serve from; the source fills ``extender`` once the snapshot is loaded."""

    settings: Settings
    readiness: Readiness
    extender: Extender | None = None
    bind: Handler | None = None
    metrics: Metrics = field(default_factory=Metrics)
    shutting_down: bool = False
    """Set on SIGTERM: /readyz answers 503 while in-flight calls finish."""

    def __post_init__(self) -> None:
        self.metrics.ready.set_function(lambda: float(self.ready))

    @property
    def ready(self) -> bool:
        """What /readyz answers: the snapshot is loaded and not being re-listed, and the
        process is not shutting down."""
        return self.readiness.ready and self.extender is not None and not self.shutting_down


def _not_ready(runtime: Runtime) -> tuple[int, bytes]:
    return 503, error_body(f"extender not ready: {runtime.readiness.reason}")


def filter_handler(runtime: Runtime) -> Handler:
    """POST /filter: 400 for a body that is not ExtenderArgs; per-pod faults go in ``Error``."""

    async def handle(body: bytes) -> tuple[int, bytes]:
        extender = runtime.extender
        if extender is None or not runtime.readiness.ready:
            return _not_ready(runtime)
        try:
            return 200, extender.filter(decode_extender_args_raw_names(body))
        except BadRequest as exc:
            return 400, error_body(str(exc))
        except Exception as exc:  # an internal fault fails this call only
            log.exception("filter failed")
            return 200, encode(filter_error(f"internal error: {exc}"))

    return handle


def prioritize_handler(runtime: Runtime) -> Handler:
    """POST /prioritize: the reply is a bare list, so faults are HTTP errors (kube-scheduler
    logs them and ignores this extender's scores for the pod)."""
    return _errorless_handler(
        runtime, "prioritize", lambda e, body: e.prioritize(decode_extender_args_raw_names(body))
    )


def preempt_handler(runtime: Runtime) -> Handler:
    """POST /preempt: the reply (``ExtenderPreemptionResult``) has no ``Error``, so faults are
    HTTP errors; kube-scheduler then fails this preemption attempt and retries the pod."""
    return _errorless_handler(
        runtime, "preempt", lambda e, body: e.preempt(decode_preemption_args(body))
    )


def _errorless_handler(
    runtime: Runtime, verb: str, answer: Callable[[Extender, bytes], bytes]
) -> Handler:
    """A verb whose reply has no ``Error`` field: 400 for a body kube-scheduler would not send,
    422 for a pod that cannot be read, 500 for an internal fault (this call only)."""

    async def handle(body: bytes) -> tuple[int, bytes]:
        extender = runtime.extender
        if extender is None or not runtime.readiness.ready:
            return _not_ready(runtime)
        try:
            return 200, answer(extender, body)
        except BadRequest as exc:
            return 400, error_body(str(exc))
        except PodError as exc:
            return 422, error_body(str(exc))
        except Exception as exc:
            log.exception("%s failed", verb)
            return 500, error_body(f"internal error: {exc}")

    return handle


def bind_handler(runtime: Runtime) -> Handler:
    """POST /bind: delegated to the commit layer when a live API source is configured."""

    async def handle(body: bytes) -> tuple[int, bytes]:
        if runtime.bind is None:
            return 200, error_body("bind is not available: the extender runs without an API server")
        return await runtime.bind(body)

    return handle


def _explain_text(report: dict[str, Any]) -> str:
    if "Error" in report:
        return f"error: {report['Error']}\n"
    lines = [f"pod {report['pod']}", f"demand {msgspec.json.encode(report['demand']).decode()}", ""]
    for node in report["nodes"]:
        if node["passed"]:
            parts = ", ".join(
                f"{k}={v['value']}×{v['weight']}" if isinstance(v, dict) else f"{k}={v}"
                for k, v in node["score_components"].items()
            )
            lines.append(f"PASS {node['node']:<30} score {node['score']:>2}  ({parts})")
        else:
            kind = "unresolvable" if node["unresolvable"] else "resolvable"
            reasons = "; ".join(f"{f['predicate']}: {f['reason']}" for f in node["failures"])
            lines.append(f"FAIL {node['node']:<30} [{kind}] {reasons}")
        for held in node.get("nominated", ()):
            lines.append(f"     holds room: nominated {held['pod']} (priority {held['priority']})")
        for name in node.get("terminating", ()):
            lines.append(f"     holds room: terminating {name} (until deleted)")
    return "\n".join(lines) + "\n"


class Source(Protocol):
    """Fills ``runtime.extender`` (a snapshot) and keeps it current until stopped."""

    async def start(self, runtime: Runtime) -> None: ...

    async def stop(self) -> None: ...


def create_app(runtime: Runtime, source: Source | None = None) -> HotPath:
    """The extender's ASGI application; ``source`` is started and stopped with the server."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if source is not None:
            await source.start(runtime)
        try:
            yield
        finally:
            if source is not None:
                await source.stop()

    api = FastAPI(
        title="placement-extender", version=__version__, docs_url="/docs", lifespan=lifespan
    )

    @api.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @api.get("/readyz")
    async def readyz() -> PlainTextResponse:
        reason = "shutting down" if runtime.shutting_down else runtime.readiness.reason
        return PlainTextResponse(reason, status_code=200 if runtime.ready else 503)

    @api.post("/explain")
    async def explain(request: Request, format: str = "json") -> Response:
        """Same body as /filter; per node: pass/fail, every failed predicate, score parts.
        ``?format=text`` gives a plain table to paste into a bug report."""
        extender = runtime.extender
        if extender is None or not runtime.readiness.ready:
            return JSONResponse({"Error": runtime.readiness.reason}, status_code=503)
        try:
            report = extender.explain(decode_extender_args(await request.body()))
        except BadRequest as exc:
            return JSONResponse({"Error": str(exc)}, status_code=400)
        if format == "text":
            return PlainTextResponse(_explain_text(report))
        return Response(encode(report), media_type="application/json")

    @api.post("/simulate")
    async def simulate(request: Request) -> Response:
        """A PodList of pending pods → where they would go, why not, what to add (the
        ``simulate --format json`` reply), against a copy of the live snapshot: writes nothing."""
        extender = runtime.extender
        if extender is None or not runtime.readiness.ready:
            return JSONResponse({"Error": runtime.readiness.reason}, status_code=503)
        try:
            body = await simulate_body(runtime.settings, extender.snapshot, await request.body())
        except PendingPodsError as exc:
            return JSONResponse({"Error": str(exc)}, status_code=400)
        return Response(body, media_type="application/json")

    @api.get("/metrics")
    async def metrics() -> Response:
        return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE)

    handlers = {
        f"/{VERBS.filter}": timed(runtime.metrics, VERBS.filter, filter_handler(runtime)),
        f"/{VERBS.prioritize}": timed(
            runtime.metrics, VERBS.prioritize, prioritize_handler(runtime)
        ),
        f"/{VERBS.bind}": timed(runtime.metrics, VERBS.bind, bind_handler(runtime)),
        f"/{VERBS.preempt}": timed(runtime.metrics, VERBS.preempt, preempt_handler(runtime)),
    }
    server = runtime.settings.server
    if not server.explain:
        handlers["/explain"] = explain_off
    return HotPath(api, handlers, server.max_body_bytes, server.read_timeout_seconds)


async def explain_off(_: bytes) -> tuple[int, bytes]:
    """POST /explain with ``server.explain`` false."""
    return 404, error_body("/explain is off (server.explain: false)")


def timed(metrics: Metrics, verb: str, handler: Handler) -> Handler:
    """Count and time every call of ``handler``."""
    seconds = metrics.request_seconds.labels(verb)
    codes: dict[int, Any] = {}

    async def handle(body: bytes) -> tuple[int, bytes]:
        started = time.perf_counter()
        status, reply = await handler(body)
        seconds.observe(time.perf_counter() - started)
        counter = codes.get(status)
        if counter is None:
            counter = codes[status] = metrics.requests.labels(verb, str(status))
        counter.inc()
        return status, reply

    return handle
