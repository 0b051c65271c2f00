"""The gateway's FastAPI app: OpenAI-style images API over the HADIS cascade (``create_app``)."""

from __future__ import annotations

import asyncio
import copy
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from hadis.api.wire import CascadeConfig
from hadis.cascade_watch import CascadeConfigWatcher
from hadis_gateway.auth import ApiKeys
from hadis_gateway.balancer import Balancer
from hadis_gateway.batch_scorer import ScoreMany, one_by_one
from hadis_gateway.dispatch import Dispatcher
from hadis_gateway.endpoints import EndpointDiscovery, Resolver, endpoints_gauge
from hadis_gateway.images import (
    MAX_CLIENT_ID_CHARS,
    GatewayState,
    Reply,
    error,
    error_reply,
    generate,
    generate_reply,
    internal_error_reply,
    log_internal_error,
)
from hadis_gateway.metrics import GatewayMetrics
from hadis_gateway.openai_api import (
    ErrorResponse,
    ImagesResponse,
    ModelCard,
    ModelList,
    request_body_schema,
)
from hadis_gateway.scoring import (
    default_scorer,
    reference_prompt_indices,
    reference_threshold,
    router_thread,
    start_router_process,
)
from hadis_gateway.settings import Settings
from hadis_gateway.thresholds import Threshold, WindowQuantile
from hadis_gateway.worker_client import HttpWorkerClient, HttpxWorkerClient, WorkerClient

log = logging.getLogger(__name__)

FastRoute = Callable[[Scope, Receive], Awaitable[Reply | None]]


class GatewayApp(FastAPI):
    """FastAPI, with the hot paths answered straight from ASGI.

    ``POST /v1/images/generations``, ``GET /metrics`` and ``GET /healthz`` skip Starlette's
    middleware, routing and dependency machinery, which costs more CPU per request than the
    gateway's own work (measured: about a third of a request's CPU at 200 req/s). The same paths
    stay declared as FastAPI routes, so the OpenAPI document is unchanged.
    """

    fast_routes: dict[tuple[str, str], FastRoute]
    api_keys: ApiKeys | None = None  # set: every /v1/* request needs one of the keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http":
            path = scope["path"]
            if self.api_keys is not None and (path == "/v1" or path.startswith("/v1/")):
                authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
                if not self.api_keys.allows(authorization):
                    await send_reply(send, unauthorized(authorization))
                    return
            route = self.fast_routes.get((scope["method"], path))
        if route is None:
            await super().__call__(scope, receive, send)
            return
        try:
            reply = await route(scope, receive)
        except Exception as e:
            log_internal_error("unhandled error", e)
            reply = internal_error_reply(e)
        if reply is None:  # the client went away
            return
        await send_reply(send, reply)


HEALTHY = Reply(200, b'{"status":"ok"}')


def unauthorized(authorization: bytes | None) -> Reply:
    """401 as OpenAI answers a missing or wrong key (the key itself is not echoed)."""
    message = (
        "Incorrect API key provided."
        if authorization is not None
        else "You didn't provide an API key: send it as 'Authorization: Bearer <key>'."
    )
    return error_reply(
        401,
        message,
        type_="invalid_request_error",
        code="invalid_api_key",
        headers={"WWW-Authenticate": 'Bearer realm="hadis"'},
    )


