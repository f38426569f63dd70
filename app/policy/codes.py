"""Failure codes: every predicate's verdict on a candidate, packed into one 64-bit integer.

A code has a bit for each way a candidate fails (0: it passes every predicate). Codes are
computed for all candidates in bulk, with a handful of numpy operations per request whatever the
number of predicates:

- :class:`~app.policy.types.Shortfall` and :class:`~app.policy.types.Flagged` predicates are
  columns of the table's ``limits`` (a flag as its 0/1 clearance, needed at 1 when the pod minds
  it). One comparison of the candidates' ``limits`` rows with the pod's needs gives a byte
  (0 or 1) per column; a row is a multiple of 8 columns, so it reads as whole 64-bit words, and
  ``word0 | word1 << 1 | ...`` puts column ``c`` at bit ``8 * (c % 8) + c // 8``.
- :class:`~app.policy.types.Custom` predicates get two spare bits each (failed, unresolvable).

Which predicates a code fails, and whether that is unresolvable, depends on the code alone, so
it is worked out once per distinct code (:meth:`CodeLayout.verdict`).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Custom, Flagged, Predicate, Shortfall
from app.state.table import BoolArray, IntArray, clearance_limit

CodeArray = npt.NDArray[np.uint64]

WORD = 8
"""Comparison bytes per 64-bit word."""
NOT_CHECKED = np.iinfo(np.int64).min
"""The need of a ``limits`` column the pod does not check: no value is below it."""
CLEARED = 1
"""The need of a flag's clearance column when the pod minds the flag."""
_VERDICT_CACHE = 4096


class Verdict(NamedTuple):
    """What a code means: the failed predicates and whether preemption could not help."""

    failed: tuple[int, ...]
    """Indices into the layout's predicates, in registry order."""
    unresolvable: bool


class _Bits(NamedTuple):
    """Where one test of predicate ``predicate`` shows in a code: ``failed`` is set when it
    fails, and ``hard`` (if not 0) too when that failure is unresolvable; ``always_hard``:
    every failure is."""

    predicate: int
    failed: int
    hard: int
    always_hard: bool


def limit_bit(column: int) -> int:
    """The code bit of ``limits`` column ``column`` (see the module docstring)."""
    return 1 << (WORD * (column % WORD) + column // WORD)


class _Scratch(threading.local):
    """Per-thread work buffers for :meth:`CodeLayout.codes`, reused from request to request.

    The gathered ``limits`` rows are the largest temporary of a call (128 bytes a candidate);
    allocating them afresh each call makes the allocator grow and trim the heap every request,
    and the page faults of regrowing it cost more than the gather. They never leave the call.
    """

    def __init__(self) -> None:
        self.limits: IntArray = np.empty((0, 0), np.int64)
        self.below: BoolArray = np.empty((0, 0), np.bool_)

    def buffers(self, rows: int, columns: int) -> tuple[IntArray, BoolArray]:
        if self.limits.shape[0] < rows or self.limits.shape[1] != columns:
            size = max(rows, 2 * self.limits.shape[0])
            self.limits = np.empty((size, columns), np.int64)
            self.below = np.empty((size, columns), np.bool_)
        return self.limits[:rows], self.below[:rows]


class CodeLayout:
    """The code bits of the registered predicates, for a table with ``limits`` columns."""

    def __init__(self, predicates: tuple[Predicate, ...], limits: int, unknown_flag: int) -> None:
        assert limits % WORD == 0 and limits // WORD < WORD, "limits rows are 1..7 words"
        self.predicates = predicates
        self._limits = limits
        self._words = limits // WORD
        spare = (bit for bit in range(WORD * WORD) if bit % WORD >= self._words)
        self._shortfalls: list[Shortfall] = []
        self._flagged: list[tuple[Flagged, int]] = []  # with its clearance column
        self._customs: list[tuple[Custom, int, int]] = []
        self._bits: list[_Bits] = []
        for index, predicate in enumerate(predicates):
            for test in predicate.tests:
                if isinstance(test, Flagged):
                    column = clearance_limit(test.flag)
                    self._flagged.append((test, column))
                    bits = _Bits(index, limit_bit(column), 0, test.unresolvable)
                elif isinstance(test, Shortfall):
                    self._shortfalls.append(test)
                    hard = 0 if test.capacity is None else limit_bit(test.capacity)
                    bits = _Bits(index, limit_bit(test.column), hard, test.capacity is None)
                else:
                    failed, hard = 1 << next(spare), 1 << next(spare)
                    self._customs.append((test, failed, hard))
                    bits = _Bits(index, failed, hard, False)
                self._bits.append(bits)
        taken = 0
        for bits in self._bits:
            assert not taken & (bits.failed | bits.hard), "predicates share code bits"
            taken |= bits.failed | bits.hard
        self._unknown = limit_bit(clearance_limit(unknown_flag))
        self._verdicts: dict[int, Verdict] = {}
        self._scratch = _Scratch()

    def needs(self, pod: PodDemand) -> list[int]:
        """What ``pod`` needs of each ``limits`` column."""
        needs = [NOT_CHECKED] * self._limits
        for flagged, column in self._flagged:
            if flagged.minds(pod):
                needs[column] = CLEARED
        for shortfall in self._shortfalls:
            need = shortfall.need(pod)
            if need > 0:
                needs[shortfall.column] = need
                if shortfall.capacity is not None:
                    needs[shortfall.capacity] = need
        return needs

    def codes(self, pod: PodDemand, nodes: Candidates, needs: IntArray | None = None) -> CodeArray:
        """Each candidate's failure code; ``needs``: :meth:`needs` of ``pod``, if known."""
        scratch, below = self._scratch.buffers(len(nodes), self._limits)
        limits = nodes.limit_rows(scratch)
        if needs is None:
            needs = np.array(self.needs(pod), np.int64)
        np.less(limits, needs, out=below)  # a byte per column
        words = below.view(np.uint64)
        codes: CodeArray = words[:, 0].copy()
        for word in range(1, self._words):
            codes |= words[:, word] << np.uint64(word)
        for custom, failed, hard in self._customs:
            check = custom.check(pod, nodes)
            if check is None:
                continue
            if check.unresolvable is True or check.unresolvable is False:
                bits = failed | hard if check.unresolvable else failed
                np.bitwise_or(codes, np.uint64(bits), out=codes, where=check.failed)
            else:
                np.bitwise_or(codes, np.uint64(failed), out=codes, where=check.failed)
                hard_failed = check.failed & check.unresolvable
                np.bitwise_or(codes, np.uint64(hard), out=codes, where=hard_failed)
        return codes

    def verdict(self, code: int) -> Verdict:
        """The meaning of ``code``. A node the snapshot does not know fails only for that, and
        resolvably (it may just not have been seen yet), whatever else its empty row fails."""
        found = self._verdicts.get(code)
        if found is None:
            if code & self._unknown:
                found = Verdict(self._failed_by(self._unknown), unresolvable=False)
            else:
                hard = any(b.always_hard or code & b.hard for b in self._bits if code & b.failed)
                found = Verdict(self._failed_by(code), hard)
            if len(self._verdicts) >= _VERDICT_CACHE:
                self._verdicts.clear()
            self._verdicts[code] = found
        return found

    def _failed_by(self, code: int) -> tuple[int, ...]:
        return tuple(sorted({bits.predicate for bits in self._bits if code & bits.failed}))
