"""pool_priority: nodes of higher-priority pools first (min–max scaled over the candidates)."""

from __future__ import annotations

import numpy as np

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import FloatArray, ScoreComponent

NAME = "pool_priority"


def score(pod: PodDemand, nodes: Candidates) -> FloatArray:
    priority = nodes.pool_priority
    if len(priority) == 0:
        return np.zeros(0)
    low, high = int(priority.min()), int(priority.max())
    if low == high:
        return np.zeros(len(priority))
    return (priority - low) / (high - low)


COMPONENT = ScoreComponent(NAME, score)
