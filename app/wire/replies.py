"""kube-scheduler replies assembled from pre-encoded JSON fragments.

At thousands of nodes per call, building a dict per node and encoding it costs more than all
the policy work; the node table keeps each node's name already JSON-encoded, so a reply is a
join of byte strings. The shapes are exactly ``ExtenderFilterResult`` and ``HostPriorityList``.

A filter reply's failure maps (most of it) are joined one group of same-reason nodes at a time,
then the whole reply once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import msgspec
import numpy as np
import numpy.typing as npt

from app.wire.codec import encode

MAX_PRIORITY = 10
# b'0},' ... b'10},': the tail of {"Host":"<name>","Score":<n>}, and the comma after it
SCORE_TAILS: npt.NDArray[np.object_] = np.array(
    [f"{score}}},".encode() for score in range(MAX_PRIORITY + 1)], dtype=object
)


def json_array(encoded_items: Iterable[bytes]) -> bytes:
    """``[a,b,...]`` from already-encoded items."""
    return b"[" + b",".join(encoded_items) + b"]"


def object_members(groups: Iterable[tuple[Sequence[bytes], str]]) -> list[bytes]:
    """Fragments of ``k:v,k:v,...`` (an object's inside) from groups of encoded keys that share
    one string value; ``b"".join`` of them is the text.

    Each group is a single ``bytes.join`` with the value as separator, so the cost per key is a
    copy, not a concatenation. Keys come out group by group (a JSON object is unordered).
    """
    fragments: list[bytes] = []
    for keys, value in groups:
        if keys:
            colon, separator = _member_tail(value)
            fragments += (b",", separator.join(keys), colon)
    return fragments[1:]  # no comma before the first member


@lru_cache(maxsize=4096)
def _member_tail(value: str) -> tuple[bytes, bytes]:
    """``:"value"`` and ``:"value",`` (reasons repeat from call to call)."""
    colon = b":" + encode(value)
    return colon, colon + b","


def filter_reply(
    *,
    node_names: bytes | None,
    nodes: list[msgspec.Raw] | None,
    failed: list[bytes],
    unresolvable: list[bytes],
) -> bytes:
    """``ExtenderFilterResult``: kept nodes as a JSON array of names (``node_names``, see
    :func:`json_array`) or as the request's own node objects (``nodes``), the two failure maps
    as :func:`object_members` fragments, no error. One final join: the failure maps are copied
    once."""
    kept_nodes = b"null" if nodes is None else encode({"metadata": {}, "items": nodes})
    kept_names = b"null" if node_names is None else node_names
    return b"".join(
        [
            b'{"Nodes":',
            kept_nodes,
            b',"NodeNames":',
            kept_names,
            b',"FailedNodes":{',
            *failed,
            b'},"FailedAndUnresolvableNodes":{',
            *unresolvable,
            b'},"Error":""}',
        ]
    )


def host_priority_list(host_prefixes: list[bytes], scores: npt.NDArray[np.int64]) -> bytes:
    """``[{"Host":..,"Score":..},...]`` from per-node prefixes ``{"Host":"<name>","Score":``
    and scores 0..MAX_PRIORITY: prefixes and score tails interleaved, then one join."""
    fragments = [b"["] * (2 * len(host_prefixes) + 1)
    fragments[1::2] = host_prefixes
    fragments[2::2] = SCORE_TAILS[scores].tolist()
    fragments[-1] = fragments[-1][:-1] + b"]" if host_prefixes else b"[]"
    return b"".join(fragments)
