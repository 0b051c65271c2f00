"""Allocation decisions: what a policy decides, and everything it decides from."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hadis.api.base import ApiModel
from hadis.api.profile import NAME_PATTERN, CascadeRow, Profile

PolicyName = Literal[
    "hadis",
    "diffserve",
    "router-only",
    "disc-only",
    "fixed-pair",
    "proteus",
    "infaas",
    "clipper-light",
    "clipper-heavy",
]
POLICY_NAMES: tuple[str, ...] = PolicyName.__args__  # type: ignore[attr-defined]


class Toleration(ApiModel):
    """A Kubernetes toleration (the subset HADIS writes into worker pods)."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class GpuPool(ApiModel):
    """A set of identical GPUs that workers can be scheduled on."""

    name: str = Field(pattern=NAME_PATTERN)
    gpu_type: str = Field(min_length=1, description="must match a GPU type in the profile")
    count: int = Field(ge=0, description="GPUs in this pool HADIS may use")
    resource: str = Field("nvidia.com/gpu", min_length=1, description="extended resource name of one GPU")
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)


class VariantAllocation(ApiModel):
    """Workers of one variant on one GPU pool (one GPU per worker replica)."""

    variant: str
    pool: str
    replicas: int = Field(ge=0)
    batch_size: int = Field(ge=1)
    latency_s: float = Field(ge=0, description="profiled latency of a full batch on this pool's GPU")
    throughput_qps: float = Field(ge=0, description="replicas × batch / latency")


class Allocation(ApiModel):
    """A policy's decision for one control interval.

    Cascade policies set ``row`` (light, heavy, θ, τ); the others leave it empty and route each
    query to one variant with the probabilities in ``split``. ``feasible`` is false when no
    configuration meets the SLO for the whole demand; then ``shed`` is true and the plan is the
    explicit load-shedding plan (``shed_qps`` is the demand it cannot serve in time).
    """

    policy: str
    row: CascadeRow | None = None
    split: dict[str, float] = Field(default_factory=dict)
    variants: list[VariantAllocation] = Field(default_factory=list)
    demand_qps: float = Field(ge=0)
    expected_fid: float = Field(ge=0)
    feasible: bool = True
    shed: bool = False
    shed_qps: float = Field(0.0, ge=0)
    solver_status: str = "n/a"
    solve_time_s: float = Field(0.0, ge=0)
    reason: str = ""

    @model_validator(mode="after")
    def _routing(self) -> Allocation:
        if self.row is not None and self.split:
            raise ValueError("an allocation has either a cascade row or a split, not both")
        if self.split and abs(sum(self.split.values()) - 1.0) > 1e-6:
            raise ValueError(f"split must sum to 1, got {sum(self.split.values()):.6f}")
        return self

    def replicas(self, variant: str) -> int:
        return sum(a.replicas for a in self.variants if a.variant == variant)

    def batch_size(self, variant: str) -> int:
        """The batch size of a variant (the largest, if pools differ); 1 for unallocated variants."""
        sizes = [a.batch_size for a in self.variants if a.variant == variant and a.replicas > 0]
        return max(sizes) if sizes else 1

    def capacity_qps(self, variant: str) -> float:
        return sum(a.throughput_qps for a in self.variants if a.variant == variant)

    @property
    def gpus_used(self) -> int:
        return sum(a.replicas for a in self.variants)

    def gpus_in_pool(self, pool: str) -> int:
        return sum(a.replicas for a in self.variants if a.pool == pool)

    def share(self, variant: str) -> float:
        """Expected share of queries that this variant generates an image for."""
        if self.row is not None:
            if variant == self.row.light:
                return 1 - self.row.theta
            if variant == self.row.heavy:
                return self.row.p
            return 0.0
        return self.split.get(variant, 0.0)

    @property
    def active_variants(self) -> list[str]:
        seen: list[str] = []
        for a in self.variants:
            if a.replicas > 0 and a.variant not in seen:
                seen.append(a.variant)
        return seen


class DecisionInput(ApiModel):
    """Everything a policy decides from. Pure data: policies never read anything else."""

    profile: Profile
    table: list[CascadeRow] = Field(
        default_factory=list, description="the Pareto table (for cascade policies)"
    )
    demand_qps: float = Field(ge=0, description="estimated arrival rate to provision for")
    slo_s: float = Field(gt=0)
    pools: list[GpuPool] = Field(min_length=1)
    variants: list[str] | None = Field(
        None, description="restrict to these variants (None: all in the profile)"
    )
    previous: Allocation | None = None
    queue_lengths: dict[str, float] = Field(default_factory=dict, description="observed queue per variant")
    arrival_qps: dict[str, float] = Field(
        default_factory=dict, description="observed arrival rate per variant"
    )
    reconfiguration_cost: float = Field(0.0, ge=0, description="FID-equivalent penalty per GPU moved")
    time_limit_s: float = Field(5.0, gt=0, description="solver time limit")
    fixed_pair: tuple[str, str] | None = Field(None, description="(light, heavy) for the fixed-pair policy")

    @model_validator(mode="after")
    def _check(self) -> DecisionInput:
        names = set(self.profile.variant_names)
        for v in self.variants or []:
            if v not in names:
                raise ValueError(f"variants: unknown variant {v!r}; the profile has {sorted(names)}")
        gpu_types = set(self.profile.gpu_types)
        for i, pool in enumerate(self.pools):
            if pool.gpu_type not in gpu_types:
                raise ValueError(
                    f"pools[{i}].gpuType: {pool.gpu_type!r} is not in the profile (has {sorted(gpu_types)})"
                )
        pool_names = [p.name for p in self.pools]
        if len(set(pool_names)) != len(pool_names):
            raise ValueError(f"pools: duplicate pool names {pool_names}")
        if self.fixed_pair is not None:
            for v in self.fixed_pair:
                if v not in names:
                    raise ValueError(f"fixedPair: unknown variant {v!r}; the profile has {sorted(names)}")
        return self

    @property
    def allowed_variants(self) -> list[str]:
        return list(self.variants) if self.variants else self.profile.variant_names

    @property
    def total_gpus(self) -> int:
        return sum(p.count for p in self.pools)

    def queueing_delay_s(self, variant: str) -> float:
        """Little's law: expected wait W = L / λ from the observed queue length and arrival rate."""
        q = self.queue_lengths.get(variant, 0.0)
        lam = self.arrival_qps.get(variant, 0.0)
        if q <= 0 or lam <= 0:
            return 0.0  # no queue, or no new arrivals that would wait behind it
        return q / lam
