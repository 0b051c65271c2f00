"""Profiles: per-variant batch latencies and memory per GPU type, single-model quality, cascade sweep.

A profile is what offline profiling measured for a set of model variants. Latencies that were not
measured but filled in by a rule carry ``source="rule"``, and the rule itself is stored in the
profile (``latencyRule``), so nothing about the data is hidden in code.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from hadis.api.base import ApiModel

#: DNS-1123 label: variant names become Kubernetes object names.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"

#: |p − (θ + (1−θ)τ)| allowed in a cascade row; sweeps round p to two decimals.
P_TOLERANCE = 0.011


class LatencyRule(ApiModel):
    """How latencies of unmeasured batch sizes were derived: L(b) = b · L(1) · discount for b > 1."""

    formula: str = "L(b) = b * L(1) * discount for b > 1"
    discount: float = Field(0.9, gt=0, le=1)
    origin: str = "HADIS artifact rule, used where no batch latency was measured"


class BatchPoint(ApiModel):
    """Latency (seconds for the whole batch) and peak memory of one batch size."""

    batch: int = Field(ge=1)
    latency_s: float = Field(gt=0)
    memory_gib: float | None = Field(None, gt=0)
    source: Literal["measured", "rule"] = "measured"


class GpuPerf(ApiModel):
    """A variant's performance on one GPU type."""

    gpu_type: str = Field(min_length=1)
    gpu_memory_gib: float | None = Field(None, gt=0)
    batches: list[BatchPoint] = Field(min_length=1)

    @field_validator("batches")
    @classmethod
    def _sorted_unique(cls, v: list[BatchPoint]) -> list[BatchPoint]:
        sizes = [p.batch for p in v]
        if len(set(sizes)) != len(sizes):
            raise ValueError(f"duplicate batch sizes in {sizes}")
        return sorted(v, key=lambda p: p.batch)

    def point(self, batch: int) -> BatchPoint:
        for p in self.batches:
            if p.batch == batch:
                return p
        raise KeyError(f"batch size {batch} not profiled on {self.gpu_type}")

    def latency(self, batch: int) -> float:
        return self.point(batch).latency_s

    def throughput(self, batch: int) -> float:
        """Images per second of one GPU running full batches of this size back to back."""
        return batch / self.latency(batch)

    def fits_memory(self, batch: int) -> bool:
        p = self.point(batch)
        return p.memory_gib is None or self.gpu_memory_gib is None or p.memory_gib <= self.gpu_memory_gib


class Variant(ApiModel):
    """One servable model variant (checkpoint + sampler settings)."""

    name: str = Field(pattern=NAME_PATTERN)
    index: int | None = Field(None, ge=0, description="index in the source sweep, when it has one")
    model: str = Field(min_length=1, description="hub id or local path of the diffusers pipeline")
    steps: int = Field(ge=1)
    guidance_scale: float = Field(ge=0)
    size_gib: float | None = Field(None, gt=0)
    fid: float = Field(gt=0, description="single-model quality (FID, lower is better)")
    perf: list[GpuPerf] = Field(min_length=1)

    @field_validator("perf")
    @classmethod
    def _unique_gpu(cls, v: list[GpuPerf]) -> list[GpuPerf]:
        types = [g.gpu_type for g in v]
        if len(set(types)) != len(types):
            raise ValueError(f"duplicate GPU types in {types}")
        return v

    def perf_on(self, gpu_type: str) -> GpuPerf:
        for g in self.perf:
            if g.gpu_type == gpu_type:
                return g
        raise KeyError(f"variant {self.name!r} has no latency profile for GPU type {gpu_type!r}")

    def has_gpu(self, gpu_type: str) -> bool:
        return any(g.gpu_type == gpu_type for g in self.perf)


