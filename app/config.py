"""Configuration: one YAML file (``--config``), validated by pydantic, overridable by env.

Environment variables override the file: ``PLACEMENT_EXTENDER_<SECTION>__<KEY>``, e.g.
``PLACEMENT_EXTENDER_BIND__BUDGET_SECONDS=2``. Every key is documented in
docs/configuration.md, which is generated from this model (``make docs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from app.contract import DEFAULT_GPU_RESOURCE, DEFAULT_PREFIX

# NVIDIA GPU Feature Discovery product names → our short GPU type. Extended/overridden by
# ``gpu_product_aliases`` in the config. Products not listed are normalised by rule (see state).
DEFAULT_GPU_PRODUCT_ALIASES: dict[str, str] = {
    "Tesla-T4": "T4",
    "NVIDIA-A10G": "A10G",
    "NVIDIA-A10": "A10",
    "NVIDIA-L4": "L4",
    "NVIDIA-L40S": "L40S",
    "Tesla-V100-SXM2-16GB": "V100",
    "Tesla-V100-SXM2-32GB": "V100-32",
    "NVIDIA-A100-SXM4-40GB": "A100",
    "NVIDIA-A100-PCIE-40GB": "A100",
    "NVIDIA-A100-SXM4-80GB": "A100-80",
    "NVIDIA-A100-80GB-PCIe": "A100-80",
    "NVIDIA-H100-80GB-HBM3": "H100",
    "NVIDIA-H100-PCIe": "H100",
    "NVIDIA-H200": "H200",
}


class _Section(BaseModel):
    # attribute docstrings become field descriptions: docs/configuration.md is generated from them
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ScoreWeights(_Section):
    """Relative weights of the score components inside one GPU-preference band."""

    pool_priority: float = Field(1.0, ge=0)
    """Weight of the node's pool priority (label ``pool-priority``, min–max scaled)."""
    fit: float = Field(2.0, ge=0)
    """Weight of the utilisation score (``fit``: binpack or spread)."""
    affinity: float = Field(2.0, ge=0)
    """Weight of container-ID affinity (rendezvous hashing: the same ID prefers the same nodes)."""
    gpu_preference: float = Field(4.0, ge=0)
    """Weight of the pod's GPU-type preference, used only when
    ``scoring.gpu_preference_dominates`` is false."""


class PodClassScoring(_Section):
    """How one class of pods (CPU-only or GPU) is scored."""

    fit: Literal["binpack", "spread"] = "binpack"
    """``binpack`` scores fuller nodes higher (after placement), ``spread`` emptier ones."""
    weights: ScoreWeights = ScoreWeights()
    """Relative weights of the score components."""


class Scoring(_Section):
    gpu_preference_dominates: bool = True
    """A more-preferred GPU type always scores above a less-preferred one (each preference level
    gets its own band of the 0..10 scale); false makes it a weighted component."""
    cpu_pods: PodClassScoring = PodClassScoring()
    """How pods that request no GPU are scored."""
    gpu_pods: PodClassScoring = PodClassScoring(weights=ScoreWeights(affinity=0.0))
    """How pods that request GPUs are scored."""


class Policy(_Section):
    gpu_nodes_for_gpu_pods_only: bool = True
    """CPU-only pods do not land on nodes that have GPUs."""


