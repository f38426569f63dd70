"""fit: how full the node would be with the pod placed.

utilisation = mean over the pod's requested resources (CPU, memory and, for GPU pods, GPUs) of
(allocatable − free + request) / allocatable. ``binpack`` scores utilisation (fullest node that
fits first: fewer, fuller nodes); ``spread`` scores 1 − utilisation.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import FloatArray, ScoreComponent
from app.wire.quantity import CPU

NAME = "fit"
MEMORY = "memory"


def utilisation(pod: PodDemand, nodes: Candidates) -> FloatArray:
    """Mean fraction of the considered resources in use once the pod is placed, in [0, 1]."""
    resources = nodes.table.resources
    columns = [resources.index(CPU), resources.index(MEMORY)]
    if pod.wants_gpu:
        columns.append(nodes.table.gpu_column)
    total = np.zeros(len(nodes))
    counted = np.zeros(len(nodes))
    for column in columns:
        alloc = nodes.alloc(column)
        taken = alloc - nodes.free(column) + pod.requests[column]
        has = alloc > 0
        total += np.where(has, taken / np.maximum(alloc, 1), 0.0)
        counted += has
    result: FloatArray = np.clip(total / np.maximum(counted, 1), 0.0, 1.0)
    return result


def component(mode: Literal["binpack", "spread"]) -> ScoreComponent:
    """The fit component in the given mode."""
    if mode == "binpack":
        return ScoreComponent(NAME, utilisation)
    return ScoreComponent(NAME, lambda pod, nodes: 1.0 - utilisation(pod, nodes))
