"""The Kubernetes API client: configuration discovery and the few calls the extender makes.

Uses the official ``kubernetes`` client's configuration and connection pool; every call reads
the raw body and decodes only the fields it needs with msgspec. Each call here is listed in
:mod:`app.permissions`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import msgspec
import urllib3
from kubernetes import client, config

from app.wire.types import Status


class KubeConfigError(ValueError):
    """No way to reach an API server was found."""


CONNECTIONS = 32
"""HTTP connections kept to the API server: one per bind thread, plus the two watches."""


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient from ``kubeconfig``, else in-cluster config, else the default kubeconfig."""
    configuration = client.Configuration()
    configuration.connection_pool_maxsize = CONNECTIONS + 2
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


class KubeApi:
    """The API calls the extender makes (see ``app.permissions``).

    ``list_*`` return the raw streaming response of the kubernetes client (for the watch
    threads). The bind path's calls go straight to the client's own connection pool — same
    server, TLS settings and credentials (a refreshed token included) — with msgspec-encoded
    bodies: the generated client's per-call layers (argument validation, model serialisation)
    cost more CPU than the HTTP exchange itself. They return an :class:`ApiReply` and raise
    :class:`Unreachable` when there is no answer.
    """

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self._api = api
        self._host = api.configuration.host.rstrip("/")

    def _send(self, method: str, path: str, timeout: float, body: Any = None,
              content_type: str = JSON_TYPE) -> ApiReply:  # fmt: skip
        headers = {**self._api.default_headers, "Accept": JSON_TYPE}
        token = self._api.configuration.auth_settings().get("BearerToken")
        if token and token["value"]:
            headers["Authorization"] = token["value"]
        payload = None
        if body is not None:
            payload = _encoder.encode(body)
            headers["Content-Type"] = content_type
        try:
            response = self._api.rest_client.pool_manager.request(
                method,
                self._host + path,
                body=payload,
                headers=headers,
                timeout=urllib3.Timeout(total=timeout),
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unreachable(repr(exc)) from exc
        return ApiReply(int(response.status), bytes(response.data))

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

    def get_node(self, name: str, timeout: float) -> ApiReply:
        """nodes: get."""
        return self._send("GET", f"/api/v1/nodes/{quote(name)}", timeout)

    def get_pod(self, namespace: str, name: str, timeout: float) -> ApiReply:
        """pods: get."""
        return self._send("GET", f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}",
                          timeout)  # fmt: skip

    def get_lease(self, namespace: str, name: str, timeout: float) -> ApiReply:
        """leases: get."""
        return self._send("GET", f"{_leases(namespace)}/{quote(name)}", timeout)

    def create_lease(self, namespace: str, body: dict[str, Any], timeout: float) -> ApiReply:
        """leases: create (409 AlreadyExists if another writer created it first)."""
        return self._send("POST", _leases(namespace), timeout, body)

    def patch_lease(
        self, namespace: str, name: str, body: dict[str, Any], timeout: float
    ) -> ApiReply:
        """leases: patch (a JSON merge patch; carrying metadata.resourceVersion makes it a CAS)."""
        return self._send("PATCH", f"{_leases(namespace)}/{quote(name)}", timeout, body,
                          MERGE_PATCH_TYPE)  # fmt: skip

    def create_binding(
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
        return self._send("POST", path, timeout, binding)


def _leases(namespace: str) -> str:
    return LEASES.format(namespace=quote(namespace))
