"""The bind path's API transport (app.kube.KubeApi's coroutines): credentials, no-answer, TLS
and proxy options taken from the kubernetes client's configuration."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from app.kube import AUTH_CHECK_SECONDS, KubeApi, KubeConfigError, Unreachable, request_options


class Recorder:
    """A tiny HTTP server answering every Binding with 201 and noting its Authorization."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        self.stall = asyncio.Event()  # while clear, /slow never answers
        self.url = ""

    async def binding(self, request: web.Request) -> web.Response:
        self.authorizations.append(request.headers.get("Authorization"))
        if request.match_info["name"] == "slow":
            await self.stall.wait()
        return web.json_response({"kind": "Status", "status": "Success", "code": 201}, status=201)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_post("/api/v1/namespaces/{ns}/pods/{name}/binding", recorder.binding)
    runner = web.AppRunner(app)
    await runner.setup()
    listener = socket.create_server(("127.0.0.1", 0))
    await web.SockSite(runner, listener).start()
    recorder.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    yield recorder
    recorder.stall.set()
    await runner.cleanup()


def configuration(host: str, **attributes: Any) -> client.Configuration:
    config = client.Configuration(host=host)
    for name, value in attributes.items():
        setattr(config, name, value)
    return config


async def bind(api: KubeApi, name: str = "p", timeout: float = 5.0) -> int:
    reply = await api.create_binding(namespace="default", name=name, uid="u", node="n",
                                     timeout=timeout)  # fmt: skip
    return reply.status


async def test_the_token_is_asked_for_again_only_after_a_while(recorder: Recorder) -> None:
    tokens = iter(["Bearer second", "Bearer third"])
    asked = []

    def refresh(config: client.Configuration) -> None:  # as a kubeconfig's hook: every call
        asked.append(True)
        config.api_key["BearerToken"] = next(tokens)

    config = configuration(recorder.url, api_key={"BearerToken": "Bearer first"})
    config.refresh_api_key_hook = refresh
    now = [100.0]
    api = KubeApi(client.ApiClient(config), clock=lambda: now[0])
    try:
        assert await bind(api) == 201
        now[0] += AUTH_CHECK_SECONDS / 2
        assert await bind(api) == 201
        now[0] += AUTH_CHECK_SECONDS
        assert await bind(api) == 201
    finally:
        await api.aclose()
    assert recorder.authorizations == ["Bearer second", "Bearer second", "Bearer third"]
    assert len(asked) == 2


async def test_no_answer_within_the_timeout_is_unreachable(recorder: Recorder) -> None:
    api = KubeApi(client.ApiClient(configuration(recorder.url)))
    try:
        with pytest.raises(Unreachable):
            await bind(api, "slow", timeout=0.2)
        assert await bind(api) == 201  # the session still serves the next call
    finally:
        await api.aclose()


async def test_a_refused_connection_is_unreachable() -> None:
    api = KubeApi(client.ApiClient(configuration("http://127.0.0.1:9")))  # discard: nothing there
    try:
        with pytest.raises(Unreachable):
            await bind(api)
    finally:
        await api.aclose()


def test_https_verifies_the_configured_ca_and_name_by_default() -> None:
    options = request_options(configuration("https://10.0.0.1:6443"))
    context = options["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert "server_hostname" not in options and "proxy" not in options


def test_tls_settings_follow_the_kubeconfig() -> None:
    insecure = request_options(configuration("https://10.0.0.1:6443", verify_ssl=False))
    assert insecure["ssl"].verify_mode == ssl.CERT_NONE and not insecure["ssl"].check_hostname
    named = request_options(configuration("https://10.0.0.1:6443", tls_server_name="kubernetes"))
    assert named["server_hostname"] == "kubernetes"
    assert request_options(configuration("http://127.0.0.1:8080")) == {}


def test_an_http_proxy_is_used_and_a_socks_proxy_refused() -> None:
    proxied = request_options(configuration("https://api.example:6443", proxy="http://proxy:3128"))
    assert proxied["proxy"] == "http://proxy:3128"
    bypassed = configuration("https://api.example:6443", proxy="http://proxy:3128",
                             no_proxy="api.example")  # fmt: skip
    assert "proxy" not in request_options(bypassed)
    with pytest.raises(KubeConfigError, match="only HTTP"):
        request_options(configuration("https://api.example:6443", proxy="socks5://proxy:1080"))
