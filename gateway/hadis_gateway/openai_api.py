"""The OpenAI Images API shapes the gateway speaks, plus HADIS's per-image ``x_hadis`` metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from hadis.api.wire import MAX_PROMPT_CHARS


def _json_number(kind: str) -> BeforeValidator:
    """Refuse what JSON Schema does not call a number (strings, booleans) before pydantic's lax
    conversion would accept it; ``2.0`` stays an integer, as JSON Schema has it."""
    message = f"Input should be a valid {kind}"

    def check(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PydanticCustomError(f"{kind}_type", message)
        return value

    return BeforeValidator(check)


# after the bounds (Annotated applies in order): bounds after a validator function would appear in
# the JSON schema as pydantic's "ge"/"lt", which JSON Schema does not know
_INT, _NUMBER = _json_number("integer"), _json_number("number")


class ImageGenerationRequest(BaseModel):
    """``POST /v1/images/generations``: OpenAI's fields plus the usual diffusion extras.

    Fields OpenAI defines that HADIS does not use (``quality``, ``style``, …) are ignored. Types are
    JSON Schema's, as OpenAI's API has them: ``"n": "2"`` or ``"n": true`` is refused, not
    converted (``"n": 2.0`` is an integer). The limits
    here are the hard ones; the gateway's settings narrow ``n``, ``size`` and the prompt lengths
    (:func:`request_body_schema` publishes those in the OpenAPI document).
    """

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="what to draw")
    n: Annotated[int, Field(ge=1), _INT] = Field(
        1, description="how many images (each goes through the cascade on its own)"
    )
    size: str = Field("512x512", description="WIDTHxHEIGHT, one of the gateway's sizes")
    response_format: Literal["b64_json"] = Field("b64_json", description="images come back as base64 PNG")
    model: str | None = Field(
        None, description="the cascade (the default) or one of its variants, pinned (GET /v1/models)"
    )
    user: str | None = Field(None, max_length=256, description="the caller's end user (ignored)")
    num_inference_steps: Annotated[int, Field(ge=1, le=500), _INT] | None = Field(
        None, description="the variant's default if unset"
    )
    seed: Annotated[int, Field(ge=0, lt=2**62), _INT] | None = Field(
        None, description="image i of n uses seed + i"
    )
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS, description="what not to draw")
    guidance_scale: Annotated[float, Field(ge=0, le=50), _NUMBER] | None = Field(
        None, description="the variant's default if unset"
    )


def request_body_schema(
    *, max_prompt_chars: int, max_images: int, sizes: Sequence[str], models: Sequence[str]
) -> dict[str, Any]:
    """The JSON Schema of the request body with the limits the gateway enforces (its settings) and
    the model names it knows now."""
    schema = ImageGenerationRequest.model_json_schema()
    props = schema["properties"]
    props["prompt"]["maxLength"] = max_prompt_chars
    props["negative_prompt"]["anyOf"][0]["maxLength"] = max_prompt_chars
    props["n"]["maximum"] = max_images
    props["size"]["enum"] = list(sizes)
    props["model"]["anyOf"][0]["enum"] = list(models)
    return schema


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
