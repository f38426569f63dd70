"""The Kubernetes API client: configuration discovery and the few calls the extender makes.

Uses the official ``kubernetes`` client's configuration: its connection pool for the watches
(threads), aiohttp in the event loop for the bind path's calls. Every call reads the raw body and
decodes only the fields it needs with msgspec. Each call here is listed in :mod:`app.permissions`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec
from kubernetes import client, config
from kubernetes.client.rest import should_bypass_proxies

from app.wire.types import Status


class KubeConfigError(ValueError):
    """No way to reach an API server was found, or it is configured in a way we cannot use."""


WATCH_CONNECTIONS = 4
"""The kubernetes client's pool: the three watches (nodes, pods, ledgers) and a relist."""
AUTH_CHECK_SECONDS = 1.0
"""How often the bind path asks the client configuration for its bearer token. Its refresh hooks
re-read a rotated token file or re-run an exec plugin on their own schedule (a minute or more),
but the kubeconfig loader's hook also re-applies the whole kubeconfig on every call."""


CONNECTIONS = 32
"""HTTP connections the bind path keeps to the API server (its calls wait for one past that)."""


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient from ``kubeconfig``, else in-cluster config, else the default kubeconfig."""
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = WATCH_CONNECTIONS
    if kubeconfig:
        if not Path(kubeconfig).exists():
            raise KubeConfigError(f"kubeconfig {kubeconfig} does not exist")
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        return client.ApiClient(configuration)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    default = Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]).expanduser()
    if default.exists():
        config.load_kube_config(config_file=str(default), client_configuration=configuration)
        return client.ApiClient(configuration)
    raise KubeConfigError(
        "no cluster to watch: pass --kubeconfig PATH, run in a pod with a service account, "
        "or pass --snapshot FILE to serve a fixed cluster"
    )


@dataclass(frozen=True, slots=True)
class ApiReply:
    """An API server answer: HTTP status and raw body (a ``Status`` on errors)."""

    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def status_object(self) -> Status:
        """The ``metav1.Status`` of an error reply (empty if the body is not one)."""
        try:
            return _status_decoder.decode(self.body)
        except msgspec.DecodeError:
            return Status(code=self.status, message=self.body[:300].decode(errors="replace"))


class Unreachable(Exception):
    """No answer (timeout, refused or dropped connection): a write's outcome is unknown."""


_status_decoder = msgspec.json.Decoder(Status)
_encoder = msgspec.json.Encoder()
JSON_TYPE = "application/json"
MERGE_PATCH_TYPE = "application/merge-patch+json"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
CAPACITIES = "/apis/storage.k8s.io/v1/namespaces/{namespace}/csistoragecapacities"


