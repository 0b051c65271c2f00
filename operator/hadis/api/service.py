"""The ``HadisService`` custom resource (hadis.io/v1alpha1): spec and status."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from hadis.api.allocation import Allocation, GpuPool, PolicyName
from hadis.api.base import ApiModel
from hadis.api.profile import NAME_PATTERN

API_GROUP = "hadis.io"
API_VERSION = "v1alpha1"
KIND = "HadisService"
DEFAULT_PROFILE = "hadis-paper-l40s"


class VariantSpec(ApiModel):
    """A variant to serve. ``name`` must be a variant of the profile."""

    name: str = Field(pattern=NAME_PATTERN)
    model: str | None = Field(None, description="hub id or path of the weights; default: the profile's")
    engine: Literal["diffusers", "emulated"] | None = Field(None, description="override spec.engine")
    unet_checkpoint: str | None = Field(
        None,
        min_length=1,
        description="a UNet .safetensors state dict loaded over the model's UNet (SDXL-Lightning)",
    )


class DiscriminatorSpec(ApiModel):
    """The light workers' discriminator: a saved CLIP model directory and the MLP head's state dict."""

    clip: str = Field(min_length=1, description="CLIP model + image processor directory (save_pretrained)")
    head: str = Field(min_length=1, description="the head's state dict (.safetensors or .pt)")


class PairSpec(ApiModel):
    light: str = Field(pattern=NAME_PATTERN)
    heavy: str = Field(pattern=NAME_PATTERN)


class AllocationSettings(ApiModel):
    interval_seconds: float = Field(50.0, ge=1, description="re-allocate every this many seconds")
    ewma_alpha: float = Field(0.5, gt=0, le=1, description="weight of the newest demand sample")
    over_provisioning: float = Field(1.05, ge=1, le=10, description="demand estimate multiplier")
    reconfiguration_cost: float = Field(0.0, ge=0, description="FID-equivalent penalty per GPU moved")
    solver_time_limit_seconds: float = Field(5.0, gt=0, le=300)


class ConfigMapKeyRef(ApiModel):
    name: str = Field(min_length=1)
    key: str = Field("profile.json", min_length=1)


class ProfileRef(ApiModel):
    """Either a profile shipped with HADIS (``builtin``) or one stored in a ConfigMap."""

    builtin: str | None = DEFAULT_PROFILE
    config_map: ConfigMapKeyRef | None = None
    time_scale: float = Field(1.0, gt=0, description="multiply every profiled latency (emulation runs)")

    @model_validator(mode="after")
    def _one_source(self) -> ProfileRef:
        if self.config_map is not None and self.builtin not in (None, DEFAULT_PROFILE):
            raise ValueError("set either builtin or configMap, not both")
        if self.config_map is None and self.builtin is None:
            raise ValueError("set builtin or configMap")
        return self


class MetricsSource(ApiModel):
    prometheus_url: str = Field("http://prometheus-operated.monitoring.svc:9090", pattern=r"^https?://")
    rate_window: str = Field("1m", pattern=r"^[0-9]+(ms|s|m|h)$", description="PromQL rate() window")
    timeout_seconds: float = Field(5.0, gt=0, le=60)


#: a Secret's name (a DNS subdomain) and a key in its data (what the API server accepts in both)
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"


class SecretKeyRef(ApiModel):
    """A key of a Secret in the HadisService's namespace. The operator never reads it: the kubelet
    mounts it into the pod (so the operator needs no rights on Secrets)."""

    name: str = Field(pattern=SECRET_NAME_PATTERN, max_length=253, description="the Secret's name")
    key: str = Field(
        "api-keys",
        pattern=SECRET_KEY_PATTERN,
        max_length=253,
        description="the key holding the value (not . or ..)",
    )

    @field_validator("key")
    @classmethod
    def _not_a_directory(cls, key: str) -> str:
        if key in (".", ".."):
            raise ValueError(f"{key!r} is not a file name (the API server refuses it as a Secret key)")
        return key


class GatewaySettings(ApiModel):
    replicas: int = Field(
        1,
        ge=1,
        description="gateway pods behind the Service; 2 or more to replace or lose one without "
        "turning clients away",
    )
    port: int = Field(8000, ge=1, le=65535)
    queue_capacity: int = Field(1024, ge=1, description="requests held before answering 429")
    score_window: int = Field(1000, ge=10, description="live scores kept for threshold calibration")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    api_key_secret: SecretKeyRef | None = Field(
        None,
        description="API keys (one per line) the gateway requires from clients: a Secret key mounted "
        "read-only into the gateway pods; without it the gateway asks for none",
    )


class Images(ApiModel):
    gateway: str = "hadis/hadis-gateway:0.1.0"
    worker: str = "hadis/hadis-worker:0.1.0"
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"


class HadisServiceSpec(ApiModel):
    variants: list[VariantSpec] = Field(min_length=1)
    slo_seconds: float = Field(gt=0, description="latency SLO per request, seconds")
    admission_factor: float = Field(1.5, ge=1, description="drop requests that cannot finish in factor × SLO")
    gpu_pools: list[GpuPool] = Field(min_length=1)
    policy: PolicyName = "hadis"
    fixed_pair: PairSpec | None = Field(None, description="the pair for policy fixed-pair")
    engine: Literal["diffusers", "emulated"] = Field(
        "diffusers",
        description="diffusers: real pipelines, one GPU of the pool per worker; emulated: workers sleep "
        "for the profiled latencies and request no GPU (capacity tests on any node)",
    )
    allocation: AllocationSettings = AllocationSettings()
    profile: ProfileRef = ProfileRef()
    metrics: MetricsSource = MetricsSource()
    gateway: GatewaySettings = GatewaySettings()
    images: Images = Images()
    discriminator: DiscriminatorSpec | None = Field(
        None, description="diffusers engine: the discriminator's files; without it p_real is not scored"
    )
    model_volume: dict[str, Any] | None = Field(
        None, description="a Kubernetes volume source holding the weights (e.g. persistentVolumeClaim)"
    )

    @model_validator(mode="after")
    def _check(self) -> HadisServiceSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variants: duplicate names {names}")
        pools = [p.name for p in self.gpu_pools]
        if len(set(pools)) != len(pools):
            raise ValueError(f"gpuPools: duplicate names {pools}")
        if self.policy == "fixed-pair" and self.fixed_pair is None:
            raise ValueError("fixedPair: required when policy is fixed-pair")
        if self.fixed_pair is not None:
            for role in ("light", "heavy"):
                if getattr(self.fixed_pair, role) not in names:
                    raise ValueError(f"fixedPair.{role}: not one of spec.variants {names}")
        return self


class Condition(ApiModel):
    type: Literal["Ready", "Allocated", "Degraded"]
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class HadisServiceStatus(ApiModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    demand_qps: float | None = None
    gpus: int | None = Field(None, ge=0, description="GPUs the allocation uses (sum of worker replicas)")
    allocation: Allocation | None = None
    last_allocation_time: str | None = None


class ObjectMeta(ApiModel):
    """The metadata fields HADIS reads; everything else the API server adds is kept as-is."""

    model_config = ApiModel.model_config | {"extra": "allow"}

    name: str = Field(pattern=NAME_PATTERN)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class HadisService(ApiModel):
    api_version: Literal["hadis.io/v1alpha1"] = "hadis.io/v1alpha1"
    kind: Literal["HadisService"] = "HadisService"
    metadata: ObjectMeta
    spec: HadisServiceSpec
    status: HadisServiceStatus | None = None
