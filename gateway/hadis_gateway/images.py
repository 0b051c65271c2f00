"""``POST /v1/images/generations``: validate, admit (bounded), dispatch the images, answer OpenAI-style."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
import traceback
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from hadis.api.wire import CascadeConfig
from hadis.cascade_watch import CascadeConfigWatcher
from hadis_gateway.balancer import Balancer
from hadis_gateway.dispatch import Dispatcher, DispatchError, Job, Outcome
from hadis_gateway.metrics import GatewayMetrics
from hadis_gateway.openai_api import ImageGenerationRequest, first_error
from hadis_gateway.scoring import reference_prompt_indices
from hadis_gateway.settings import Settings, parse_size

log = logging.getLogger(__name__)

MAX_CLIENT_ID_CHARS = 100


@dataclass
class GatewayState:
    """Everything the handlers share (on ``app.state.gateway``; no module globals)."""

    settings: Settings
    watcher: CascadeConfigWatcher
    balancer: Balancer
    metrics: GatewayMetrics
    dispatcher: Dispatcher | None = None
    in_flight: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def config(self) -> CascadeConfig | None:
        return self.watcher.current


@dataclass(frozen=True)
class Reply:
    """An answer as bytes (JSON), built without a framework response object on the hot path."""

    status: int
    body: bytes
    headers: dict[str, str] | None = None
    media_type: str = "application/json"

    def response(self) -> Response:
        return Response(self.body, self.status, headers=self.headers, media_type=self.media_type)


def dump_json(obj: object) -> bytes:
    """JSON as Starlette's ``JSONResponse`` renders it (compact, UTF-8, NaN refused)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


