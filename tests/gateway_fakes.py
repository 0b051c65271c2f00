"""Test doubles for the gateway: a fake worker (wire contract), fixed thresholds, servers in threads."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from hadis.api.wire import GenerateRequest, GenerateResponse, WorkerError


def tiny_png() -> bytes:
    """A valid 1×1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


PNG_B64 = base64.b64encode(tiny_png()).decode()


def default_p_real(prompt: str) -> float:
    return 0.05 if "blurry" in prompt else 0.9


@dataclass
class FakeWorker:
    """What one fake worker saw; tweak ``delay_s``, ``p_real`` or ``refuse`` while it runs."""

    name: str
    variant: str
    delay_s: float = 0.0
    p_real: Callable[[str], float] = default_p_real
    refuse: str | None = None  # a WorkerError code to answer with
    requests: list[GenerateRequest] = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/generate")
        async def generate(request: Request) -> JSONResponse:
            req = GenerateRequest.model_validate(await request.json())
            self.requests.append(req)
            if self.refuse is not None:
                err = WorkerError(code=self.refuse, message=f"{self.name} refuses", request_id=req.request_id)  # type: ignore[arg-type]
                return JSONResponse(err.to_wire(), 504 if self.refuse == "deadline" else 503)
            if req.variant != self.variant:
                err = WorkerError(
                    code="wrong_variant", message=f"serves {self.variant}", request_id=req.request_id
                )
                return JSONResponse(err.to_wire(), 409)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            try:
                await asyncio.sleep(self.delay_s)
            finally:
                self.active -= 1
            resp = GenerateResponse(
                request_id=req.request_id,
                variant=self.variant,
                image_b64=PNG_B64,
                p_real=self.p_real(req.prompt) if req.discriminate else None,
                queue_ms=1.0,
                generation_ms=self.delay_s * 1000,
                batch_size=1,
            )
            return JSONResponse(resp.to_wire())

        return app


class FixedThreshold:
    """A threshold double: every quantile is ``value``; observed scores are recorded."""

    def __init__(self, value: float) -> None:
        self.value = value
        self.seen: list[float] = []

    def observe(self, score: float) -> None:
        self.seen.append(score)

    def quantile(self, q: float) -> float:
        return self.value


def hard_word_score(prompt: str) -> float:
    """Router double: prompts containing 'hard' score 1, others 0."""
    return 1.0 if "hard" in prompt else 0.0


def cascade_config(
    light: list[str],
    heavy: list[str],
    *,
    theta: float = 0.3,
    tau: float = 0.2,
    generation: int = 1,
    slo_s: float = 5.0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "generation": generation,
        "row": {
            "light": "light",
            "heavy": "heavy",
            "theta": theta,
            "tau": tau,
            "p": theta + (1 - theta) * tau,
            "fid": 20.0,
        },
        "variants": {
            "light": {"batchSize": 1, "endpoints": light},
            "heavy": {"batchSize": 1, "endpoints": heavy},
        },
        "sloS": slo_s,
        **extra,
    }


def write_config(path: Path, config: dict[str, Any] | str) -> None:
    """Atomic write, as a ConfigMap update or the control loop does."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(config if isinstance(config, str) else json.dumps(config))
    os.replace(tmp, path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerThread:
    """A real uvicorn server on a free 127.0.0.1 port, in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self, *, kill: bool = False) -> None:
        self.server.force_exit = kill
        self.server.should_exit = True
        self.thread.join(10)


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class HostTransport(httpx.AsyncBaseTransport):
    """In-process transport: ``http://<host>`` goes to that host's ASGI app; unknown hosts refuse."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = {h: httpx.ASGITransport(app=a) for h, a in apps.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        t = self.apps.get(request.url.host)
        if t is None:
            raise httpx.ConnectError(f"connection refused: {request.url.host}", request=request)
        return await t.handle_async_request(request)


class CrashingWorker:
    """A 'worker' that accepts a request, reads it and drops the connection (a crash mid-request)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port: int = self.sock.getsockname()[1]
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.accepted += 1

    def close(self) -> None:
        self.sock.close()