class KubeApi:
    """The API calls the extender makes (see ``app.permissions``).

    ``list_*`` return the raw streaming response of the kubernetes client (for the watch
    threads). The bind path's calls are coroutines on an aiohttp session in the event loop —
    same server, TLS settings and credentials (a refreshed token included) as the kubernetes
    client's configuration — with msgspec-encoded bodies: a thread hop and the blocking
    client's pure-Python response parsing cost more CPU than the HTTP exchange itself. They
    return an :class:`ApiReply` and raise :class:`Unreachable` when there is no answer.
    """

    def __init__(
        self, api: client.ApiClient, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self._api = api
        self._host = api.configuration.host.rstrip("/")
        self._options = request_options(api.configuration)
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._clock = clock
        self._authorization: str | None = None
        self._authorization_checked = -AUTH_CHECK_SECONDS

    def _session_here(self) -> aiohttp.ClientSession:
        """The session of the running loop (created on first use: it belongs to one loop)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=connector)
            self._session_loop = loop
        return self._session

    async def aclose(self) -> None:
        """Close the bind path's connections (the watches' pool is the kubernetes client's)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(self, method: str, path: str, timeout: float, body: Any = None,
                    content_type: str = JSON_TYPE) -> ApiReply:  # fmt: skip
        headers = {**self._api.default_headers, "Accept": JSON_TYPE}
        authorization = self._current_authorization()
        if authorization:
            headers["Authorization"] = authorization
        payload = None
        if body is not None:
            payload = _encoder.encode(body)
            headers["Content-Type"] = content_type
        try:
            async with self._session_here().request(
                method,
                self._host + path,
                data=payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                **self._options,
            ) as response:
                return ApiReply(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unreachable(repr(exc)) from exc

    def _current_authorization(self) -> str | None:
        now = self._clock()
        if now - self._authorization_checked >= AUTH_CHECK_SECONDS:
            token = self._api.configuration.auth_settings().get("BearerToken")
            self._authorization = token["value"] if token and token["value"] else None
            self._authorization_checked = now
        return self._authorization

    def list_nodes(self, **params: Any) -> Any:
        """nodes: list / watch (``watch=True``)."""
        return self.core.list_node(_preload_content=False, **params)

    def list_pods(self, **params: Any) -> Any:
        """pods: list / watch (``watch=True``)."""
        return self.core.list_pod_for_all_namespaces(_preload_content=False, **params)

    def list_leases(self, namespace: str, label_selector: str, **params: Any) -> Any:
        """leases (namespaced): list / watch (``watch=True``)."""
        return self.coordination.list_namespaced_lease(
            namespace, label_selector=label_selector, _preload_content=False, **params
        )

    async def get_node(self, name: str, timeout: float) -> ApiReply:
        """nodes: get."""
        return await self._send("GET", f"/api/v1/nodes/{quote(name)}", timeout)

    async def get_pod(self, namespace: str, name: str, timeout: float) -> ApiReply:
        """pods: get."""
        path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}"
        return await self._send("GET", path, timeout)

    async def get_lease(self, namespace: str, name: str, timeout: float) -> ApiReply:
        """leases: get."""
        return await self._send("GET", f"{_leases(namespace)}/{quote(name)}", timeout)

    async def create_lease(self, namespace: str, body: dict[str, Any], timeout: float) -> ApiReply:
        """leases: create (409 AlreadyExists if another writer created it first)."""
        return await self._send("POST", _leases(namespace), timeout, body)

    async def patch_lease(
        self, namespace: str, name: str, body: dict[str, Any], timeout: float
    ) -> ApiReply:
        """leases: patch (a JSON merge patch; carrying metadata.resourceVersion makes it a CAS)."""
        path = f"{_leases(namespace)}/{quote(name)}"
        return await self._send("PATCH", path, timeout, body, MERGE_PATCH_TYPE)

    async def get_wake(self, namespace: str, name: str, timeout: float) -> ApiReply:
        """csistoragecapacities: get (the wake-up object, ``app.commit.wake``)."""
        return await self._send("GET", f"{_capacities(namespace)}/{quote(name)}", timeout)

    async def create_wake(self, namespace: str, body: dict[str, Any], timeout: float) -> ApiReply:
        """csistoragecapacities: create (409 AlreadyExists if another replica created it)."""
        return await self._send("POST", _capacities(namespace), timeout, body)

    async def patch_wake(
        self, namespace: str, name: str, body: dict[str, Any], timeout: float
    ) -> ApiReply:
        """csistoragecapacities: patch (a JSON merge patch; with metadata.resourceVersion, a
        CAS)."""
        path = f"{_capacities(namespace)}/{quote(name)}"
        return await self._send("PATCH", path, timeout, body, MERGE_PATCH_TYPE)

    async def create_binding(
        self, *, namespace: str, name: str, uid: str, node: str, timeout: float
    ) -> ApiReply:
        """pods/binding: create. The pod's UID is a precondition (a re-created pod fails)."""
        metadata = {"name": name, "namespace": namespace, **({"uid": uid} if uid else {})}
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": metadata,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}/binding"
        return await self._send("POST", path, timeout, binding)


def request_options(configuration: client.Configuration) -> dict[str, Any]:
    """aiohttp request options with the kubernetes client's TLS and proxy settings (what its
    urllib3 pool is given): CA file or data, client certificate, ``verify_ssl``,
    ``tls_server_name`` / ``assert_hostname``, an HTTP(S) proxy."""
    options: dict[str, Any] = {}
    if configuration.host.startswith("https:"):
        context = ssl.create_default_context(
            cafile=configuration.ssl_ca_cert, cadata=configuration.ca_cert_data
        )
        if not configuration.verify_ssl or configuration.assert_hostname is False:
            context.check_hostname = False
        if not configuration.verify_ssl:
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        options["ssl"] = context
        name = configuration.tls_server_name or configuration.assert_hostname
        if isinstance(name, str) and name:
            options["server_hostname"] = name
    proxy = configuration.proxy
    if proxy and not should_bypass_proxies(configuration.host, configuration.no_proxy or ""):
        if not proxy.startswith(("http:", "https:")):
            raise KubeConfigError(f"proxy {proxy}: only HTTP(S) proxies are supported")
        options["proxy"] = proxy
        if configuration.proxy_headers:
            options["proxy_headers"] = configuration.proxy_headers
    return options


def _leases(namespace: str) -> str:
    return LEASES.format(namespace=quote(namespace))


def _capacities(namespace: str) -> str:
    return CAPACITIES.format(namespace=quote(namespace))
