"""The Kubernetes API client: configuration discovery and the few calls the extender makes.

Uses the official ``kubernetes`` client; every call asks for the raw body
(``_preload_content=False``) and decodes only the fields it needs with msgspec. Each call here
is listed in :mod:`app.permissions`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kubernetes import client, config

from app import permissions


class KubeConfigError(ValueError):
    """No way to reach an API server was found."""


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """An ApiClient from ``kubeconfig``, else in-cluster config, else the default kubeconfig."""
    if kubeconfig:
        if not Path(kubeconfig).exists():
            raise KubeConfigError(f"kubeconfig {kubeconfig} does not exist")
        return config.new_client_from_config(config_file=kubeconfig)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    default = Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]).expanduser()
    if default.exists():
        return config.new_client_from_config(config_file=str(default))
    raise KubeConfigError(
        "no cluster to watch: pass --kubeconfig PATH, run in a pod with a service account, "
        "or pass --snapshot FILE to serve a fixed cluster"
    )


class KubeApi:
    """The API calls the extender makes (see ``app.permissions``), returning raw responses."""

    USES = permissions.REQUIRED

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)

    def list_nodes(self, **params: Any) -> Any:
        """nodes: list / watch (``watch=True``)."""
        return self.core.list_node(_preload_content=False, **params)

    def list_pods(self, **params: Any) -> Any:
        """pods: list / watch (``watch=True``)."""
        return self.core.list_pod_for_all_namespaces(_preload_content=False, **params)

    def get_node(self, name: str, timeout: float) -> Any:
        """nodes: get."""
        return self.core.read_node(name, _preload_content=False, _request_timeout=timeout)

    def get_pod(self, namespace: str, name: str, timeout: float) -> Any:
        """pods: get."""
        return self.core.read_namespaced_pod(
            name, namespace, _preload_content=False, _request_timeout=timeout
        )

    def patch_node(self, name: str, body: dict[str, Any], timeout: float) -> Any:
        """nodes: patch (a JSON merge patch; carrying metadata.resourceVersion makes it a CAS)."""
        return self.core.patch_node(
            name,
            body,
            _preload_content=False,
            _request_timeout=timeout,
            _content_type="application/merge-patch+json",
        )

    def create_binding(
        self, *, namespace: str, name: str, uid: str, node: str, timeout: float
    ) -> Any:
        """pods/binding: create. The pod's UID is a precondition (a re-created pod fails)."""
        body = client.V1Binding(
            api_version="v1",
            kind="Binding",
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, uid=uid or None),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=node),
        )
        return self.core.create_namespaced_pod_binding(
            name, namespace, body, _preload_content=False, _request_timeout=timeout
        )