def error_reply(
    status: int,
    message: str,
    *,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Reply(status, dump_json(body), headers)


def error(
    status: int,
    message: str,
    *,
    type_: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return error_reply(status, message, type_=type_, param=param, code=code, headers=headers).response()


def internal_error_reply(exc: BaseException) -> Reply:
    """A 500 naming the exception's type only: its message may quote the request (the prompt)."""
    return error_reply(
        500, f"internal gateway error ({type(exc).__name__})", type_="server_error", code="internal"
    )


def log_internal_error(what: str, exc: BaseException) -> None:
    """Log an unexpected exception: its type and traceback at ERROR, its message only at DEBUG
    (the message may quote the request: prompts stay out of the logs at the default level)."""
    tb = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    log.error("%s: %s\n%s", what, type(exc).__name__, tb)
    log.debug("%s: %r", what, exc)


def bad_request(message: str, param: str | None, code: str = "invalid_value") -> Reply:
    return error_reply(400, message, type_="invalid_request_error", param=param, code=code)


async def generate(state: GatewayState, request: Request) -> Response:
    """The FastAPI route's handler (the app answers this path with :func:`generate_reply` directly)."""
    reply = await generate_reply(state, await request.body(), request.headers.get("x-request-id"))
    return reply.response()


async def generate_reply(state: GatewayState, raw: bytes, client_request_id: str | None) -> Reply:
    """``POST /v1/images/generations`` with body ``raw``: validate, admit, dispatch, answer."""
    arrival = time.time()
    s = state.settings
    try:
        payload = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        return bad_request("the request body is not valid JSON: nested too deeply", None, "invalid_json")
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, NaN, an integer of > 4,300 digits
        return bad_request(f"the request body is not valid JSON: {e}", None, "invalid_json")
    if not isinstance(payload, dict):
        return bad_request("the request body must be a JSON object", None, "invalid_json")
    try:
        req = ImageGenerationRequest.model_validate(payload)
    except ValidationError as e:
        param, msg = first_error(e)
        return bad_request(msg, param)
    if req.n > s.max_images:
        return bad_request(f"Invalid 'n': at most {s.max_images} images per request", "n")
    if req.size not in s.sizes:
        return bad_request(f"Invalid 'size': {req.size!r}; supported sizes: {list(s.sizes)}", "size")
    for param, text in (("prompt", req.prompt), ("negative_prompt", req.negative_prompt)):
        if text is not None and len(text) > s.max_prompt_chars:
            message = f"Invalid '{param}': {len(text)} characters; at most {s.max_prompt_chars}"
            return bad_request(message, param, "string_too_long")
        if text is not None and not _encodable(text):
            return bad_request(f"Invalid '{param}': lone UTF-16 surrogates are not text", param)
    cfg, dispatcher = state.config, state.dispatcher
    if cfg is None or dispatcher is None:
        return error_reply(
            503, "the gateway has no cascade configuration yet", type_="server_error", code="not_ready"
        )
    if req.model not in (None, s.cascade_model, *cfg.variants):
        known = [s.cascade_model, *sorted(cfg.variants)]
        return bad_request(
            f"Invalid 'model': {req.model!r} does not exist; models: {known}", "model", "model_not_found"
        )
    state.metrics.arrivals.inc(req.n)  # the demand the control loop sees: counted on arrival
    if state.in_flight >= s.queue_capacity:
        state.metrics.rejected.labels("queue_full").inc()
        return error_reply(
            429,
            f"the gateway queue is full ({s.queue_capacity} requests); retry later",
            type_="rate_limit_error",
            code="queue_full",
            headers={"Retry-After": str(s.retry_after_s)},
        )
    width, height = parse_size(req.size)
    rid = client_request_id or ""
    if not 0 < len(rid) <= MAX_CLIENT_ID_CHARS:  # the wire allows 128 chars; "-<i>" is appended for n > 1
        rid = secrets.token_hex(16)  # as uuid4().hex, without building a UUID
    prompt_index = reference_prompt_indices(cfg.profile).get(req.prompt.strip())
    jobs = [
        Job(
            request_id=rid if req.n == 1 else f"{rid}-{i}",
            prompt=req.prompt,
            width=width,
            height=height,
            arrival_unix_s=arrival,
            prompt_index=prompt_index,
            model=None if req.model in (None, s.cascade_model) else req.model,
            negative_prompt=req.negative_prompt,
            num_inference_steps=req.num_inference_steps,
            guidance_scale=req.guidance_scale,
            seed=None if req.seed is None else req.seed + i,
        )
        for i in range(req.n)
    ]
    state.in_flight += 1
    state.metrics.in_flight.set(state.in_flight)
    try:
        if len(jobs) == 1:  # no gather (a task per job) for the common case
            results: list[Outcome | BaseException] = [await _run(dispatcher, jobs[0])]
        else:
            results = await asyncio.gather(*(dispatcher.run(j) for j in jobs), return_exceptions=True)
    finally:
        state.in_flight -= 1
        state.metrics.in_flight.set(state.in_flight)
    return answer(state, cfg, arrival, jobs, results)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _encodable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (JSON's ``\\ud800`` escapes decode to lone surrogates)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


async def _run(dispatcher: Dispatcher, job: Job) -> Outcome | BaseException:
    try:
        return await dispatcher.run(job)
    except Exception as e:  # as gather(return_exceptions=True) would hand it back
        return e


def answer(
    state: GatewayState,
    cfg: CascadeConfig,
    arrival: float,
    jobs: list[Job],
    results: list[Outcome | BaseException],
) -> Reply:
    m = state.metrics
    elapsed = time.time() - arrival
    failure: BaseException | None = None
    data = []
    for job, res in zip(jobs, results, strict=True):
        m.latency.observe(elapsed)
        if isinstance(res, BaseException):
            failure = failure or res
            code = res.code if isinstance(res, DispatchError) else "internal"
            m.requests.labels(code, "none").inc()
            m.slo_violations.inc()
            continue
        m.requests.labels("escalated" if res.escalated else "ok", res.variant).inc()
        if elapsed > cfg.slo_s:
            m.slo_violations.inc()
        # the shape of openai_api.ImageData / HadisImageInfo, built as plain dicts (hot path)
        info = {
            "request_id": job.request_id,
            "variant": res.variant,
            "router_score": res.router_score,
            "router_hard": res.router_hard,
            "discriminator_score": res.p_real,
            "escalated": res.escalated,
            "escalation_error": res.escalation_error,
            "queue_ms": res.queue_ms,
            "generation_ms": res.generation_ms,
            "retries": res.retries,
        }
        data.append({"b64_json": res.image_b64, "revised_prompt": None, "x_hadis": info})
    if failure is not None:
        if isinstance(failure, DispatchError):
            headers = (
                {"Retry-After": str(state.settings.retry_after_s)} if failure.status in (429, 503) else None
            )
            return error_reply(
                failure.status, failure.message, type_=failure.type, code=failure.code, headers=headers
            )
        log_internal_error("dispatch failed", failure)
        return internal_error_reply(failure)
    return Reply(200, dump_json({"created": math.floor(arrival), "data": data}))
