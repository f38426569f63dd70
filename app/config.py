"""Configuration: one YAML file (``--config``), validated by pydantic, overridable by env.

Environment variables override the file: ``PLACEMENT_EXTENDER_<SECTION>__<KEY>``, e.g.
``PLACEMENT_EXTENDER_BIND__BUDGET_SECONDS=2``. Every default is documented in the README.
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
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreWeights(_Section):
    """Relative weights of the score components inside one GPU-preference band."""

    pool_priority: float = Field(1.0, ge=0)
    fit: float = Field(2.0, ge=0)
    affinity: float = Field(2.0, ge=0)
    gpu_preference: float = Field(4.0, ge=0)
    """Used only when ``scoring.gpu_preference_dominates`` is false."""


class PodClassScoring(_Section):
    """How one class of pods (CPU-only or GPU) is scored."""

    fit: Literal["binpack", "spread"] = "binpack"
    weights: ScoreWeights = ScoreWeights()


class Scoring(_Section):
    gpu_preference_dominates: bool = True
    """A more-preferred GPU type always scores above a less-preferred one."""
    cpu_pods: PodClassScoring = PodClassScoring()
    gpu_pods: PodClassScoring = PodClassScoring(weights=ScoreWeights(affinity=0.0))


class Policy(_Section):
    gpu_nodes_for_gpu_pods_only: bool = True
    """CPU-only pods do not land on nodes that have GPUs."""


class Server(_Section):
    host: str = "0.0.0.0"
    port: int = Field(8888, ge=1, le=65535)
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    """Larger request bodies get HTTP 413 (full-nodes mode sends ~3 KB per node)."""
    read_timeout_seconds: float = Field(5.0, gt=0)
    """A hot verb's body must arrive within this (else 408): a stalled client holds nothing.
    kube-scheduler's httpTimeout (5 s) has given up on the call by then anyway."""
    shutdown_delay_seconds: float = Field(0.0, ge=0)
    """After SIGTERM, /readyz answers 503 and the verbs are still served this long before the
    listener closes (the chart uses a preStop sleep instead)."""
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
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
    explain: bool = True
    """Serve POST /explain (per-node detail of the cluster, for operators)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

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
    backoff_max_seconds: float = Field(0.4, gt=0)
    request_timeout_seconds: float = Field(1.0, gt=0)
    reserve_ahead: int = Field(4, ge=0, le=64)
    """A reservation write also reserves the node for up to this many pending pods of the same
    workload (namespace, container ID and requests), which then bind without a write; 0 turns
    it off (see app.commit.ahead)."""
    reserve_ahead_ttl_seconds: float = Field(30.0, gt=0)
    """How long an entry reserved ahead holds its room if its pod is not bound by then. An entry
    is used only while more than budget_seconds + 10 s of this is left."""


class Kube(_Section):
    kubeconfig: str | None = None
    """Path to a kubeconfig; unset means in-cluster, then the default kubeconfig."""
    resync_backoff_max_seconds: float = Field(30.0, gt=0)
    watch_timeout_seconds: int = Field(300, ge=1)
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
    )

    prefix: str = DEFAULT_PREFIX
    gpu_resource: str = DEFAULT_GPU_RESOURCE
    gpu_product_aliases: dict[str, str] = Field(default_factory=dict)
    """Merged over the built-in GFD product table."""
    policy: Policy = Policy()
    scoring: Scoring = Scoring()
    server: Server = Server()
    bind: Bind = Bind()
    kube: Kube = Kube()

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
