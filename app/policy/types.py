"""The shapes every predicate and score component shares.

A predicate states *how* it tests the candidates, as one or more tests of three forms, so the
engine can run all tests of a form together (one numpy operation for many predicates) while each
predicate keeps its own name, reason and explanation:

- :class:`Shortfall`: a node amount below what the pod needs (resource fit, GPU memory);
- :class:`Flagged`: a yes/no node fact the pod minds (unknown, unreadable, spot, ...);
- :class:`Custom`: anything else, as a function over all candidates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.state.table import BoolArray

FloatArray = npt.NDArray[np.float64]


class Check(NamedTuple):
    """One predicate's verdict over all candidates (a tuple: built per predicate per request).

    ``unresolvable`` marks failures preemption cannot fix (kube-scheduler's
    ``FailedAndUnresolvableNodes``): a wrong GPU type, pool or capacity class.
    """

    failed: BoolArray
    unresolvable: BoolArray | bool


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Fails where the node's ``limits[column]`` is below ``need(pod)``; a need ≤ 0 cannot fail.

    With ``capacity`` (another ``limits`` column), a failure is unresolvable where the need
    exceeds that column too; without it, every failure is unresolvable.
    """

    column: int
    need: Callable[[PodDemand], int]
    capacity: int | None = None


@dataclass(frozen=True, slots=True)
class Flagged:
    """Fails where the node has ``flag`` (a table ``FLAG_*`` bit) and ``minds(pod)``."""

    flag: int
    minds: Callable[[PodDemand], bool]
    unresolvable: bool


@dataclass(frozen=True, slots=True)
class Custom:
    """Fails as ``check`` says; ``check`` returns None when it cannot fail for this pod."""

    check: Callable[[PodDemand, Candidates], Check | None]


Test = Shortfall | Flagged | Custom


@dataclass(frozen=True, slots=True)
class Predicate:
    """A named filter rule.

    ``test`` says which candidates fail (see :meth:`check`). ``reason`` is the wire reason, the
    same text for every node that fails (so kube-scheduler's "0/N nodes are available: ..."
    event counts them together). ``explain`` says in detail why node ``i`` fails, for /explain.
    """

    name: str
    test: Test | tuple[Test, ...]
    """A node fails the predicate where any of its tests fails."""
    reason: Callable[[PodDemand], str]
    explain: Callable[[PodDemand, Candidates, int], str]

    @property
    def tests(self) -> tuple[Test, ...]:
        return self.test if isinstance(self.test, tuple) else (self.test,)

    def check(self, pod: PodDemand, nodes: Candidates) -> Check | None:
        """This predicate alone over all candidates; None when it cannot fail for ``pod``.

        The engine evaluates the same tests in bulk (:mod:`app.policy.codes`).
        """
        checks = [c for c in (_check(t, pod, nodes) for t in self.tests) if c is not None]
        if len(checks) <= 1:
            return checks[0] if checks else None
        failed = np.logical_or.reduce([c.failed for c in checks])
        if all(c.unresolvable is True for c in checks):
            return Check(failed, True)
        return Check(failed, np.logical_or.reduce([c.failed & c.unresolvable for c in checks]))


def _check(test: Test, pod: PodDemand, nodes: Candidates) -> Check | None:
    if isinstance(test, Shortfall):
        need = test.need(pod)
        if need <= 0:
            return None
        failed = nodes.limit(test.column) < need
        hard = True if test.capacity is None else nodes.limit(test.capacity) < need
        return Check(failed, hard)
    if isinstance(test, Flagged):
        if not test.minds(pod):
            return None
        return Check(nodes.flagged(test.flag), test.unresolvable)
    return test.check(pod, nodes)


@dataclass(frozen=True, slots=True)
class ScoreComponent:
    """A named score component: a value in [0, 1] per candidate, higher is better."""

    name: str
    score: Callable[[PodDemand, Candidates], FloatArray]
