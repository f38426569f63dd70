"""The Kubernetes API client: configuration discovery and the few calls the extender makes.

Uses the official ``kubernetes`` client; every call asks for the raw body
(``_preload_content=False``) and decodes only the fields it needs with msgspec. Each call here
is listed in :mod:`app.permissions`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

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


def _reply(call: Callable[[], Any]) -> ApiReply:
    try:
        response = call()
    except ApiException as exc:
        if exc.status is None or exc.status == 0:
            raise Unreachable(str(exc.reason or exc)) from exc
        body = exc.body.encode() if isinstance(exc.body, str) else bytes(exc.body or b"")
        return ApiReply(int(exc.status), body)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Unreachable(repr(exc)) from exc
    return ApiReply(int(response.status), bytes(response.data))


class KubeApi:
    """The API calls the extender makes (see ``app.permissions``).

    ``list_*`` return the raw streaming response (for the watch threads); the others return
    an :class:`ApiReply` and raise :class:`Unreachable` when there is no answer.
    """

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)

    def list_nodes(self, **params: Any) -> Any:
        """nodes: list / watch (``watch=True``)."""
        return self.core.list_node(_preload_content=False, **params)

    def list_pods(self, **params: Any) -> Any:
        """pods: list / watch (``watch=True``)."""
        return self.core.list_pod_for_all_namespaces(_preload_content=False, **params)

    def get_node(self, name: str, timeout: float) -> ApiReply:
        """nodes: get."""
        return _reply(
            lambda: self.core.read_node(name, _preload_content=False, _request_timeout=timeout)
        )

    def get_pod(self, namespace: str, name: str, timeout: float) -> ApiReply:
        """pods: get."""
        return _reply(
            lambda: self.core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=timeout
            )
        )

    def list_leases(self, namespace: str, label_selector: str, **params: Any) -> Any:
        """leases (namespaced): list / watch (``watch=True``)."""
        return self.coordination.list_namespaced_lease(
            namespace, label_selector=label_selector, _preload_content=False, **params
        )

    def get_lease(self, namespace: str, name: str, timeout: float) -> ApiReply:
        """leases: get."""
        return _reply(
            lambda: self.coordination.read_namespaced_lease(
                name, namespace, _preload_content=False, _request_timeout=timeout
            )
        )

    def create_lease(self, namespace: str, body: dict[str, Any], timeout: float) -> ApiReply:
        """leases: create (409 AlreadyExists if another writer created it first)."""
        return _reply(
            lambda: self.coordination.create_namespaced_lease(
                namespace,
                body,  # type: ignore[arg-type]  # the client serialises a plain dict as is
                _preload_content=False,
                _request_timeout=timeout,
            )
        )

    def patch_lease(
        self, namespace: str, name: str, body: dict[str, Any], timeout: float
    ) -> ApiReply:
        """leases: patch (a JSON merge patch; carrying metadata.resourceVersion makes it a CAS)."""
        return _reply(
            lambda: self.coordination.patch_namespaced_lease(
                name,
                namespace,
                body,
                _preload_content=False,
                _request_timeout=timeout,
                _content_type="application/merge-patch+json",
            )
        )

    def create_binding(
        self, *, namespace: str, name: str, uid: str, node: str, timeout: float
    ) -> ApiReply:
        """pods/binding: create. The pod's UID is a precondition (a re-created pod fails)."""
        body = client.V1Binding(
            api_version="v1",
            kind="Binding",
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, uid=uid or None),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=node),
        )
        return _reply(
            lambda: self.core.create_namespaced_pod_binding(
                name, namespace, body, _preload_content=False, _request_timeout=timeout
            )
        )
