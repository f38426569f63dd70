"""fit: how full the node would be with the pod placed.

utilisation = mean over the pod's requested resources (CPU, memory and, for GPU pods, GPUs) of
(allocatable − free + request) / allocatable. ``binpack`` scores utilisation (fullest node that
fits first: fewer, fuller nodes); ``spread`` scores 1 − utilisation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import FloatArray, ScoreComponent
from app.state.table import IntArray
from app.wire.quantity import CPU

NAME = "fit"
MEMORY = "memory"


def utilisation(pod: PodDemand, nodes: Candidates) -> FloatArray:
    """Mean fraction of the considered resources in use once the pod is placed, in [0, 1]."""
    table = nodes.table
    columns = _columns(table.resources, table.gpu_column, pod.wants_gpu)
    alloc, free = nodes.amounts(columns)
    taken = alloc - free
    taken += pod.requests[columns][:, None]
    has = alloc > 0
    fractions = np.true_divide(taken, np.maximum(alloc, 1))
    fractions *= has  # 0 where the node has none of the resource
    # summed resource by resource down axis 0: the floats of a loop over the resources
    result: FloatArray = fractions.sum(axis=0)
    result /= np.maximum(has.sum(axis=0), 1)
    np.minimum(np.maximum(result, 0.0, out=result), 1.0, out=result)  # np.clip, without its cost
    return result


@lru_cache(maxsize=16)
def _columns(resources: tuple[str, ...], gpu_column: int, wants_gpu: bool) -> IntArray:
    """The table columns of the resources the fit counts: CPU, memory, and GPUs for GPU pods."""
    columns = [resources.index(CPU), resources.index(MEMORY)]
    if wants_gpu:
        columns.append(gpu_column)
    return np.array(columns, np.intp)


def component(mode: Literal["binpack", "spread"]) -> ScoreComponent:
    """The fit component in the given mode."""
    if mode == "binpack":
        return ScoreComponent(NAME, utilisation)
    return ScoreComponent(NAME, lambda pod, nodes: 1.0 - utilisation(pod, nodes))