async def send_reply(send: Send, reply: Reply) -> None:
    headers = [
        (b"content-type", reply.media_type.encode("latin-1")),
        (b"content-length", str(len(reply.body)).encode()),
    ]
    if reply.headers:
        headers += [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body; ``None`` if the client disconnected. Raises :class:`BodyTooLarge`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class BodyTooLarge(Exception):
    pass


def create_app(
    settings: Settings,
    *,
    score_prompt: Callable[[str], float] | None = None,
    score_prompts: ScoreMany | None = None,
    router_threshold: Threshold | None = None,
    disc_threshold: Threshold | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    rng: random.Random | None = None,
    resolver: Resolver | None = None,
) -> FastAPI:
    """The gateway app. Inject ``score_prompt`` and thresholds to replace the router (tests do).

    Worker host names are expanded to their addresses (see endpoints.py) with ``resolver`` or the
    event loop's ``getaddrinfo``; not with an injected ``transport`` and no ``resolver``: such a
    transport routes by host name itself."""
    metrics = GatewayMetrics()
    balancer = Balancer()
    discovered = endpoints_gauge(metrics.registry)
    gauged: set[str] = set()  # the variants that have a series in it

    def set_endpoints(endpoints: dict[str, list[str]]) -> None:
        balancer.set_endpoints(endpoints)
        for variant in set(gauged) - set(endpoints):
            discovered.remove(variant)
        gauged.clear()
        for variant, eps in endpoints.items():
            discovered.labels(variant).set(len(set(eps)))
            gauged.add(variant)

    discovery = EndpointDiscovery(
        set_endpoints,
        resolver=resolver,
        refresh_s=settings.endpoint_refresh_s,
        enabled=transport is None or resolver is not None,
    )
    auto = router_threshold is None and disc_threshold is None
    thresholds: dict[str, Threshold] = {}  # "router", "disc"
    keys: dict[str, tuple[str, str | None]] = {}
    if router_threshold is not None:
        thresholds["router"] = router_threshold
    if disc_threshold is not None:
        thresholds["disc"] = disc_threshold
    injected = score_prompt is not None or score_prompts is not None
    in_child = not injected and settings.router_process  # the router starts with the app (lifespan)
    scorer: ScoreMany | None = None
    if score_prompt is not None:
        scorer = one_by_one(score_prompt)
    elif score_prompts is not None:
        scorer = score_prompts
    elif not in_child:
        scorer = default_scorer(settings)

    def on_change(cfg: CascadeConfig) -> None:
        discovery.set_config({v: e.endpoints for v, e in cfg.variants.items()})
        metrics.config_reloads.labels("applied").inc()
        metrics.config_generation.set(cfg.generation)
        reference_prompt_indices(cfg.profile)  # load once here, not on a request
        if auto and cfg.row is not None:  # reference distributions follow the profile and light variant
            for name, key in (("router", (cfg.profile, None)), ("disc", (cfg.profile, cfg.row.light))):
                if keys.get(name) != key:
                    keys[name] = key
                    thresholds[name] = reference_threshold(key[0], key[1], settings.threshold_window)
        if state.dispatcher is not None:
            state.dispatcher.router_threshold = thresholds.get("router", WindowQuantile())
            state.dispatcher.disc_threshold = thresholds.get("disc", WindowQuantile())

    watcher = CascadeConfigWatcher(
        settings.config_path,
        on_change,
        poll_s=settings.config_poll_s,
        on_error=lambda _msg: metrics.config_reloads.labels("rejected").inc(),
    )
    state = GatewayState(settings, watcher, balancer, metrics)
    # read now: a keys file that cannot be read stops the start (ApiKeysError), no open gateway
    api_keys = ApiKeys(settings.api_keys_file) if settings.api_keys_file is not None else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # bounded, so a burst does not open thousands of sockets to one worker
        conns, connect_s = settings.worker_connections, settings.connect_timeout_s
        client: WorkerClient = (
            HttpWorkerClient(max_connections=conns, connect_timeout_s=connect_s)
            if transport is None
            else HttpxWorkerClient(max_connections=conns, connect_timeout_s=connect_s, transport=transport)
        )
        executor: Executor
        if scorer is None:
            executor, score = await start_router_process(settings)
        else:
            executor, score = router_thread(), scorer
        state.dispatcher = Dispatcher(
            client,
            balancer,
            lambda: watcher.current,
            score,
            thresholds.get("router", WindowQuantile()),
            thresholds.get("disc", WindowQuantile()),
            metrics,
            grace_s=settings.worker_grace_s,
            rng=rng,
            executor=executor,
            score_cache=0 if injected else settings.score_cache,
        )
        watcher.poll()
        await discovery.refresh()  # the first requests go to addresses, not to a name
        state.tasks.append(asyncio.create_task(discovery.run()))
        state.tasks.append(asyncio.create_task(watcher.run()))
        if api_keys is not None:
            state.tasks.append(asyncio.create_task(api_keys.run(settings.config_poll_s)))
        try:
            yield
        finally:
            for t in state.tasks:
                t.cancel()
            await asyncio.gather(*state.tasks, return_exceptions=True)
            executor.shutdown(wait=True, cancel_futures=True)  # waits for one batch at most
            await client.aclose()

    app = GatewayApp(title="HADIS gateway", lifespan=lifespan)
    app.state.gateway = state
    app.api_keys = api_keys

    async def fast_generations(scope: Scope, receive: Receive) -> Reply | None:
        try:
            raw = await read_body(receive, settings.max_body_bytes)
        except BodyTooLarge:
            message = f"the request body is larger than {settings.max_body_bytes} bytes"
            return error_reply(413, message, type_="invalid_request_error", code="request_too_large")
        if raw is None:
            return None
        rid = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        return await generate_reply(state, raw, rid)

    async def fast_healthz(scope: Scope, receive: Receive) -> Reply:
        return HEALTHY

    async def fast_metrics(scope: Scope, receive: Receive) -> Reply:
        return Reply(200, generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.fast_routes = {
        ("POST", "/v1/images/generations"): fast_generations,
        ("GET", "/healthz"): fast_healthz,
        ("GET", "/metrics"): fast_metrics,
    }

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return error(
            exc.status_code,
            str(exc.detail),
            type_="invalid_request_error",
            code="not_found" if exc.status_code == 404 else None,
        )

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> Response:
        log_internal_error("unhandled error", exc)
        return internal_error_reply(exc).response()

    def model_names() -> list[str]:
        cfg = state.config
        return [settings.cascade_model, *(sorted(cfg.variants) if cfg else [])]

    unauthorized_doc: dict[int | str, dict[str, Any]] = (
        {401: {"model": ErrorResponse, "description": "no API key, or not one of the gateway's"}}
        if api_keys is not None
        else {}
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "no configuration, or a variant has no endpoints"}})
    async def readyz() -> JSONResponse:
        cfg = state.config
        if cfg is None:
            return JSONResponse(
                {"status": "not ready", "reason": state.watcher.last_error or "no config"}, 503
            )
        # the configured endpoints, not the discovered ones: a variant whose pods are all gone (its
        # headless Service resolves to nothing) gets "no workers" answers, but taking every gateway
        # replica out of its Service would refuse the requests of the other variants too
        routed = routed_variants(cfg)
        empty = [v for v in routed if not cfg.variants[v].endpoints]
        if empty:
            return JSONResponse({"status": "not ready", "reason": f"no endpoints for {empty}"}, 503)
        found = {v: len(balancer.endpoints(v)) for v in routed}  # after discovery
        return JSONResponse({"status": "ready", "generation": cfg.generation, "endpoints": found})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", response_model=ModelList, responses=unauthorized_doc)
    async def models() -> dict[str, Any]:
        return ModelList(data=[ModelCard(id=n) for n in model_names()]).model_dump()

    @app.post(
        "/v1/images/generations",
        response_model=None,
        responses={
            200: {"model": ImagesResponse, "description": "the images"},
            **{status: {"model": ErrorResponse, "description": why} for status, why in GENERATION_ERRORS},
            **unauthorized_doc,
        },
        openapi_extra={
            "parameters": [
                {
                    "name": "x-request-id",
                    "in": "header",
                    "required": False,
                    "description": f"the request's id (≤ {MAX_CLIENT_ID_CHARS} characters, else one is made)",
                    "schema": {"type": "string"},
                }
            ]
        },
    )
    async def generations(request: Request) -> Response:
        return await generate(state, request)

    def openapi() -> dict[str, Any]:
        """FastAPI's document, plus the request body with the limits in force and the models known
        now (the body is read by hand, on the fast path), plus the bearer scheme when keys are set."""
        if app.openapi_schema is None:
            doc = FastAPI.openapi(app)
            if api_keys is not None:
                doc.setdefault("components", {})["securitySchemes"] = {
                    "apiKey": {"type": "http", "scheme": "bearer", "description": "one of the gateway's keys"}
                }
                for path, ops in doc["paths"].items():
                    if path.startswith("/v1/"):
                        for op in ops.values():
                            op["security"] = [{"apiKey": []}]
        assert app.openapi_schema is not None
        doc = copy.deepcopy(app.openapi_schema)
        schema = request_body_schema(
            max_prompt_chars=settings.max_prompt_chars,
            max_images=settings.max_images,
            sizes=settings.sizes,
            models=model_names(),
        )
        doc["paths"]["/v1/images/generations"]["post"]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return app


#: The errors of ``POST /v1/images/generations`` (all OpenAI-style ``{"error": {...}}`` objects).
GENERATION_ERRORS = (
    (400, "a field is invalid (``param`` names it), or the body is not a JSON object"),
    (413, "the body is larger than the gateway's limit"),
    (429, "the gateway's queue or a worker's is full (``Retry-After``)"),
    (502, "the workers could not be reached or answered badly"),
    (503, "no configuration yet, or no worker endpoints for a variant"),
    (504, "no worker answered before the request's deadline"),
)


def routed_variants(cfg: CascadeConfig) -> list[str]:
    """The variants the configuration sends traffic to: a cascade's light model unless θ = 1 (every
    prompt is hard), its heavy model unless θ = τ = 0; a split's variants with a share."""
    if cfg.row is None:
        return [v for v, share in cfg.split.items() if share > 0]
    row = cfg.row
    return [v for v, used in ((row.light, row.theta < 1), (row.heavy, row.theta > 0 or row.tau > 0)) if used]
