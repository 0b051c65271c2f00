"""The worker's HTTP API (FastAPI): ``POST /v1/generate``, ``/healthz``, ``/readyz``, ``/metrics``.

Every ``POST /v1/generate`` is answered: a :class:`GenerateResponse` (200) or a :class:`WorkerError`
whose HTTP status follows its code (:data:`STATUS`):

==================  ======  =========================================================
code                status  when
==================  ======  =========================================================
bad_request         400     the body is not a valid GenerateRequest
wrong_variant       409     the request names another variant than this worker's
deadline            504     it cannot finish before ``deadline_unix_s``; not run
overloaded          503     the queue is full, or the worker is still warming up
shutting_down       503     the worker is draining (queued requests get this too)
internal            500     the engine failed
==================  ======  =========================================================

All state lives in ``app.state.worker`` (a :class:`WorkerState`); nothing is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from hadis.api.base import describe_validation_error
from hadis.api.wire import CascadeConfig, GenerateRequest, WorkerError
from hadis.cascade_watch import CascadeConfigWatcher
from hadis_worker.batching import Batcher, Outcome
from hadis_worker.config_watch import VariantRuntime
from hadis_worker.engines import Engine, build_engine
from hadis_worker.metrics import WorkerMetrics
from hadis_worker.settings import WorkerSettings

log = logging.getLogger("hadis_worker.server")

STATUS: dict[str, int] = {
    "bad_request": 400,
    "wrong_variant": 409,
    "internal": 500,
    "overloaded": 503,
    "shutting_down": 503,
    "deadline": 504,
}


@dataclass
class WorkerState:
    """Everything one worker app holds: settings, engine, batcher, metrics, config watcher."""

    settings: WorkerSettings
    engine: Engine
    metrics: WorkerMetrics
    batcher: Batcher
    runtime: VariantRuntime
    watcher: CascadeConfigWatcher | None = None
    ready: bool = False
    warmup_error: str | None = None
    #: called with the reason when warm-up fails (``python -m hadis_worker`` then exits non-zero)
    on_warmup_failure: Callable[[str], None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def apply_config(self, config: CascadeConfig) -> None:
        """Take this variant's batch size and the time scale from a new cascade configuration."""
        runtime = VariantRuntime.from_config(config, self.settings.variant, self.runtime)
        if not runtime.listed:
            log.warning(
                "cascade config generation %d does not list variant %r; keeping batch size %d",
                config.generation,
                self.settings.variant,
                runtime.batch_size,
            )
        self.runtime = runtime
        self.batcher.set_batch_size(runtime.batch_size)
        self.engine.configure(runtime)
        self.metrics.config_generation.labels(self.settings.variant).set(config.generation)

    def begin_drain(self) -> None:
        """Stop being ready and refuse new requests; queued ones are still served (idempotent)."""
        if self.ready or not self.batcher.closing:
            log.info("draining: %d queued request(s) still to serve", self.batcher.queue_length)
        self.ready = False
        self.batcher.refuse_new()

    async def warm_up(self) -> None:
        try:
            await self.engine.warmup()
        except Exception as e:  # never ready; /healthz reports it (a restart is the remedy)
            self.warmup_error = f"{type(e).__name__}: {e}"
            log.exception("warm-up failed; the worker will not become ready")
            if self.on_warmup_failure is not None:
                self.on_warmup_failure(str(e))
            return
        if not self.batcher.closing:
            self.ready = True
            log.info("worker for %r ready (batch size %d)", self.settings.variant, self.batcher.batch_size)


def _json(outcome: Outcome) -> JSONResponse:
    status = 200 if not isinstance(outcome, WorkerError) else STATUS[outcome.code]
    return JSONResponse(outcome.to_wire(), status_code=status)


def _request_id(body: bytes) -> str | None:
    """The request id of an invalid body, when one can be read."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict):
        rid = data.get("requestId", data.get("request_id"))
        if isinstance(rid, str) and 0 < len(rid) <= 128:
            return rid
    return None


def create_app(settings: WorkerSettings, engine: Engine | None = None) -> FastAPI:
    """The worker app; ``engine`` defaults to the one the settings name."""
    engine = engine if engine is not None else build_engine(settings)
    metrics = WorkerMetrics(settings.variant)
    runtime = VariantRuntime(batch_size=settings.batch_size, time_scale=settings.time_scale)
    batcher = Batcher(
        engine, settings.variant, runtime.batch_size, max_queue=settings.max_queue, metrics=metrics
    )
    state = WorkerState(settings, engine, metrics, batcher, runtime)
    engine.configure(runtime)
    if settings.config_path is not None:
        state.watcher = CascadeConfigWatcher(
            settings.config_path, state.apply_config, poll_s=settings.config_poll_s
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.loop = asyncio.get_running_loop()
        if state.watcher is not None:
            state.watcher.poll()
            state.tasks.append(state.loop.create_task(state.watcher.run(), name="hadis-config-watch"))
        batcher.start()
        state.tasks.append(state.loop.create_task(state.warm_up(), name="hadis-warmup"))
        try:
            yield
        finally:
            state.begin_drain()
            for task in state.tasks:
                task.cancel()
            await asyncio.gather(*state.tasks, return_exceptions=True)
            await batcher.stop(settings.drain_s)

    app = FastAPI(title="HADIS worker", version="0.1.0", lifespan=lifespan)
    app.state.worker = state

    @app.post("/v1/generate", response_model=None)
    async def generate(request: Request) -> JSONResponse:
        """Generate one image (GenerateRequest → GenerateResponse | WorkerError)."""
        body = await request.body()
        try:
            req = GenerateRequest.model_validate_json(body)
        except ValidationError as e:
            err = WorkerError(
                code="bad_request",
                message=describe_validation_error(e, "request"),
                request_id=_request_id(body),
            )
            return _json(err)
        outcome: Outcome
        if req.variant != settings.variant:
            msg = f"this worker serves {settings.variant!r}, not {req.variant!r}"
            outcome = WorkerError(code="wrong_variant", message=msg, request_id=req.request_id)
        elif batcher.closing:
            outcome = WorkerError(
                code="shutting_down", message="the worker is shutting down", request_id=req.request_id
            )
        elif not state.ready:
            outcome = WorkerError(
                code="overloaded", message="the worker is warming up", request_id=req.request_id
            )
        else:
            try:
                outcome = await batcher.submit(req)
            except Exception as e:
                log.exception("request %s failed", req.request_id)
                outcome = WorkerError(
                    code="internal", message=f"{type(e).__name__}: {e}", request_id=req.request_id
                )
        metrics.count("ok" if not isinstance(outcome, WorkerError) else outcome.code)
        return _json(outcome)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Liveness: the process answers and its batcher runs."""
        if not batcher.alive:
            return JSONResponse({"status": "batcher stopped"}, status_code=500)
        if state.warmup_error is not None:
            return JSONResponse({"status": f"warm-up failed: {state.warmup_error}"}, status_code=500)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Readiness: warmed up and not draining; the body says what the worker runs."""
        body = {
            "ready": state.ready,
            "variant": settings.variant,
            "engine": settings.engine,
            "batchSize": batcher.batch_size,
            "queue": batcher.queue_length,
            "configGeneration": state.runtime.generation,
            "configError": state.watcher.last_error if state.watcher else None,
            "warmupError": state.warmup_error,
            "closing": batcher.closing,
        }
        return JSONResponse(body, status_code=200 if state.ready and not batcher.closing else 503)

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        """Prometheus exposition of this worker's metrics."""
        metrics.set_queue(batcher.queue_length)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app
