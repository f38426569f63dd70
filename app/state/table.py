"""Columnar node table: one row per node, numpy columns the policy evaluates in bulk.

Row 0 is a sentinel for names the extender does not know, so a request's node names map to rows
with one C-level pass (``rows_for``) and unknown names need no special case in the predicates.
Rows of deleted nodes are reused.

Besides the raw facts the table keeps, per row, the derived forms the policy reads on every
request, recomputed only when that node's state changes:

- ``flags``: one bit per yes/no fact (``FLAG_*``);
- ``limits``: node-major, everything a pod's needs are compared with, so that one gather and one
  comparison check all of them for every candidate: free and capacity per resource, GPU memory,
  and each flag as a 0/1 *clearance* (1 where the node does not have the flag);
- ``typed_gpus``: 1 + the GPU type code for nodes that have GPUs, 0 for the others.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from app.state.records import NodeFacts
from app.wire.codec import encode as encode_json

UNKNOWN_ROW = 0
LISTS_KEPT = 8
"""Name lists remembered by :meth:`NodeTable.listed_raw` and :meth:`NodeTable.remember` (about
0.9 MB each at 5,000 names)."""

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FlagArray = npt.NDArray[np.uint8]

# Bits of the ``flags`` column.
FLAG_UNKNOWN = 1
"""Not a node the snapshot knows: the sentinel row, and rows of deleted nodes."""
FLAG_INVALID = 2
"""The node's labels, capacity or reservation ledger could not be read."""
FLAG_HAS_GPUS = 4
"""The node has allocatable GPUs."""
FLAG_POOL_ONLY = 8
"""The node admits only pods of its own pool."""
FLAG_PREEMPTIBLE = 16
"""A spot/preemptible node."""
FLAG_BITS = 5
"""Flags use bits 0 .. FLAG_BITS - 1."""

# Columns of ``limits``: a pod need fails where the node's value is below it.


def clearance_limit(flag: int) -> int:
    """The ``limits`` column of ``flag``'s clearance: 1 where the node lacks the flag, else 0,
    so "fails where the node has the flag" is "fails where the clearance is below 1"."""
    assert flag > 0 and flag & (flag - 1) == 0 and flag < 1 << FLAG_BITS, "one FLAG_* bit"
    return flag.bit_length() - 1


GPU_MEMORY_LIMIT = FLAG_BITS
"""Memory of each of the node's GPUs, MiB."""


def free_limit(column: int) -> int:
    """The ``limits`` column of resource ``column``'s free amount: allocatable − used − reserved."""
    return GPU_MEMORY_LIMIT + 1 + 2 * column


def capacity_limit(column: int) -> int:
    """The ``limits`` column of resource ``column``'s capacity: max(allocatable, free).

    A request above it could not fit even on the emptied node. (It is the allocatable amount;
    taking the max keeps "over capacity" a special case of "over free" should bookkeeping ever
    leave free above allocatable.)
    """
    return GPU_MEMORY_LIMIT + 2 + 2 * column


def limit_count(width: int) -> int:
    """Number of ``limits`` columns for ``width`` tracked resources: a multiple of 8, so a row of
    comparison results is whole 64-bit words (spare columns stay 0)."""
    used = capacity_limit(width - 1) + 1
    return -(-used // 8) * 8


class Interner:
    """Small string ↔ code table for categorical columns; code 0 is the empty value."""

    def __init__(self) -> None:
        self.values: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}

    def code(self, value: str | None) -> int:
        if not value:
            return 0
        found = self._codes.get(value)
        if found is None:
            found = self._codes[value] = len(self.values)
            self.values.append(value)
        return found

    def lookup(self, value: str) -> int:
        """The code of ``value``, or -1 if never seen (matches no row)."""
        return self._codes.get(value, -1)


def host_prefix(json_name: bytes) -> bytes:
    """The head of a ``HostPriority`` up to its score: ``{"Host":<name>,"Score":``."""
    return b'{"Host":' + json_name + b',"Score":'


