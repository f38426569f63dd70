"""The bind's API calls, each inside the bind's time budget: read the pod, the node and its
ledger Lease, write the ledger (a resourceVersion-carrying merge patch, or the Lease's create),
and POST the Binding."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from app.commit.outcome import (
    NOT_FOUND,
    BindError,
    NotSent,
    api_message,
    budget_spent,
    outcome_of,
)
from app.config import Settings
from app.contract import LEDGER_OF_NODE
from app.kube import ApiReply, KubeApi, Unreachable
from app.state.ledger import NodeLedger, ledger_of
from app.state.records import NodeFacts, PodFacts, node_facts, pod_facts
from app.state.snapshot import NodeParsing
from app.wire.quantity import QuantityError
from app.wire.types import Lease, Node, Pod

T = TypeVar("T")
MIN_CALL_SECONDS = 0.1
"""A call with less of the budget left is not sent: it would mostly time out, and a write whose
outcome is unknown holds its capacity until the reservation expires."""

_node_decoder = msgspec.json.Decoder(Node)
_pod_decoder = msgspec.json.Decoder(Pod)
_lease_decoder = msgspec.json.Decoder(Lease)


class BindCalls:
    """API calls of one replica's binds, each given the time left before its deadline."""

    def __init__(self, settings: Settings, api: KubeApi, parsing: NodeParsing) -> None:
        self.bind_settings = settings.bind
        self.api = api
        self.parsing = parsing
        self.ledger_key = parsing.keys.reservations
        self.ledger_label = parsing.keys.ledger
        self.ledger_namespace = settings.kube.ledger_namespace

    async def call(self, deadline: float, function: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Make an API call with the time left as its timeout."""
        left = deadline - time.monotonic()
        if left < MIN_CALL_SECONDS:
            raise NotSent(self.bind_settings.budget_seconds)
        timeout = min(self.bind_settings.request_timeout_seconds, left)
        try:
            return await function(*args, timeout)
        except Unreachable as exc:
            if timeout < self.bind_settings.request_timeout_seconds:  # cut short by the budget
                raise budget_spent(self.bind_settings.budget_seconds, None) from exc
            raise BindError(f"the API server did not answer in time: {exc}", "unreachable") from exc

    async def read_pod(self, namespace: str, name: str, uid: str, deadline: float) -> PodFacts:
        """The pod as the API server has it; :class:`BindError` if it cannot be read or is
        not the pod of ``uid`` (when given)."""
        reply = await self.call(deadline, self.api.get_pod, namespace, name)
        if not reply.ok:
            raise BindError(api_message("reading the pod", reply), outcome_of(reply))
        try:
            facts = pod_facts(_pod_decoder.decode(reply.body))
        except QuantityError as exc:
            raise BindError(f"pod {namespace}/{name}: {exc}", "bad_pod") from exc
        if uid and facts.uid != uid:
            raise BindError(
                f"pod {namespace}/{name} has UID {facts.uid}, not {uid}: "
                "it was deleted and re-created",
                "uid_mismatch",
            )
        return facts

    async def current_node_of(self, namespace: str, name: str, deadline: float) -> str | None:
        """The pod's node now (None: deleted); :class:`BindError` when it cannot be read."""
        reply = await self.call(deadline, self.api.get_pod, namespace, name)
        if reply.status == NOT_FOUND:
            return None
        if not reply.ok:
            raise BindError(api_message("reading the pod", reply), outcome_of(reply))
        return _pod_decoder.decode(reply.body).spec.nodeName

    async def read_node(self, name: str, deadline: float) -> NodeFacts:
        reply = await self.call(deadline, self.api.get_node, name)
        if not reply.ok:
            raise BindError(api_message(f"reading node {name}", reply), outcome_of(reply))
        parsing = self.parsing
        return node_facts(
            _node_decoder.decode(reply.body),
            parsing.keys,
            parsing.gpu_resource,
            parsing.gpu_aliases,
        )

    async def read_ledger(self, name: str, deadline: float) -> NodeLedger | None:
        """The node's ledger as the API server has it now; None if it has no Lease yet."""
        reply = await self.call(deadline, self.api.get_lease, self.ledger_namespace, name)
        if reply.status == NOT_FOUND:
            return None
        if not reply.ok:
            raise BindError(api_message(f"reading node {name}'s ledger", reply), outcome_of(reply))
        return ledger_of(_lease_decoder.decode(reply.body), self.ledger_key)

    def written_ledger(self, reply: ApiReply) -> NodeLedger:
        """The ledger a successful write's reply carries."""
        return ledger_of(_lease_decoder.decode(reply.body), self.ledger_key)

    async def write_ledger(
        self, node: NodeFacts, ledger: NodeLedger | None, text: str, deadline: float
    ) -> ApiReply:
        """PATCH the node's ledger Lease carrying its resourceVersion, or create the Lease
        (owned by the node, so it goes when the node does) if there was none."""
        annotations = {self.ledger_key: text}
        if ledger is not None:
            patch = {
                "metadata": {"resourceVersion": ledger.resource_version, "annotations": annotations}
            }
            return await self.call(
                deadline, self.api.patch_lease, self.ledger_namespace, node.name, patch
            )
        owner = {"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid}
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": node.name,
                "labels": {self.ledger_label: LEDGER_OF_NODE},
                "annotations": annotations,
                **({"ownerReferences": [owner]} if node.uid else {}),
            },
        }
        return await self.call(deadline, self.api.create_lease, self.ledger_namespace, lease)

    async def create_binding(
        self, namespace: str, name: str, uid: str, node: str, deadline: float
    ) -> ApiReply:
        return await self.call(deadline, self._binding, namespace, name, uid, node)

    async def _binding(
        self, namespace: str, name: str, uid: str, node: str, timeout: float
    ) -> ApiReply:
        return await self.api.create_binding(
            namespace=namespace, name=name, uid=uid, node=node, timeout=timeout
        )
