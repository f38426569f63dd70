"""The shapes every predicate and score component shares."""

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
class Predicate:
    """A named filter rule.

    ``check`` evaluates all candidates at once and returns None when the rule cannot fail for
    this pod. ``reason`` is the wire reason, the same text for every node that fails (so
    kube-scheduler's "0/N nodes are available: ..." event counts them together). ``explain``
    says in detail why node ``i`` fails, for /explain.
    """

    name: str
    check: Callable[[PodDemand, Candidates], Check | None]
    reason: Callable[[PodDemand], str]
    explain: Callable[[PodDemand, Candidates, int], str]


@dataclass(frozen=True, slots=True)
class ScoreComponent:
    """A named score component: a value in [0, 1] per candidate, higher is better."""

    name: str
    score: Callable[[PodDemand, Candidates], FloatArray]