@dataclass(slots=True)
class GatheredLimits:
    """The ``limits`` rows of a list's candidates, as of table ``version`` (-1: never used)."""

    values: IntArray | None = None
    version: int = -1


class Listed:
    """A request's node names resolved against the table, in request order: each candidate's
    row (the sentinel for unknown names), and its reply fragments, joined on first use (a
    filter needs only the names, a prioritize only the host prefixes)."""

    def __init__(self, table: NodeTable, rows: npt.NDArray[np.intp], names: Sequence[str]):
        self.rows = rows
        self.gathered = GatheredLimits()
        """Kept up to date by :meth:`NodeTable.limits_of`."""
        self._table = table
        # names the table does not know are rare (watch lag, hand-written requests)
        self._unknown = {i: names[i] for i in np.flatnonzero(rows == UNKNOWN_ROW).tolist()}

    def kept(self, which: BoolArray) -> Listed:
        """The candidates where ``which`` holds, in order: a filter's kept nodes."""
        positions = np.flatnonzero(which)
        kept = Listed(self._table, self.rows[positions], ())
        if self._unknown:
            unknown = self._unknown
            kept._unknown = {
                new: unknown[old] for new, old in enumerate(positions.tolist()) if old in unknown
            }
        return kept

    @property
    def unknown_positions(self) -> npt.NDArray[np.intp]:
        """Where the list names a node the table does not know (the sentinel row)."""
        return np.fromiter(self._unknown, np.intp, len(self._unknown))

    @cached_property
    def json_names(self) -> npt.NDArray[np.object_]:
        """Each candidate's name, JSON-encoded."""
        encoded = self._table.json_name[self.rows]
        for i, name in self._unknown.items():
            encoded[i] = encode_json(name)
        return encoded

    @cached_property
    def host_prefixes(self) -> list[bytes]:
        """Each candidate's ``{"Host":<name>,"Score":``."""
        prefixes = self._table.host_prefix[self.rows]
        for i, name in self._unknown.items():
            prefixes[i] = host_prefix(encode_json(name))
        return prefixes.tolist()  # type: ignore[no-any-return]


