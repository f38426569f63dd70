"""Shared fixtures: an in-process extender over HTTP (ASGI transport, no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import settings

from app.api.server import Runtime, create_app
from app.config import load_settings
from app.sources import NODES, PODS
from app.state.readiness import Readiness
from tests.builders import extender_of

pytest_plugins = ["tests.standin.fixtures"]

ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """``make_client(nodes, pods, **settings)`` → an httpx client talking to a ready extender."""
    clients: list[httpx.AsyncClient] = []

    def build(
        nodes: list[dict[str, Any]], pods: list[dict[str, Any]] = (), **settings: Any
    ) -> httpx.AsyncClient:  # type: ignore[assignment]
        extender = extender_of(nodes, pods, **settings)
        runtime = Runtime(settings=extender.settings, readiness=Readiness(), extender=extender)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://extender"
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def not_ready_runtime() -> Runtime:
    return Runtime(settings=load_settings(), readiness=Readiness(NODES, PODS))


# `make fuzz`: tests/test_fuzz.py runs this many cases per verb instead of its CI count.
settings.register_profile("fuzz", max_examples=20_000)
