"""Columnar node table: one row per node, numpy columns the policy evaluates in bulk.

Row 0 is a sentinel for names the extender does not know, so a request's node names map to rows
with one C-level pass (``rows_for``) and unknown names need no special case in the predicates.
Rows of deleted nodes are reused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from app.state.records import NodeFacts
from app.wire.codec import encode as encode_json

UNKNOWN_ROW = 0

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


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


class NodeTable:
    """Per-node facts as numpy columns, updated row by row.

    Resource matrices are resource-major (``free[column]`` is one contiguous array over rows),
    so a predicate gathers only the resource it checks. ``free`` is kept current on every write:
    allocatable − used − reserved.
    """

    _COLUMNS = (
        "alloc", "used", "reserved", "free", "gpu_type", "gpu_memory", "pool", "pool_only",
        "pool_priority", "preemptible", "valid", "known", "name_hash", "json_name", "host_prefix",
    )  # fmt: skip

    def __init__(self, resources: Sequence[str], gpu_resource: str, capacity: int = 64) -> None:
        self.resources = tuple(resources)
        self.gpu_column = self.resources.index(gpu_resource)
        self.rows: dict[str, int] = {}
        self.names: list[str] = [""]
        self.gpu_types = Interner()
        self.pools = Interner()
        self._free_rows: list[int] = []
        self._allocate(max(capacity, 2))
        self.json_name[UNKNOWN_ROW] = b'""'

    def _allocate(self, capacity: int) -> None:
        width = len(self.resources)
        self.alloc: IntArray = np.zeros((width, capacity), np.int64)
        self.used: IntArray = np.zeros((width, capacity), np.int64)
        self.reserved: IntArray = np.zeros((width, capacity), np.int64)
        self.free: IntArray = np.zeros((width, capacity), np.int64)
        self.gpu_type = np.zeros(capacity, np.int32)
        self.gpu_memory: IntArray = np.zeros(capacity, np.int64)
        self.pool = np.zeros(capacity, np.int32)
        self.pool_only: BoolArray = np.zeros(capacity, np.bool_)
        self.pool_priority: IntArray = np.zeros(capacity, np.int64)
        self.preemptible: BoolArray = np.zeros(capacity, np.bool_)
        self.valid: BoolArray = np.zeros(capacity, np.bool_)
        self.known: BoolArray = np.zeros(capacity, np.bool_)
        self.name_hash = np.zeros(capacity, np.uint64)
        # Pre-encoded JSON fragments, so replies are joined from bytes instead of encoded per node.
        self.json_name: npt.NDArray[np.object_] = np.full(capacity, b"", object)
        self.host_prefix: npt.NDArray[np.object_] = np.full(capacity, b"", object)

    def _grow(self) -> None:
        previous = {column: getattr(self, column) for column in self._COLUMNS}
        count = self.known.shape[0]
        self._allocate(count * 2)
        for column, values in previous.items():
            getattr(self, column)[..., :count] = values

    @property
    def size(self) -> int:
        """Number of rows in use, including the sentinel and free rows."""
        return len(self.names)

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
                if row >= self.known.shape[0]:
                    self._grow()
                self.names.append(facts.name)
            self.rows[facts.name] = row
            self.used[:, row] = 0
            self.reserved[:, row] = 0
            self.json_name[row] = encode_json(facts.name)
            self.host_prefix[row] = b'{"Host":' + self.json_name[row] + b',"Score":'
        self.alloc[:, row] = self.vector(facts.allocatable)
        self._refresh_free(row)
        self.gpu_type[row] = self.gpu_types.code(facts.gpu_type)
        self.gpu_memory[row] = facts.gpu_memory_mib
        self.pool[row] = self.pools.code(facts.pool)
        self.pool_only[row] = facts.pool_only
        self.pool_priority[row] = facts.pool_priority
        self.preemptible[row] = facts.preemptible
        self.valid[row] = not facts.problems
        self.known[row] = True
        self.name_hash[row] = facts.name_hash
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

    def remove(self, name: str) -> None:
        """Forget a node; its row is reused later."""
        row = self.rows.pop(name, None)
        if row is None:
            return
        self.known[row] = False
        self.valid[row] = False
        self.names[row] = ""
        self._free_rows.append(row)

    def rows_for(self, names: Sequence[str]) -> npt.NDArray[np.intp]:
        """Rows of ``names`` in order; unknown names map to the sentinel row."""
        try:  # one C-level pass; a name we do not know falls back to the slower pass
            return np.fromiter(map(self.rows.__getitem__, names), np.intp, len(names))
        except KeyError:
            rows = self.rows
            return np.array([rows.get(name, UNKNOWN_ROW) for name in names], np.intp)
