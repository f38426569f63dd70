"""kube-scheduler replies assembled from pre-encoded JSON fragments.

At thousands of nodes per call, building a dict per node and encoding it costs more than all
the policy work; the node table keeps each node's name already JSON-encoded, so a reply is a
join of byte strings. The shapes are exactly ``ExtenderFilterResult`` and ``HostPriorityList``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import add

import msgspec
import numpy as np
import numpy.typing as npt

from app.wire.codec import encode

MAX_PRIORITY = 10
# b'0}' ... b'10}': the tail of {"Host":"<name>","Score":<n>}
SCORE_TAILS: npt.NDArray[np.object_] = np.array(
    [f"{score}}}".encode() for score in range(MAX_PRIORITY + 1)], dtype=object
)


def json_array(encoded_items: Iterable[bytes]) -> bytes:
    """``[a,b,...]`` from already-encoded items."""
    return b"[" + b",".join(encoded_items) + b"]"


def json_object(encoded_keys: Sequence[bytes], colon_values: Sequence[bytes]) -> bytes:
    """``{k:v,...}`` from encoded keys and values encoded with a leading colon (``:"v"``)."""
    return b"{" + b",".join(map(add, encoded_keys, colon_values)) + b"}"


def colon_value(value: str) -> bytes:
    """``:"value"``, the form :func:`json_object` takes."""
    return b":" + encode(value)


def filter_reply(
    *,
    node_names: bytes | None,
    nodes: list[msgspec.Raw] | None,
    failed: bytes,
    unresolvable: bytes,
) -> bytes:
    """``ExtenderFilterResult``: kept nodes as names (``node_names``, a JSON array) or as the
    request's own node objects (``nodes``), the two failure maps (JSON objects), no error."""
    kept_nodes = b"null" if nodes is None else encode({"metadata": {}, "items": nodes})
    return b"".join(
        (
            b'{"Nodes":',
            kept_nodes,
            b',"NodeNames":',
            b"null" if node_names is None else node_names,
            b',"FailedNodes":',
            failed,
            b',"FailedAndUnresolvableNodes":',
            unresolvable,
            b',"Error":""}',
        )
    )


def host_priority_list(host_prefixes: list[bytes], scores: list[int]) -> bytes:
    """``[{"Host":..,"Score":..},...]`` from per-node prefixes ``{"Host":"<name>","Score":``."""
    return json_array(map(add, host_prefixes, SCORE_TAILS[scores].tolist()))
