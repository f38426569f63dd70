"""Snapshot source: a YAML or JSON file of v1 Nodes and Pods.

Accepts what ``kubectl get nodes,pods -A -o yaml`` prints (a ``List``), ``NodeList``/``PodList``
objects, a bare list, or several YAML documents.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import yaml

from app.state.records import NodeFacts, PodFacts, node_facts, pod_facts
from app.state.snapshot import NodeParsing, Snapshot
from app.wire.quantity import QuantityError
from app.wire.types import Node, Pod

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SnapshotFileError(ValueError):
    """The snapshot file cannot be read, or an object in it is unusable."""


def kube_objects(document: Any) -> Iterator[dict[str, Any]]:
    """The objects in loaded YAML/JSON: lists (``List``, ``NodeList``...) and bare lists are
    flattened, and items of a typed list get its item ``kind`` when they lack one."""
    if document is None:
        return
    if isinstance(document, list):
        for item in document:
            yield from kube_objects(item)
    elif isinstance(document, dict):
        if isinstance(document.get("items"), list):
            list_kind = str(document.get("kind", ""))
            item_kind = list_kind[:-4] if list_kind.endswith("List") and list_kind != "List" else ""
            for item in document["items"]:
                if isinstance(item, dict) and item_kind and "kind" not in item:
                    item = {**item, "kind": item_kind}
                yield from kube_objects(item)
        else:
            yield document


def parse_objects(
    documents: Any, parsing: NodeParsing, origin: str
) -> tuple[list[NodeFacts], list[PodFacts]]:
    """Turn loaded YAML/JSON documents into node and pod records."""
    nodes: list[NodeFacts] = []
    pods: list[PodFacts] = []
    for index, obj in enumerate(kube_objects(documents)):
        kind = obj.get("kind")
        name = (obj.get("metadata") or {}).get("name", "?")
        try:
            if kind == "Node":
                nodes.append(
                    node_facts(
                        msgspec.convert(obj, Node),
                        parsing.keys,
                        parsing.gpu_resource,
                        parsing.gpu_aliases,
                    )
                )
            elif kind == "Pod":
                pods.append(pod_facts(msgspec.convert(obj, Pod), parsing.keys))
        except (msgspec.ValidationError, QuantityError) as exc:
            raise SnapshotFileError(f"{origin}: object #{index} ({kind} {name}): {exc}") from exc
    return nodes, pods


def read_documents(path: str | Path) -> Any:
    """The file's documents. JSON (``kubectl ... -o json``) is decoded with msgspec, about 40×
    faster than YAML through PyYAML's C loader: prefer it for large clusters."""
    try:
        text = Path(path).read_bytes()
        if text.lstrip()[:1] in (b"{", b"["):
            return msgspec.json.decode(text)
        return list(yaml.load_all(text, Loader=_Loader))
    except (OSError, yaml.YAMLError, msgspec.DecodeError) as exc:
        raise SnapshotFileError(f"cannot read snapshot {path}: {exc}") from exc


def load_snapshot(path: str | Path, snapshot: Snapshot) -> None:
    """Load ``path`` into ``snapshot`` (replacing its nodes and pods)."""
    documents = read_documents(path)
    nodes, pods = parse_objects(documents, snapshot.parsing, str(path))
    if not nodes:
        raise SnapshotFileError(f"snapshot {path} holds no Node objects")
    snapshot.replace_nodes(nodes)
    snapshot.replace_pods(pods)
