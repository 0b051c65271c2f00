"""The OpenAI Images API shapes the gateway speaks, plus HADIS's per-image ``x_hadis`` metadata."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hadis.api.wire import MAX_PROMPT_CHARS


class ImageGenerationRequest(BaseModel):
    """``POST /v1/images/generations``: OpenAI's fields plus the usual diffusion extras.

    Fields OpenAI defines that HADIS does not use (``quality``, ``style``, …) are ignored.
    """

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    n: int = Field(1, ge=1)
    size: str = "512x512"
    response_format: Literal["b64_json"] = "b64_json"
    model: str | None = None
    user: str | None = Field(None, max_length=256)
    num_inference_steps: int | None = Field(None, ge=1, le=500)
    seed: int | None = Field(None, ge=0, lt=2**62)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    guidance_scale: float | None = Field(None, ge=0, le=50)


class HadisImageInfo(BaseModel):
    """How one image was made: which variant, the router and discriminator scores, the timings."""

    request_id: str
    variant: str
    router_score: float | None
    router_hard: bool
    discriminator_score: float | None
    escalated: bool
    escalation_error: str | None = None
    queue_ms: float
    generation_ms: float
    retries: int = 0


class ImageData(BaseModel):
    b64_json: str
    revised_prompt: str | None = None
    x_hadis: HadisImageInfo


class ImagesResponse(BaseModel):
    created: int
    data: list[ImageData]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "hadis"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def first_error(err: ValidationError) -> tuple[str | None, str]:
    """(param, message) of a validation error's first problem, the param named as the client wrote it."""
    e = err.errors()[0]
    loc = [str(p) for p in e["loc"]]
    param = ".".join(loc) or None
    msg: str = e["msg"]
    if e["type"] == "missing":
        msg = f"'{param}' is required"
    elif e["type"] == "literal_error" and loc == ["response_format"]:
        msg = "only response_format 'b64_json' is supported"
    else:
        msg = f"Invalid '{param}': {msg}"
    return param, msg


def error_payload(message: str, *, type_: str, param: str | None = None, code: str | None = None) -> Any:
    return ErrorResponse(error=ErrorBody(message=message, type=type_, param=param, code=code)).model_dump()
