"""What a pod asks for, read from its requests, annotations and labels (the pod contract)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from app.contract import ANY_GPU_TYPE, Keys
from app.state.records import annotation_or_label, stable_hash64
from app.state.table import IntArray


class PodAnnotationError(ValueError):
    """A pod annotation the extender cannot use; the message names the key and value."""

    def __init__(self, key: str, value: str, why: str) -> None:
        super().__init__(f"pod annotation {key}={value!r}: {why}")
        self.key = key
        self.value = value


@dataclass(frozen=True, slots=True)
class PodDemand:
    """A pod's placement demand. ``requests`` is in the node table's column order."""

    pod: str
    requests: IntArray
    gpu_count: int
    gpu_types: tuple[str, ...] | None
    """Accepted GPU types in order of preference; None means any type."""
    gpu_memory_mib: int
    pool: str | None
    preemptible: bool
    container_id: str
    container_hash: int

    @property
    def wants_gpu(self) -> bool:
        return self.gpu_count > 0

    @property
    def preferred_gpu_type(self) -> str | None:
        """The GPU type the pod prefers most: None for CPU pods, ``any`` when it names none."""
        if not self.wants_gpu:
            return None
        return self.gpu_types[0] if self.gpu_types else ANY_GPU_TYPE

    @property
    def shape(self) -> tuple[object, ...]:
        """Everything the predicates read of the pod: pods of one shape get the same needs and
        reasons (a predicate that reads another field must add it here)."""
        return (
            self.requests.tobytes(), self.gpu_types, self.gpu_memory_mib, self.pool,
            self.preemptible,
        )  # fmt: skip


def parse_demand(
    *,
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    requests: IntArray,
    gpu_count: int,
    keys: Keys,
) -> PodDemand:
    """Read the pod contract. Raises :class:`PodAnnotationError` for unusable values."""
    gpu_types: tuple[str, ...] | None = None
    raw_types = annotations.get(keys.gpu_types)
    if raw_types is not None:
        listed = tuple(t.strip() for t in raw_types.split(",") if t.strip())
        if not listed:
            raise PodAnnotationError(keys.gpu_types, raw_types, "lists no GPU type")
        if ANY_GPU_TYPE not in {t.lower() for t in listed}:
            gpu_types = listed

    gpu_memory = 0
    raw_memory = annotations.get(keys.gpu_memory)
    if raw_memory is not None:
        try:
            gpu_memory = int(raw_memory)
        except ValueError:
            raise PodAnnotationError(
                keys.gpu_memory, raw_memory, "must be a whole number of MiB"
            ) from None
        if gpu_memory < 0:
            raise PodAnnotationError(keys.gpu_memory, raw_memory, "must not be negative")

    raw_preemptible = annotations.get(keys.preemptible)
    if raw_preemptible not in (None, "true", "false"):
        raise PodAnnotationError(keys.preemptible, raw_preemptible, 'must be "true" or "false"')

    container_id = annotation_or_label(keys.container_id, annotations, labels)
    if not container_id:
        container_id = f"{namespace}/{name}"
    return PodDemand(
        pod=f"{namespace}/{name}",
        requests=requests,
        gpu_count=gpu_count,
        gpu_types=gpu_types,
        gpu_memory_mib=gpu_memory,
        pool=annotation_or_label(keys.pool, annotations, labels) or None,
        preemptible=raw_preemptible == "true",
        container_id=container_id,
        container_hash=stable_hash64(container_id),
    )
