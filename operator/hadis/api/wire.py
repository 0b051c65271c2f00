"""The data plane's wire protocol: gateway ↔ worker messages and the watched cascade configuration.

The cascade configuration is a JSON file that the gateway and every worker watch (in Kubernetes a
mounted ConfigMap; in local mode written by the control loop). A change is applied without a
restart. Worker messages travel as JSON over HTTP (``POST /v1/generate``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from hadis.api.base import ApiModel
from hadis.api.profile import NAME_PATTERN, CascadeRow

MAX_PROMPT_CHARS = 4000


class VariantEndpoints(ApiModel):
    """Where one variant's workers listen, and how they batch."""

    batch_size: int = Field(ge=1)
    endpoints: list[str] = Field(
        default_factory=list, description="worker base URLs, e.g. http://10.0.0.5:8001"
    )
    steps: int | None = Field(None, ge=1)
    guidance_scale: float | None = Field(None, ge=0)


class CascadeConfig(ApiModel):
    """What the gateway routes by and what each worker serves; written by the control plane."""

    generation: int = Field(0, ge=0, description="increases with every change")
    policy: str = "hadis"
    row: CascadeRow | None = Field(None, description="the cascade (light, heavy, θ, τ) of cascade policies")
    split: dict[str, float] = Field(default_factory=dict, description="per-variant query shares otherwise")
    variants: dict[str, VariantEndpoints] = Field(default_factory=dict)
    slo_s: float = Field(gt=0)
    admission_factor: float = Field(1.5, ge=1)
    time_scale: float = Field(1.0, gt=0, description="emulated engines sleep profiled latency × this")
    profile: str = Field("hadis-paper-l40s", min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CascadeConfig:
        if self.row is None and not self.split:
            raise ValueError("either row (cascade) or split must be set")
        if self.row is not None and self.split:
            raise ValueError("row and split are exclusive")
        used = [self.row.light, self.row.heavy] if self.row is not None else list(self.split)
        for v in used:
            if v not in self.variants:
                raise ValueError(f"variants: no entry for {v!r}, which the routing uses")
        return self


class GenerateRequest(ApiModel):
    """Gateway → worker: generate one image for one prompt."""

    request_id: str = Field(min_length=1, max_length=128)
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    prompt_index: int | None = Field(None, ge=0, description="row in the profile's reference prompt set")
    variant: str = Field(pattern=NAME_PATTERN, description="the variant the gateway expects to serve it")
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    width: int = Field(512, ge=64, le=4096)
    height: int = Field(512, ge=64, le=4096)
    num_inference_steps: int | None = Field(None, ge=1, le=500)
    guidance_scale: float | None = Field(None, ge=0, le=50)
    seed: int | None = Field(None, ge=0, lt=2**63)
    deadline_unix_s: float = Field(gt=0, description="arrival + admission factor × SLO (absolute)")
    discriminate: bool = Field(False, description="score the image with the discriminator (light stage)")


class GenerateResponse(ApiModel):
    """Worker → gateway: the image (PNG, base64) and what it cost."""

    request_id: str
    variant: str
    image_b64: str
    p_real: float | None = Field(None, ge=0, le=1)
    queue_ms: float = Field(ge=0)
    generation_ms: float = Field(ge=0)
    batch_size: int = Field(ge=1)


class WorkerError(ApiModel):
    """An explicit refusal: every request gets an image or one of these."""

    code: Literal["deadline", "overloaded", "bad_request", "wrong_variant", "internal", "shutting_down"]
    message: str
    request_id: str | None = None