class CascadeRow(ApiModel):
    """One cascade configuration: light → heavy with router ratio θ and discriminator ratio τ.

    θ = share of prompts the router sends straight to ``heavy``; τ = share of light outputs that the
    discriminator escalates; p = θ + (1−θ)τ = share of queries that reach ``heavy``.
    ``cost_s`` is the expected GPU-seconds per query on the profile's reference GPU (the sweep's
    ``latency`` column); ``fid`` the measured quality of the mixed output (lower is better).
    """

    light: str
    heavy: str
    theta: float = Field(ge=0, le=1)
    tau: float = Field(ge=0, le=1)
    p: float = Field(ge=0, le=1)
    cost_s: float | None = Field(None, gt=0)
    fid: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> CascadeRow:
        if self.light == self.heavy:
            raise ValueError(f"light and heavy are the same variant {self.light!r}")
        expected = self.theta + (1 - self.theta) * self.tau
        if abs(self.p - expected) > P_TOLERANCE:
            raise ValueError(f"p={self.p} but θ + (1−θ)τ = {expected:.4f} (θ={self.theta}, τ={self.tau})")
        return self

    @property
    def key(self) -> tuple[str, str, float, float]:
        return (self.light, self.heavy, self.theta, self.tau)

    @property
    def label(self) -> str:
        return f"{self.light}->{self.heavy} θ={self.theta:.2f} τ={self.tau:.2f}"


class RouterInfo(ApiModel):
    """The rule-based prompt router's definition (features and weights)."""

    kind: str = "rule-based"
    features: list[str]
    weights: list[float]

    @model_validator(mode="after")
    def _same_length(self) -> RouterInfo:
        if len(self.features) != len(self.weights):
            raise ValueError(f"{len(self.features)} features but {len(self.weights)} weights")
        return self


class Profile(ApiModel):
    """Everything offline profiling knows about a set of variants on one or more GPU types."""

    kind: Literal["HadisProfile"] = "HadisProfile"
    name: str = Field(min_length=1)
    description: str = ""
    attribution: str = ""
    reference_gpu_type: str = Field(min_length=1, description="GPU type the sweep's cost_s refers to")
    latency_rule: LatencyRule = LatencyRule()
    variants: list[Variant] = Field(min_length=1)
    router: RouterInfo | None = None
    sweep: list[CascadeRow] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate variant names in {names}")
        for i, row in enumerate(self.sweep):
            for role, name in (("light", row.light), ("heavy", row.heavy)):
                if name not in names:
                    raise ValueError(f"sweep[{i}].{role}: unknown variant {name!r} (profile has {names})")
        for v in self.variants:
            if not v.has_gpu(self.reference_gpu_type):
                raise ValueError(f"variant {v.name!r} has no latencies for the reference GPU type")
        return self

    @property
    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants]

    @property
    def gpu_types(self) -> list[str]:
        seen: list[str] = []
        for v in self.variants:
            for g in v.perf:
                if g.gpu_type not in seen:
                    seen.append(g.gpu_type)
        return seen

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"unknown variant {name!r}; the profile {self.name!r} has {self.variant_names}")

    def lightest(self) -> Variant:
        """The variant with the smallest batch-1 latency on the reference GPU (ties: worse FID)."""
        return min(self.variants, key=lambda v: (v.perf_on(self.reference_gpu_type).latency(1), -v.fid))

    def heaviest(self) -> Variant:
        """The variant with the best single-model quality (lowest FID)."""
        return min(self.variants, key=lambda v: (v.fid, v.perf_on(self.reference_gpu_type).latency(1)))

    def time_scaled(self, factor: float) -> Profile:
        """The same profile with every latency (and the sweep's cost) multiplied by ``factor``.

        Used for time-compressed experiments such as the paper's E1 (every latency × 0.1).
        """
        if factor <= 0:
            raise ValueError(f"time scale must be > 0, got {factor}")
        variants = [
            v.model_copy(
                update={
                    "perf": [
                        g.model_copy(
                            update={
                                "batches": [
                                    b.model_copy(update={"latency_s": b.latency_s * factor})
                                    for b in g.batches
                                ]
                            }
                        )
                        for g in v.perf
                    ]
                }
            )
            for v in self.variants
        ]
        sweep = [r.model_copy(update={"cost_s": r.cost_s * factor if r.cost_s else None}) for r in self.sweep]
        return self.model_copy(update={"variants": variants, "sweep": sweep})
