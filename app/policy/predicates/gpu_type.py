"""gpu_type: a GPU pod lands only on a node whose GPU type it accepts."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from app.policy.candidates import Candidates
from app.policy.demand import PodDemand
from app.policy.types import Check, Custom, Predicate

NAME = "GPUType"


def check(pod: PodDemand, nodes: Candidates) -> Check | None:
    if not pod.wants_gpu or pod.gpu_types is None:
        return None
    known_types = nodes.table.gpu_types
    accepted = {known_types.lookup(t) for t in pod.gpu_types}
    # Nodes without GPUs already fail Fit/<gpu resource>; only nodes with GPUs are judged here.
    # ``typed_gpus`` is 0 for the others and 1 + the type code for them.
    rejected = np.array([False] + [c not in accepted for c in range(len(known_types.values))])
    return Check(failed=rejected[nodes.typed_gpus], unresolvable=True)


def reason(pod: PodDemand) -> str:
    return _not_in(pod.gpu_types or ())


@lru_cache(maxsize=256)
def _not_in(types: tuple[str, ...]) -> str:
    return f"gpu type not in [{','.join(types)}]"


def explain(pod: PodDemand, nodes: Candidates, i: int) -> str:
    return f"gpu type {nodes.gpu_type_name(i)} not in [{','.join(pod.gpu_types or ())}]"


PREDICATE = Predicate(NAME, Custom(check), reason, explain)
