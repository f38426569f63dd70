"""affinity: container-ID affinity by rendezvous (highest-random-weight) hashing.

Each node's weight for a container ID is mix64(H(node) xor H(container-id)), where H is the
first 64 bits of sha256 (precomputed per node when the node changes, per pod once per request)
and mix64 is the splitmix64 finaliser, a bijection with full avalanche. The same container ID
therefore prefers the same nodes on every call, and different IDs spread evenly; a node leaving
moves only the IDs that preferred it.

The score is 1 for the ID's home node — the candidate with the highest weight — and 0 for the
rest. A graded score (weight / 2^64) was tried first: through a real kube-scheduler its part of
the 0..10 scale rounded to the same integer on most candidates, so kube-scheduler's own
tie-breaking (least allocated) spread one ID over several nodes. When the home node is full it is
not a candidate, and the ID's next node by weight takes its place, the same for every replica.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import FloatArray, ScoreComponent

NAME = "affinity"


def mix64(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser, vectorised (uint64 arithmetic wraps, as intended)."""
    z = values.copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def weights(pod: PodDemand, nodes: Candidates) -> npt.NDArray[np.uint64]:
    """The rendezvous weight of each node for the pod's container ID."""
    return mix64(nodes.name_hash ^ np.uint64(pod.container_hash))


def score(pod: PodDemand, nodes: Candidates) -> FloatArray:
    """1.0 for the home node among the candidates, 0.0 elsewhere."""
    result: FloatArray = np.zeros(len(nodes))
    if len(nodes):
        result[int(np.argmax(weights(pod, nodes)))] = 1.0
    return result


COMPONENT = ScoreComponent(NAME, score)