class NodeTable:
    """Per-node facts as numpy columns, updated row by row.

    Resource matrices are resource-major (``free[column]`` is one contiguous array over rows),
    so a score gathers only the resource it reads. ``free`` is kept current on every write:
    allocatable − used − reserved; ``limits`` and ``flags`` follow every write too.
    """

    _COLUMNS = (
        "alloc", "used", "reserved", "free", "gpu_type", "typed_gpus", "gpu_memory", "pool",
        "pool_priority", "flags", "name_hash", "json_name", "host_prefix", "limits_stamp",
    )  # fmt: skip
    """Columns indexed by row on their last axis (``limits`` is node-major: row first)."""

    def __init__(self, resources: Sequence[str], gpu_resource: str, capacity: int = 64) -> None:
        self.resources = tuple(resources)
        self.gpu_column = self.resources.index(gpu_resource)
        self.rows: dict[str, int] = {}
        self.names: list[str] = [""]
        self.gpu_types = Interner()
        self.pools = Interner()
        self._free_rows: list[int] = []
        self.mapping_version = 0
        """Bumped whenever a name gains or loses its row."""
        self.limits_version = 0
        """Bumped by every write of a ``limits`` row; ``limits_stamp`` holds each row's last."""
        self._lists: OrderedDict[bytes, tuple[int, Listed]] = OrderedDict()
        self._allocate(max(capacity, 2))
        self.json_name[UNKNOWN_ROW] = b'""'
        self._refresh_limits(UNKNOWN_ROW)

    def _allocate(self, capacity: int) -> None:
        width = len(self.resources)
        self.alloc: IntArray = np.zeros((width, capacity), np.int64)
        self.used: IntArray = np.zeros((width, capacity), np.int64)
        self.reserved: IntArray = np.zeros((width, capacity), np.int64)
        self.free: IntArray = np.zeros((width, capacity), np.int64)
        self.limits: IntArray = np.zeros((capacity, limit_count(width)), np.int64)
        self.gpu_type = np.zeros(capacity, np.int32)
        self.typed_gpus = np.zeros(capacity, np.int32)
        self.gpu_memory: IntArray = np.zeros(capacity, np.int64)
        self.pool = np.zeros(capacity, np.int32)
        self.pool_priority: IntArray = np.zeros(capacity, np.int64)
        self.flags: FlagArray = np.full(capacity, FLAG_UNKNOWN, np.uint8)
        self.name_hash = np.zeros(capacity, np.uint64)
        self.limits_stamp: IntArray = np.zeros(capacity, np.int64)
        # Pre-encoded JSON fragments, so replies are joined from bytes instead of encoded per node.
        self.json_name: npt.NDArray[np.object_] = np.full(capacity, b"", object)
        self.host_prefix: npt.NDArray[np.object_] = np.full(capacity, b"", object)

    def _grow(self) -> None:
        previous = {column: getattr(self, column) for column in self._COLUMNS}
        limits = self.limits
        count = self.flags.shape[0]
        self._allocate(count * 2)
        for column, values in previous.items():
            getattr(self, column)[..., :count] = values
        self.limits[:count] = limits

    @property
    def size(self) -> int:
        """Number of rows in use, including the sentinel and free rows."""
        return len(self.names)

    @property
    def known(self) -> BoolArray:
        """Per row: a node the snapshot knows."""
        known: BoolArray = (self.flags & FLAG_UNKNOWN) == 0
        return known

    @property
    def valid(self) -> BoolArray:
        """Per row: a known node whose facts could all be read."""
        valid: BoolArray = (self.flags & (FLAG_UNKNOWN | FLAG_INVALID)) == 0
        return valid

    def vector(self, amounts: Mapping[str, int]) -> IntArray:
        """Amounts keyed by resource name → a vector in column order."""
        return np.array([amounts.get(r, 0) for r in self.resources], np.int64)

    def upsert(self, facts: NodeFacts) -> int:
        """Write ``facts`` into the node's row (allocating one if new); return the row."""
        row = self.rows.get(facts.name)
        if row is None:
            if self._free_rows:
                row = self._free_rows.pop()
                self.names[row] = facts.name
            else:
                row = len(self.names)
                if row >= self.flags.shape[0]:
                    self._grow()
                self.names.append(facts.name)
            self.rows[facts.name] = row
            self.mapping_version += 1
            self.used[:, row] = 0
            self.reserved[:, row] = 0
            self.json_name[row] = encode_json(facts.name)
            self.host_prefix[row] = host_prefix(self.json_name[row])
        self.alloc[:, row] = self.vector(facts.allocatable)
        self.gpu_type[row] = self.gpu_types.code(facts.gpu_type)
        self.gpu_memory[row] = facts.gpu_memory_mib
        self.pool[row] = self.pools.code(facts.pool)
        self.pool_priority[row] = facts.pool_priority
        self.name_hash[row] = facts.name_hash
        has_gpus = self.alloc[self.gpu_column, row] > 0
        self.typed_gpus[row] = 1 + self.gpu_type[row] if has_gpus else 0
        self.flags[row] = (
            (FLAG_INVALID if facts.problems else 0)
            | (FLAG_HAS_GPUS if has_gpus else 0)
            | (FLAG_POOL_ONLY if facts.pool_only else 0)
            | (FLAG_PREEMPTIBLE if facts.preemptible else 0)
        )
        self._refresh_free(row)
        return row

    def set_used(self, row: int, used: IntArray) -> None:
        """Requests of the pods holding resources on the node at ``row``."""
        self.used[:, row] = used
        self._refresh_free(row)

    def set_reserved(self, row: int, reserved: IntArray) -> None:
        """What live reservations hold on the node at ``row``."""
        self.reserved[:, row] = reserved
        self._refresh_free(row)

    def free_of(self, row: int) -> IntArray:
        """Free amounts of the node at ``row``, per resource (a copy)."""
        return self.free[:, row].copy()

    def _refresh_free(self, row: int) -> None:
        self.free[:, row] = self.alloc[:, row] - self.used[:, row] - self.reserved[:, row]
        self._refresh_limits(row)

    def _refresh_limits(self, row: int) -> None:
        width = len(self.resources)
        alloc, free, flags = self.alloc[:, row], self.free[:, row], int(self.flags[row])
        limits = self.limits[row]
        self.limits_version += 1
        self.limits_stamp[row] = self.limits_version
        for bit in range(FLAG_BITS):
            limits[clearance_limit(1 << bit)] = 0 if flags & 1 << bit else 1
        limits[GPU_MEMORY_LIMIT] = self.gpu_memory[row]
        limits[free_limit(0) : free_limit(width) : 2] = free
        limits[capacity_limit(0) : capacity_limit(width) : 2] = np.maximum(alloc, free)

    def remove(self, name: str) -> None:
        """Forget a node; its row is reused later."""
        row = self.rows.pop(name, None)
        if row is None:
            return
        self.flags[row] = FLAG_UNKNOWN
        self._refresh_limits(row)
        self.names[row] = ""
        self._free_rows.append(row)
        self.mapping_version += 1

    def rows_for(self, names: Sequence[str]) -> npt.NDArray[np.intp]:
        """Rows of ``names`` in order; unknown names map to the sentinel row."""
        try:  # one C-level pass; a name we do not know falls back to the slower pass
            return np.fromiter(map(self.rows.__getitem__, names), np.intp, len(names))
        except KeyError:
            rows = self.rows
            return np.array([rows.get(name, UNKNOWN_ROW) for name in names], np.intp)

    def listed(self, names: Sequence[str]) -> Listed:
        """``names`` resolved: rows, and reply fragments per candidate."""
        return Listed(self, self.rows_for(names), names)

    def listed_raw(self, raw: bytes, decode: Callable[[bytes], Sequence[str]]) -> Listed:
        """:meth:`listed` for the names JSON array ``raw`` (``decode`` reads it), remembered by
        its bytes until a name gains or loses its row: kube-scheduler sends the same list pod
        after pod while the cluster is unchanged, and hashing it costs a fraction of resolving
        its names one by one."""
        known = self._lists.get(raw)
        if known is not None and known[0] == self.mapping_version:
            self._lists.move_to_end(raw)
            return known[1]
        listed = self.listed(decode(raw))
        self.remember(raw, listed)
        return listed

    def remember(self, raw: bytes, listed: Listed) -> None:
        """Serve the names JSON array ``raw`` from ``listed`` (resolved against the current rows)
        until a name gains or loses its row. A filter's kept nodes are remembered so: they are
        the list kube-scheduler sends to prioritize next, byte for byte."""
        self._lists[raw] = (self.mapping_version, listed)
        self._lists.move_to_end(raw)
        if len(self._lists) > LISTS_KEPT:
            self._lists.popitem(last=False)

    def limits_of(self, listed: Listed) -> IntArray | None:
        """The ``limits`` rows of ``listed``'s candidates (node-major; read-only for callers),
        or None on the list's first use: most lists are never seen again, and the caller's
        scratch buffer serves those without a fresh allocation.

        From its second use a list keeps its own copy, and later uses re-gather only the rows
        written since (a bind changes one or two). Called from the thread that writes the
        table (the event loop), like every reader of the snapshot.
        """
        gathered = listed.gathered
        if gathered.values is None:
            if gathered.version < 0:
                gathered.version = 0  # seen once
                return None
            gathered.values = self.limits[listed.rows]
        elif gathered.version != self.limits_version:
            stale = np.flatnonzero(self.limits_stamp[listed.rows] > gathered.version)
            gathered.values[stale] = self.limits[listed.rows[stale]]
        gathered.version = self.limits_version
        return gathered.values
