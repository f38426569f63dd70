"""The pod and node contract: every label, annotation and resource name the extender reads.

One place defines each key; the README's contract table mirrors this module.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "placement-extender.io/"
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"

# NVIDIA GPU Feature Discovery labels.
GFD_PRODUCT_LABEL = "nvidia.com/gpu.product"
GFD_MEMORY_LABEL = "nvidia.com/gpu.memory"

# Well-known labels that mark spot / preemptible capacity, with the value that means "spot".
SPOT_LABELS: dict[str, str] = {
    "karpenter.sh/capacity-type": "spot",
    "cloud.google.com/gke-spot": "true",
    "cloud.google.com/gke-preemptible": "true",
    "eks.amazonaws.com/capacityType": "SPOT",
    "kubernetes.azure.com/scalesetpriority": "spot",
}

ANY_GPU_TYPE = "any"
LEDGER_OF_NODE = "node"
"""Value of the ledger label on a node's ledger Lease (named after the node)."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Annotation and label keys under one configurable prefix."""

    prefix: str = DEFAULT_PREFIX

    # pod side
    @property
    def container_id(self) -> str:
        return self.prefix + "container-id"

    @property
    def gpu_types(self) -> str:
        return self.prefix + "gpu-types"

    @property
    def gpu_memory(self) -> str:
        return self.prefix + "gpu-memory"

    @property
    def pool(self) -> str:
        """Pod annotation/label naming its pool; also the node label naming the node's pool."""
        return self.prefix + "pool"

    @property
    def preemptible(self) -> str:
        """Pod annotation: tolerates preemptible nodes; node label: node is preemptible."""
        return self.prefix + "preemptible"

    # node side
    @property
    def gpu_type(self) -> str:
        return self.prefix + "gpu-type"

    @property
    def pool_only(self) -> str:
        return self.prefix + "pool-only"

    @property
    def pool_priority(self) -> str:
        return self.prefix + "pool-priority"

    @property
    def reservations(self) -> str:
        """Annotation of a node's ledger Lease carrying its in-flight reservations (see
        app.commit)."""
        return self.prefix + "reservations"

    @property
    def woken_at(self) -> str:
        """Annotation of the wake-up object: when a replica last rang it (Unix seconds; see
        app.commit.wake)."""
        return self.prefix + "woken-at"

    @property
    def ledger(self) -> str:
        """Label marking the Leases that carry node ledgers (value: :data:`LEDGER_OF_NODE`)."""
        return self.prefix + "ledger"

    @property
    def ledger_selector(self) -> str:
        """The label selector of the node ledger Leases."""
        return f"{self.ledger}={LEDGER_OF_NODE}"
