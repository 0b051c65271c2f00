"""The gateway's worker HTTP clients map failures onto 'try another replica' and 'timed out'."""

from __future__ import annotations

import asyncio
import socket

import pytest
from tests.gateway_fakes import CrashingWorker, FakeWorker, HostTransport, ServerThread, free_port

from hadis_gateway.worker_client import (
    AiohttpWorkerClient,
    HttpxWorkerClient,
    WorkerClient,
    WorkerTimeout,
    WorkerUnreachable,
)

BODY = b'{"requestId":"r1","prompt":"a cat","variant":"light","deadlineUnixS":9e9}'


def aiohttp_client() -> WorkerClient:
    return AiohttpWorkerClient(max_connections=4, connect_timeout_s=1.0)


def test_aiohttp_client_answers_and_maps_failures() -> None:
    worker = ServerThread(FakeWorker("l0", "light").app()).start()
    crashing = CrashingWorker()
    silent = socket.socket()  # listens (the kernel completes connections) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()

    async def run() -> None:
        client = aiohttp_client()
        try:
            status, body = await client.post(f"{worker.url}/v1/generate", BODY, 5.0)
            assert status == 200 and b'"requestId":"r1"' in body
            status, _ = await client.post(f"{worker.url}/nowhere", BODY, 5.0)
            assert status == 404
            with pytest.raises(WorkerUnreachable):
                await client.post(f"http://127.0.0.1:{free_port()}/v1/generate", BODY, 5.0)
            with pytest.raises(WorkerUnreachable):
                await client.post(f"{crashing.url}/v1/generate", BODY, 5.0)
            port = silent.getsockname()[1]
            with pytest.raises(WorkerTimeout):
                await client.post(f"http://127.0.0.1:{port}/v1/generate", BODY, 0.3)
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
    finally:
        worker.stop()
        crashing.close()
        silent.close()


def test_httpx_client_over_a_transport() -> None:
    async def run() -> None:
        transport = HostTransport({"l0": FakeWorker("l0", "light").app()})
        client = HttpxWorkerClient(max_connections=4, connect_timeout_s=1.0, transport=transport)
        try:
            status, body = await client.post("http://l0/v1/generate", BODY, 5.0)
            assert status == 200 and b'"requestId":"r1"' in body
            with pytest.raises(WorkerUnreachable):
                await client.post("http://gone/v1/generate", BODY, 5.0)
        finally:
            await client.aclose()

    asyncio.run(run())
