"""The candidate nodes of one request, as column slices gathered on first use."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

import numpy as np
import numpy.typing as npt

from app.state.records import NodeFacts
from app.state.table import (
    FLAG_UNKNOWN,
    UNKNOWN_ROW,
    BoolArray,
    FlagArray,
    IntArray,
    Listed,
    NodeTable,
    capacity_limit,
    free_limit,
)


class Candidates:
    """Columns of ``table`` restricted to ``rows`` (request order, duplicates allowed).

    With ``listed`` (the request's node list, whose rows these are), per-list state the table
    keeps is used instead of gathering afresh. ``returned`` (row → amounts) is added to those
    rows' free amounts: the pod's own reservations, which hold nothing against it, and victims
    of a preemption; less the room nominated pods hold for the pod (negative amounts)."""

    def __init__(
        self,
        table: NodeTable,
        rows: npt.NDArray[np.intp],
        facts: Mapping[str, NodeFacts],
        listed: Listed | None = None,
        returned: Mapping[int, IntArray] | None = None,
    ) -> None:
        self.table = table
        self.rows = rows
        self.facts = facts
        self.listed = listed
        self._free: dict[int, IntArray] = {}
        self._alloc: dict[int, IntArray] = {}
        # candidate positions whose free room changes, and by how much (one row each)
        self._at, self._by = _positions(table, rows, returned or {})

    def __len__(self) -> int:
        return len(self.rows)

    def name(self, i: int) -> str:
        return self.table.names[int(self.rows[i])] if self.rows[i] != UNKNOWN_ROW else "?"

    def facts_of(self, i: int) -> NodeFacts | None:
        return self.facts.get(self.name(i))

    # ---- yes/no facts ----------------------------------------------------------------------

    @cached_property
    def flags(self) -> FlagArray:
        """The table's ``FLAG_*`` bits per candidate."""
        return self.table.flags[self.rows]

    def flagged(self, flag: int) -> BoolArray:
        """Whether each candidate has ``flag``."""
        has: BoolArray = (self.flags & flag) != 0
        return has

    def unknown_positions(self) -> npt.NDArray[np.intp]:
        """Positions of the candidates the snapshot does not know: read off the request's
        list when there is one (it names them), else off the flags."""
        if self.listed is not None and self.listed.rows is self.rows:
            return self.listed.unknown_positions
        return np.flatnonzero(self.flagged(FLAG_UNKNOWN))

    @cached_property
    def known(self) -> BoolArray:
        return ~self.flagged(FLAG_UNKNOWN)

    # ---- amounts ---------------------------------------------------------------------------

    def limit_rows(self, scratch: IntArray) -> IntArray:
        """The candidates' ``limits`` rows (read-only): the list's own copy, or gathered into
        ``scratch`` (``len(self)`` rows)."""
        kept = None if self.listed is None else self.table.limits_of(self.listed)
        if kept is not None and not len(self._at):
            return kept
        if kept is not None:
            np.copyto(scratch, kept)
        else:
            np.take(self.table.limits, self.rows, axis=0, out=scratch, mode="clip")  # valid rows
        if len(self._at):
            self._return(scratch, self._at)
        return scratch

    def limit(self, column: int) -> IntArray:
        """One ``limits`` column over the candidates (the engine gathers whole rows at once)."""
        values: IntArray = self.table.limits[self.rows, column]
        if len(self._at):
            changed = self.table.limits[self.rows[self._at]]
            self._return(changed, np.arange(len(self._at)))
            values[self._at] = changed[:, column]
        return values

    def _return(self, limits: IntArray, at: npt.NDArray[np.intp]) -> None:
        """Add the changes to the free amounts (and capacities) of ``limits`` rows ``at``."""
        width = len(self.table.resources)
        free_columns = np.arange(free_limit(0), free_limit(width), 2)
        capacity_columns = np.arange(capacity_limit(0), capacity_limit(width), 2)
        free = limits[at[:, None], free_columns] + self._by
        limits[at[:, None], free_columns] = free
        capacity = limits[at[:, None], capacity_columns]
        limits[at[:, None], capacity_columns] = np.maximum(capacity, free)

    def free(self, column: int) -> IntArray:
        """Free amount of resource ``column`` per candidate."""
        found = self._free.get(column)
        if found is None:
            found = self._free[column] = self.table.free[column][self.rows]
            if len(self._at):
                found[self._at] += self._by[:, column]
        return found

    def amounts(self, columns: IntArray) -> tuple[IntArray, IntArray]:
        """Allocatable and free amounts of the resources ``columns`` (one row each) per
        candidate: two gathers for all of them, where :meth:`alloc` and :meth:`free` take one
        resource each."""
        rows = self.rows
        alloc: IntArray = self.table.alloc[columns[:, None], rows]
        free: IntArray = self.table.free[columns[:, None], rows]
        if len(self._at):
            free[:, self._at] += self._by[:, columns].T
        return alloc, free

    def alloc(self, column: int) -> IntArray:
        """Allocatable amount of resource ``column`` per candidate."""
        found = self._alloc.get(column)
        if found is None:
            found = self._alloc[column] = self.table.alloc[column][self.rows]
        return found

    @cached_property
    def gpu_count(self) -> IntArray:
        return self.alloc(self.table.gpu_column)

    # ---- categories and scores' inputs ------------------------------------------------------

    @cached_property
    def gpu_type(self) -> npt.NDArray[np.int32]:
        return self.table.gpu_type[self.rows]

    @cached_property
    def typed_gpus(self) -> npt.NDArray[np.int32]:
        return self.table.typed_gpus[self.rows]

    @cached_property
    def gpu_memory(self) -> IntArray:
        return self.table.gpu_memory[self.rows]

    @cached_property
    def pool(self) -> npt.NDArray[np.int32]:
        return self.table.pool[self.rows]

    @cached_property
    def pool_priority(self) -> IntArray:
        return self.table.pool_priority[self.rows]

    @cached_property
    def name_hash(self) -> npt.NDArray[np.uint64]:
        return self.table.name_hash[self.rows]

    def gpu_type_name(self, i: int) -> str:
        return self.table.gpu_types.values[int(self.gpu_type[i])] or "none"

    def pool_name(self, i: int) -> str:
        return self.table.pools.values[int(self.pool[i])]


_SCANNED_UP_TO = 4
"""Adjusted rows up to which each is found by a scan of the candidates; beyond, by one lookup."""


def _positions(
    table: NodeTable, rows: npt.NDArray[np.intp], adjusted: Mapping[int, IntArray]
) -> tuple[npt.NDArray[np.intp], IntArray]:
    """The candidate positions whose row is in ``adjusted``, and their amounts (one row each)."""
    width = len(table.resources)
    if not adjusted:
        return np.zeros(0, np.intp), np.zeros((0, width), np.int64)
    keys = list(adjusted)
    if len(keys) <= _SCANNED_UP_TO:
        found = [(int(i), k) for k, row in enumerate(keys) for i in np.flatnonzero(rows == row)]
        at = np.array([i for i, _ in found], np.intp)
        which = np.array([k for _, k in found], np.intp)
    else:
        slot = np.full(table.size, -1, np.intp)
        slot[keys] = np.arange(len(keys))
        hits = slot[rows]
        at = np.flatnonzero(hits >= 0)
        which = hits[at]
    amounts = np.array([adjusted[k] for k in keys], np.int64).reshape(len(keys), width)
    return at, amounts[which]
