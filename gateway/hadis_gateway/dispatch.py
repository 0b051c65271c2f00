"""The cascade: router → light (+ discriminator) → maybe heavy; worker calls with deadline and one retry."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

from pydantic import ValidationError

from hadis.api.wire import CascadeConfig, GenerateResponse, WorkerError
from hadis_gateway.balancer import Balancer, NoReplica
from hadis_gateway.batch_scorer import BatchScorer, ScoreMany
from hadis_gateway.metrics import GatewayMetrics
from hadis_gateway.thresholds import Threshold, is_hard, should_escalate
from hadis_gateway.worker_client import WorkerClient, WorkerTimeout, WorkerUnreachable

log = logging.getLogger(__name__)

#: Worker refusal code → (HTTP status, OpenAI error type).
WORKER_ERROR_STATUS = {
    "deadline": (504, "timeout_error"),
    "overloaded": (429, "rate_limit_error"),
    "bad_request": (400, "invalid_request_error"),
    "wrong_variant": (502, "server_error"),
    "internal": (502, "server_error"),
    "shutting_down": (503, "server_error"),
}
#: Failures after which the light image is served rather than none (escalation is best effort).
KEEP_LIGHT_ON = {"deadline", "overloaded", "shutting_down", "worker_unavailable", "no_workers"}


class DispatchError(Exception):
    """A request that ends without an image; becomes an OpenAI-style error response."""

    def __init__(self, status: int, code: str, message: str, *, type_: str = "server_error") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.type = status, code, message, type_


@dataclass(frozen=True)
class Job:
    """One image to make (a request with ``n`` images is ``n`` jobs)."""

    request_id: str
    prompt: str
    width: int
    height: int
    arrival_unix_s: float
    model: str | None = None  # a variant name pins the job to that variant (no cascade)
    prompt_index: int | None = None  # row in the profile's reference prompt set, when it is one
    negative_prompt: str | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None


@dataclass
class Outcome:
    image_b64: str
    variant: str
    router_score: float | None = None
    router_hard: bool = False
    p_real: float | None = None
    escalated: bool = False
    escalation_error: str | None = None
    queue_ms: float = 0.0
    generation_ms: float = 0.0
    retries: int = 0
    deadline_unix_s: float = field(default=0.0)


def wire_request(
    job: Job,
    variant: str,
    deadline: float,
    *,
    discriminate: bool,
    steps: int | None,
    guidance_scale: float | None,
) -> dict[str, object]:
    """``GenerateRequest(...).to_wire()`` for one job, built directly (the per-request hot path).

    The job's fields were validated on arrival (the OpenAI request model), so the wire model's
    validation would only cost time; a test checks the two agree.
    """
    body: dict[str, object] = {"requestId": job.request_id, "prompt": job.prompt}
    if job.prompt_index is not None:
        body["promptIndex"] = job.prompt_index
    body["variant"] = variant
    if job.negative_prompt is not None:
        body["negativePrompt"] = job.negative_prompt
    body["width"], body["height"] = job.width, job.height
    if steps is not None:
        body["numInferenceSteps"] = steps
    if guidance_scale is not None:
        body["guidanceScale"] = float(guidance_scale)
    if job.seed is not None:
        body["seed"] = job.seed
    body["deadlineUnixS"] = float(deadline)
    body["discriminate"] = discriminate
    return body


class Dispatcher:
    """Routes jobs through the cascade in force; owns no configuration of its own."""

    def __init__(
        self,
        client: WorkerClient,
        balancer: Balancer,
        config: Callable[[], CascadeConfig | None],
        score_prompts: ScoreMany,
        router_threshold: Threshold,
        disc_threshold: Threshold,
        metrics: GatewayMetrics,
        *,
        grace_s: float = 2.0,
        rng: random.Random | None = None,
        executor: Executor | None = None,
        score_cache: int = 0,
    ) -> None:
        self.client, self.balancer, self.metrics = client, balancer, metrics
        self._config = config
        self.router_threshold, self.disc_threshold = router_threshold, disc_threshold
        self.grace_s = grace_s
        self.rng = rng or random.Random()
        # scoring runs on ``executor`` (one thread: the router is not thread-safe), batched under load;
        # the last ``score_cache`` prompts' scores are answered on the event loop
        self.scorer = BatchScorer(score_prompts, executor, cache_size=score_cache)

    def config(self) -> CascadeConfig:
        cfg = self._config()
        if cfg is None:
            raise DispatchError(503, "not_ready", "the gateway has no cascade configuration yet")
        return cfg

    async def run(self, job: Job) -> Outcome:
        cfg = self.config()  # one snapshot for the whole job, even if the file changes meanwhile
        deadline = job.arrival_unix_s + cfg.admission_factor * cfg.slo_s
        if job.model is not None and job.model in cfg.variants:
            out = await self.call(cfg, job, job.model, deadline, discriminate=False, reroute=False)
        elif cfg.row is not None:
            out = await self._cascade(cfg, job, deadline)
        else:
            out = await self.call(cfg, job, self._pick_split(cfg), deadline, discriminate=False)
        out.deadline_unix_s = deadline
        return out

    async def _cascade(self, cfg: CascadeConfig, job: Job, deadline: float) -> Outcome:
        row = cfg.row
        assert row is not None
        score = await self.scorer.score(job.prompt)
        hard = is_hard(score, row.theta, self.router_threshold)
        self.router_threshold.observe(score)
        if hard:
            self.metrics.router_hard.inc()
            out = await self.call(cfg, job, row.heavy, deadline, discriminate=False)
            return replace(out, router_score=score, router_hard=True)
        light = await self.call(cfg, job, row.light, deadline, discriminate=True)
        light = replace(light, router_score=score)
        if light.p_real is None:
            log.warning("light worker returned no p_real for %s; not escalating", job.request_id)
            return light
        escalate = should_escalate(light.p_real, row.tau, self.disc_threshold)
        self.disc_threshold.observe(light.p_real)
        if not escalate:
            return light
        self.metrics.escalations.inc()
        try:
            heavy = await self.call(cfg, job, row.heavy, deadline, discriminate=False)
        except DispatchError as e:
            if e.code not in KEEP_LIGHT_ON:
                raise
            log.warning("escalation of %s failed (%s); serving the light image", job.request_id, e.code)
            return replace(light, escalation_error=e.code)
        return replace(
            heavy,
            router_score=score,
            p_real=light.p_real,
            escalated=True,
            queue_ms=light.queue_ms + heavy.queue_ms,
            generation_ms=light.generation_ms + heavy.generation_ms,
            retries=light.retries + heavy.retries,
        )

    def _pick_split(self, cfg: CascadeConfig) -> str:
        names = [v for v, share in cfg.split.items() if share > 0] or list(cfg.split)
        weights = [max(cfg.split[v], 0.0) for v in names]
        if sum(weights) <= 0:
            weights = [1.0] * len(names)
        return self.rng.choices(names, weights=weights)[0]

    def _reroute(self, cfg: CascadeConfig, variant: str) -> tuple[CascadeConfig, str] | None:
        """Where a stage goes when ``variant`` has no replica left under a *newer* configuration.

        A re-allocation that drops a variant must not turn its queue into errors: as in the
        simulator, its waiting requests move to the new configuration — a light stage to the new
        light variant, a heavy stage (router-hard or escalated) to the new heavy one, a split
        request to a variant of the new split. ``None`` when there is no newer configuration or it
        has no such variant with replicas (the request then gets the explicit ``no_workers`` error).
        """
        cur = self._config()
        if cur is None or cur.generation <= cfg.generation:
            return None
        if cur.row is not None:
            heavy_stage = cfg.row is not None and variant == cfg.row.heavy
            target = cur.row.heavy if heavy_stage else cur.row.light
        else:
            target = self._pick_split(cur) if cur.split else ""
        if target == variant or target not in cur.variants or not self.balancer.endpoints(target):
            return None
        return cur, target

    async def call(
        self,
        cfg: CascadeConfig,
        job: Job,
        variant: str,
        deadline: float,
        *,
        discriminate: bool,
        reroute: bool = True,
    ) -> Outcome:
        """One generation on ``variant``: least-loaded replica, one retry elsewhere on connection
        failure; moved to the newer configuration's variant when ``variant`` lost every replica
        (``reroute``; not for requests that named their model)."""
        ve = cfg.variants[variant]
        body = wire_request(
            job,
            variant,
            deadline,
            discriminate=discriminate,
            steps=job.num_inference_steps or ve.steps,
            guidance_scale=job.guidance_scale if job.guidance_scale is not None else ve.guidance_scale,
        )
        payload = json.dumps(body, separators=(",", ":")).encode()
        tried: list[str] = []
        last: Exception | None = None
        gauge = self.metrics.queue.labels(variant)
        waiting = self.metrics.waiting.labels(variant)
        self.metrics.dispatched.labels(variant).inc()
        for attempt in range(2):
            try:  # wait (FIFO) for an idle replica, which takes up to one batch at once
                gauge.set(self.balancer.variant_outstanding(variant) + 1)
                waiting.set(self.balancer.waiting(variant) + 1)
                endpoint = await self.balancer.acquire(
                    variant, ve.batch_size, tried, max(deadline - time.time(), 0.0)
                )
            except NoReplica:
                if not tried and reroute:
                    moved = self._reroute(cfg, variant)
                    if moved is not None:
                        self.metrics.rerouted.inc()
                        new_cfg, new_variant = moved
                        return await self.call(
                            new_cfg, job, new_variant, deadline, discriminate=discriminate, reroute=True
                        )
                break
            except TimeoutError:
                message = f"no {variant} replica was free before the deadline"
                raise DispatchError(504, "deadline", message, type_="timeout_error") from None
            finally:
                gauge.set(self.balancer.variant_outstanding(variant))
                waiting.set(self.balancer.waiting(variant))
            tried.append(endpoint)
            if attempt:
                self.metrics.retries.inc()
            try:
                resp = await self._post(endpoint, variant, payload, deadline)
            except WorkerTimeout:
                message = f"{variant} worker did not answer before the deadline"
                raise DispatchError(504, "deadline", message, type_="timeout_error") from None
            except (WorkerUnreachable, _Retryable) as e:
                log.warning("worker %s (%s) failed for %s: %r", endpoint, variant, job.request_id, e)
                last = e
                continue
            return Outcome(
                image_b64=resp.image_b64,
                variant=resp.variant,
                p_real=resp.p_real,
                queue_ms=resp.queue_ms,
                generation_ms=resp.generation_ms,
                retries=attempt,
            )
        if not tried:
            raise DispatchError(503, "no_workers", f"no worker endpoints for variant {variant!r}")
        raise DispatchError(
            502, "worker_unavailable", f"{variant} workers {tried} could not be reached: {last!r}"
        )

    async def _post(self, endpoint: str, variant: str, body: bytes, deadline: float) -> GenerateResponse:
        timeout = max(deadline - time.time(), 0.0) + self.grace_s
        gauge = self.metrics.queue.labels(variant)
        try:
            status, content = await self.client.post(f"{endpoint.rstrip('/')}/v1/generate", body, timeout)
        finally:
            self.balancer.release(endpoint)
            gauge.set(self.balancer.variant_outstanding(variant))
        if status == 200:
            try:
                return GenerateResponse.model_validate_json(content)
            except (ValueError, ValidationError) as e:
                raise DispatchError(
                    502, "bad_worker_response", f"{variant} worker answered badly: {e}"
                ) from None
        try:
            err = WorkerError.model_validate_json(content)
        except (ValueError, ValidationError):
            text = content[:200].decode("utf-8", "replace")
            raise DispatchError(
                502, "worker_error", f"{variant} worker answered HTTP {status}: {text}"
            ) from None
        if err.code == "shutting_down":
            raise _Retryable(err.message)
        status, type_ = WORKER_ERROR_STATUS[err.code]
        raise DispatchError(status, err.code, f"{variant} worker: {err.message}", type_=type_)


class _Retryable(Exception):
    """A worker refusal that another replica may not share (it is shutting down)."""