class Server(_Section):
    host: str = "0.0.0.0"
    """Address of ``port`` (every route). 127.0.0.1 lets only processes of the same pod or host
    call the verbs (the chart's default topology, beside kube-scheduler in its pod)."""
    port: int = Field(8888, ge=1, le=65535)
    """The extender port: the verbs, ``/explain``, ``/simulate`` (and the probes when
    ``probe_port`` is unset)."""
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Larger request bodies get HTTP 413 (full-nodes mode sends ~3 KB per node)."""
    read_timeout_seconds: float = Field(5.0, gt=0)
    """A hot verb's body must arrive within this (else 408): a stalled client holds nothing.
    kube-scheduler's httpTimeout (5 s) has given up on the call by then anyway."""
    shutdown_delay_seconds: float = Field(0.0, ge=0)
    """After SIGTERM, /readyz answers 503 and the verbs are still served this long before the
    listener closes (the chart uses a preStop sleep instead)."""
    tls_cert_file: str | None = None
    """Serve the extender port over HTTPS with this certificate (PEM); reloaded when it changes."""
    tls_key_file: str | None = None
    """The certificate's private key (PEM); set together with ``tls_cert_file``."""
    tls_client_ca_file: str | None = None
    """Require a client certificate signed by this CA (mutual TLS) on ``port``."""
    tls_reload_check_seconds: float = Field(1.0, gt=0, le=60)
    """How often the TLS files are checked for a new version (a renewed certificate, a new
    client CA), which new connections then use, without a restart."""
    http2: bool = True
    """With TLS, offer HTTP/2 (ALPN ``h2``) beside HTTP/1.1: kube-scheduler then sends every call
    over one connection instead of a TLS handshake for about every second pod. Plain HTTP is
    HTTP/1.1 only (kube-scheduler does not speak HTTP/2 without TLS)."""
    http2_max_concurrent_streams: int = Field(100, ge=1, le=1000)
    """Calls one HTTP/2 connection may have in flight (SETTINGS_MAX_CONCURRENT_STREAMS); a client
    wanting more opens another connection. Bounds what one connection can hold in memory."""
    http2_max_header_list_bytes: int = Field(64 * 1024, ge=4096, le=1024 * 1024)
    """Largest header list an HTTP/2 request may carry (SETTINGS_MAX_HEADER_LIST_SIZE)."""
    probe_port: int | None = Field(None, ge=1, le=65535)
    """Also serve /healthz, /readyz and /metrics (nothing else) over plain HTTP on this port."""
    probe_host: str | None = None
    """Address of ``probe_port``; unset means ``host``. With ``host: 127.0.0.1``, 0.0.0.0 (or
    ``::``) keeps the probes and /metrics reachable by kubelet and Prometheus on the pod's IP."""
    explain: bool = True
    """Serve POST /explain (per-node detail of the cluster, for operators)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level of the JSON log lines on stderr (``debug`` adds one line per decision)."""

    @model_validator(mode="after")
    def _tls_files_complete(self) -> Server:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("server.tls_cert_file and server.tls_key_file go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("server.tls_client_ca_file needs server.tls_cert_file/tls_key_file")
        if self.probe_port == self.port:
            raise ValueError("server.probe_port must differ from server.port")
        return self


class Bind(_Section):
    budget_seconds: float = Field(3.0, gt=0)
    """Total time one bind may take; must stay below kube-scheduler's httpTimeout (5 s)."""
    reservation_ttl_seconds: float = Field(60.0, gt=0)
    """A reservation counts until then unless its pod is seen bound; keep it longer than any
    realistic watch lag."""
    prune_bound_after_seconds: float = Field(10.0, ge=0)
    """Writers drop ledger entries of pods they have seen bound for this long (every replica's
    watch is expected to have delivered the pod by then); expired entries are dropped too."""
    backoff_initial_seconds: float = Field(0.01, gt=0)
    """First backoff after a reservation write met a conflict (full jitter, doubling)."""
    backoff_max_seconds: float = Field(0.4, gt=0)
    """Longest backoff between reservation attempts; must be below ``budget_seconds``."""
    request_timeout_seconds: float = Field(1.0, gt=0)
    """Timeout of one API call of a bind (always cut to what is left of the budget)."""
    reserve_ahead: int = Field(4, ge=0, le=64)
    """A reservation write also reserves the node for up to this many pending pods of the same
    workload (namespace, container ID and requests), which then bind without a write; 0 turns
    it off (docs/design.md, reserving ahead)."""
    tidy_interval_seconds: float = Field(15.0, ge=0)
    """A ledger nobody wrote for this long that holds an entry the next write would drop
    (expired, or of a pod settled) and that would otherwise outlive its expiry is pruned in a
    write of its own: no entry outlives its time to live and ledgers empty at rest; 0 turns it
    off (such entries then wait for the node's next bind). See docs/faults.md."""
    reserve_ahead_ttl_seconds: float = Field(30.0, gt=0)
    """How long an entry reserved ahead holds its room if its pod is not bound by then. An entry
    is used only while more than budget_seconds + 10 s of this is left."""


class Wake(_Section):
    """Waking kube-scheduler when room held by a reservation comes free without an API event it
    watches (an entry expired, was released or pruned, or belonged to a replica that died).
    kube-scheduler 1.36 retries a pod an extender refused only on a cluster event, or after its
    5-minute flush of unschedulable pods; see docs/faults.md."""

    enabled: bool = True
    """Ring the wake-up object when room frees; false leaves refused pods to kube-scheduler's
    own retries (minutes)."""
    min_interval_seconds: float = Field(1.0, gt=0, le=60)
    """At most one ring per replica per interval; a replica first waits a random part of it,
    and skips the ring when another replica rang after the room freed."""
    object_name: str = Field(
        "placement-extender-wake", max_length=253, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$"
    )
    """The CSIStorageCapacity in ``kube.ledger_namespace`` whose update is the ring (it reports
    no capacity, on no node, for no real storage class)."""


class Kube(_Section):
    kubeconfig: str | None = None
    """Path to a kubeconfig; unset means in-cluster, then the default kubeconfig."""
    resync_backoff_max_seconds: float = Field(30.0, gt=0)
    """Longest backoff before a dropped watch reconnects (jittered, from 0.2 s doubling)."""
    watch_timeout_seconds: int = Field(300, ge=1)
    """How long one watch request lasts before it is renewed (``timeoutSeconds``)."""
    ledger_namespace: str = Field("default", min_length=1)
    """Namespace of the ledger Leases (one per node, named after it); the chart sets the
    release's namespace."""


class Settings(BaseSettings):
    """The whole configuration. Construct with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="PLACEMENT_EXTENDER_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    prefix: str = DEFAULT_PREFIX
    """Prefix of every pod/node annotation and label the extender reads and writes."""
    gpu_resource: str = DEFAULT_GPU_RESOURCE
    """The extended resource that counts GPUs."""
    gpu_product_aliases: dict[str, str] = Field(default_factory=dict)
    """GFD product name → GPU type, merged over the built-in table (e.g.
    ``{"NVIDIA-A10G": "A10G"}``)."""
    policy: Policy = Policy()
    """Which nodes a pod may use at all."""
    scoring: Scoring = Scoring()
    """How the nodes that pass are ranked."""
    server: Server = Server()
    """Listeners, TLS, limits and shutdown."""
    bind: Bind = Bind()
    """The bind verb: reservations, their time to live, the time budget."""
    wake: Wake = Wake()
    """Waking kube-scheduler when reserved room frees without an API event (docs/faults.md)."""
    kube: Kube = Kube()
    """Reaching the API server and watching it."""

    @field_validator("prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, v: str) -> str:
        if not v.endswith("/"):
            raise ValueError("prefix must end with '/', e.g. 'placement-extender.io/'")
        return v

    @model_validator(mode="after")
    def _backoff_within_budget(self) -> Settings:
        if self.bind.backoff_max_seconds >= self.bind.budget_seconds:
            raise ValueError("bind.backoff_max_seconds must be below bind.budget_seconds")
        return self

    @property
    def all_gpu_aliases(self) -> dict[str, str]:
        return {**DEFAULT_GPU_PRODUCT_ALIASES, **self.gpu_product_aliases}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # env beats the file (passed as init kwargs by load_settings)
        return (env_settings, init_settings)


class ConfigError(ValueError):
    """The config file could not be read or did not validate."""


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the YAML config at ``path`` (optional), apply env overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config {path} must be a YAML mapping")
        data = loaded
    data.update(overrides)
    try:
        return Settings(**data)
    except ValueError as exc:
        raise ConfigError(f"invalid config{f' {path}' if path else ''}: {exc}") from exc
