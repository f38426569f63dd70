"""gpu_preference: the pod's first listed GPU type is best, the last is worst.

``rank`` is the position of the node's type in the pod's list (0 = most preferred); the
engine turns ranks into bands so a preferred type always outranks a less preferred one.
"""

from __future__ import annotations

import numpy as np

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import FloatArray, ScoreComponent
from app.state.table import IntArray

NAME = "gpu_preference"


def levels(pod: PodDemand) -> int:
    """How many preference levels the pod has (1 = no preference among nodes)."""
    return len(pod.gpu_types) if pod.wants_gpu and pod.gpu_types else 1


def rank(pod: PodDemand, nodes: Candidates) -> IntArray:
    """Preference rank per node; types not in the list get the worst rank."""
    count = levels(pod)
    ranks = np.full(len(nodes), count - 1, np.int64)
    if count > 1 and pod.gpu_types:
        for position, gpu_type in reversed(list(enumerate(pod.gpu_types))):
            code = nodes.table.gpu_types.lookup(gpu_type)
            ranks[nodes.gpu_type == code] = position
    return ranks


def score(pod: PodDemand, nodes: Candidates) -> FloatArray:
    count = levels(pod)
    if count == 1:
        return np.ones(len(nodes))
    return 1.0 - rank(pod, nodes) / (count - 1)


COMPONENT = ScoreComponent(NAME, score)
